"""The one HTTP transport every ticket system uses.

One ``requests.Session`` per destination and no retries of its own (the relay retries whole
events). Replies become the relay's errors:

- 401 → ``AuthError`` (the connection's credentials; nothing goes out until fixed);
- 429, and 403 that is a rate limit (GitHub's secondary limit: ``Retry-After``, an exhausted
  ``x-ratelimit-remaining`` or "rate limit" in the message) → ``RateLimited``;
- 408, 425, 5xx, timeouts and connection errors → ``DeliveryError``;
- any other non-2xx → ``RejectedError``.

Before every write the optional ``pacer`` is called (the relay's per-destination pacing), and
the transport remembers whether a write of the current event took effect or may have
(``applied``), so a crash or a lost reply is followed by a look before writing again. A 2xx
that says the rate budget is gone (``x-ratelimit-remaining: 0``) sets ``exhausted_for``.
Messages carry the method, path, status and a short reason, never credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from revleak.tickets.base import (
    AuthError,
    DeliveryError,
    Destination,
    RateLimited,
    RejectedError,
)

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 425})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PERMANENT_TRANSPORT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _reset_wait(resp: requests.Response) -> float | None:
    """Seconds until ``x-ratelimit-reset`` (epoch seconds) when ``x-ratelimit-remaining`` is 0."""
    if resp.headers.get("X-RateLimit-Remaining") != "0":
        return None
    try:
        reset = float(resp.headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return None
    return max(0.0, reset - datetime.now(UTC).timestamp())


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception (e.g. ConnectionResetError), for short messages."""
    seen: BaseException = exc
    for _ in range(10):
        reason = getattr(seen, "reason", None)
        nxt = (reason if isinstance(reason, BaseException) else None) \
            or next((a for a in seen.args if isinstance(a, BaseException)), None) \
            or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    return seen


class Bearer(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, set per request; the token never shows in a repr."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "Bearer(***)"


def basic_auth(dest: Destination, what: str) -> tuple[str, str]:
    """The connection's login and password (API token), or one clear line."""
    if not dest.login or not dest.password:
        raise ValueError(f"{what} needs the connection's login and password (API token)")
    return dest.login, dest.password


class Transport:
    """One session against one destination; maps every reply to the relay's errors."""

    def __init__(self, dest: Destination, name: str, *, auth: Any = None,
                 headers: dict[str, str] | None = None, show_path: bool = True,
                 pacer: Callable[[], None] | None = None):
        self.base = dest.base_url
        self.name = name
        self.timeout = dest.timeout
        self.show_path = show_path
        self.pacer = pacer
        self.applied = False
        self.exhausted_for: float | None = None
        self._secrets = [s for s in (dest.password,) if s]
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=0)  # the relay owns retries
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = auth
        self.session.headers.update({"Accept": "application/json", "User-Agent": "revleak"})
        self.session.headers.update(headers or {})

    def begin(self) -> None:
        """A new event: forget what the last one wrote."""
        self.applied = False
        self.exhausted_for = None

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.base.rstrip("/") + path if path else self.base

    def where(self, method: str, path: str) -> str:
        shown = path.split("?", 1)[0] if self.show_path else ""
        return f"{self.name} {method} {shown}".rstrip()

    def send(self, method: str, path: str, body: Any = None, *,
             params: dict[str, Any] | None = None, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        """Send one request (no retries) and return the 2xx reply, or raise."""
        where = self.where(method, path)
        write = method in WRITES
        if write and self.pacer:
            self.pacer()
        try:
            resp = self.session.request(
                method, self.url(path), json=body, data=data, params=params, headers=headers,
                timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            sent = write and not isinstance(exc, requests.ConnectTimeout)
            self.applied |= sent
            raise DeliveryError(f"{where}: timed out after {self.timeout:g}s",
                                maybe_applied=sent) from None
        except PERMANENT_TRANSPORT_ERRORS as exc:
            raise RejectedError(f"{where}: bad destination URL ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            cause = _root_cause(exc)
            sent = write and not isinstance(cause, ConnectionRefusedError)
            self.applied |= sent
            raise DeliveryError(f"{where}: connection failed ({type(cause).__name__})",
                                maybe_applied=sent) from None
        log.debug("%s -> HTTP %s", where, resp.status_code)
        self._check(resp, where, write)
        return resp

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Send and decode the reply's JSON (a 2xx that is not JSON may be retried)."""
        resp = self.send(method, path, body, **kw)
        try:
            return resp.json()
        except ValueError:
            raise DeliveryError(f"{self.where(method, path)}: HTTP {resp.status_code} "
                                "reply is not JSON", maybe_applied=method in WRITES) from None

    def _check(self, resp: requests.Response, where: str, write: bool) -> None:
        status = resp.status_code
        if 200 <= status < 300:
            self.applied |= write
            if (wait := _reset_wait(resp)) is not None:
                self.exhausted_for = wait
            return
        if 300 <= status < 400:
            raise RejectedError(f"{where}: HTTP {status} redirect (check the connection's host "
                                "and scheme)", status)
        reason = self._reason(resp)
        msg = f"{where}: HTTP {status} {reason}".rstrip()
        wait = parse_retry_after(resp.headers.get("Retry-After"))
        if status == 429 or (status == 403 and (
                wait is not None or resp.headers.get("X-RateLimit-Remaining") == "0"
                or "rate limit" in reason.lower())):
            raise RateLimited(msg, retry_after=wait if wait is not None else _reset_wait(resp))
        if status == 401:
            raise AuthError(msg, status)
        if status in TRANSIENT_STATUSES or status >= 500:
            self.applied |= write and status >= 500
            raise DeliveryError(msg, retry_after=wait, maybe_applied=write and status >= 500)
        raise RejectedError(msg, status)

    def _reason(self, resp: requests.Response) -> str:
        """A short reason from the error body (Jira, ServiceNow, GitHub shapes) or the status."""
        try:
            data = resp.json()
        except ValueError:
            data = None
        parts: list[str] = []
        if isinstance(data, dict):
            err = data.get("error")
            if isinstance(err, dict):  # ServiceNow
                parts += [str(err.get("message") or ""), str(err.get("detail") or "")]
            elif isinstance(err, str):
                parts.append(err)
            parts += [str(m) for m in data.get("errorMessages") or []]  # Jira
            if isinstance(data.get("errors"), dict):
                parts += [f"{k}: {v}" for k, v in data["errors"].items()]
            if isinstance(data.get("message"), str):  # GitHub
                parts.append(data["message"])
            if isinstance(data.get("errors"), list):
                parts += [str(e.get("message") or f"{e.get('field')} {e.get('code')}")
                          if isinstance(e, dict) else str(e) for e in data["errors"]]
        text = "; ".join(p for p in parts if p) or resp.reason or ""
        return self._scrub(" ".join(text.split()))[:200]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
