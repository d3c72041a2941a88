"""The four ticket systems: Jira, ServiceNow, GitHub Issues and a signed generic webhook.

Each provider owns one ``requests.Session`` and never retries: the relay retries whole events.
HTTP 429, 408, 5xx, rate-limited 403, timeouts and connection errors raise ``DeliveryError``
(with ``retry_after`` from the reply); any other non-2xx raises ``RejectedError``. Messages carry
the method, path, status and a short reason, never credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from revleak.tickets.base import DeliveryError, Destination, Provider, RejectedError

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 425, 429})
PERMANENT_TRANSPORT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)
JIRA_PRIORITIES = {"highest": "Highest", "high": "High", "medium": "Medium", "low": "Low"}
# ServiceNow (urgency, impact): the default lookup gives priority 1 Critical .. 4 Low.
SNOW_URGENCY_IMPACT = {"highest": ("1", "1"), "high": ("1", "2"), "medium": ("2", "2"),
                       "low": ("3", "2")}
WEBHOOK_FIELDS = (
    "action", "fingerprint", "check", "category", "entity_type", "entity_id", "customer_id",
    "as_of", "owner", "due_date", "gap_amount", "gap_amount_base", "currency", "gap_pct",
    "days_outstanding", "time_weighted_loss", "title", "body",
)


# --------------------------------------------------------------------------- HTTP plumbing


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


def _rate_limit_wait(resp: requests.Response) -> float | None:
    """When a reply says to slow down: ``Retry-After``, else GitHub's ``X-RateLimit-Reset``."""
    wait = parse_retry_after(resp.headers.get("Retry-After"))
    if wait is None and resp.headers.get("X-RateLimit-Remaining") == "0":
        try:
            reset = float(resp.headers.get("X-RateLimit-Reset", ""))
        except ValueError:
            return None
        wait = max(0.0, reset - datetime.now(UTC).timestamp())
    return wait


def _is_rate_limited(resp: requests.Response) -> bool:
    """GitHub signals primary/secondary rate limits with 403 plus these headers."""
    return resp.status_code == 403 and (
        "Retry-After" in resp.headers or resp.headers.get("X-RateLimit-Remaining") == "0")


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's class name (e.g. ConnectionResetError), for short messages."""
    seen: BaseException = exc
    for _ in range(10):
        reason = getattr(seen, "reason", None)
        nxt = (reason if isinstance(reason, BaseException) else None) \
            or next((a for a in seen.args if isinstance(a, BaseException)), None) \
            or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    return type(seen).__name__


class _Bearer(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, set per request; the token never shows in a repr."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_Bearer(***)"


class _Client:
    """One session against one destination; maps every failure to the relay's two errors."""

    def __init__(self, dest: Destination, name: str, *, auth: Any = None,
                 headers: dict[str, str] | None = None, show_path: bool = True):
        self.base = dest.base_url
        self.name = name
        self.timeout = dest.timeout
        self.show_path = show_path
        self._secrets = [s for s in (dest.password,) if s]
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=0)  # the relay owns retries
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = auth
        self.session.headers.update({"Accept": "application/json", "User-Agent": "revleak"})
        self.session.headers.update(headers or {})

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
        try:
            resp = self.session.request(
                method, self.url(path), json=body, data=data, params=params, headers=headers,
                timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise DeliveryError(f"{where}: timed out after {self.timeout:g}s") from None
        except PERMANENT_TRANSPORT_ERRORS as exc:
            raise RejectedError(f"{where}: bad destination URL ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise DeliveryError(f"{where}: connection failed ({_root_cause(exc)})") from None
        log.debug("%s -> HTTP %s", where, resp.status_code)
        self._check(resp, where)
        return resp

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Send and decode the reply's JSON (a 2xx that is not JSON may be retried)."""
        resp = self.send(method, path, body, **kw)
        try:
            return resp.json()
        except ValueError:
            raise DeliveryError(f"{self.where(method, path)}: HTTP {resp.status_code} "
                                "reply is not JSON") from None

    def _check(self, resp: requests.Response, where: str) -> None:
        status = resp.status_code
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise RejectedError(f"{where}: HTTP {status} redirect (check the connection's host "
                                "and scheme)")
        msg = f"{where}: HTTP {status} {self._reason(resp)}".rstrip()
        if status in TRANSIENT_STATUSES or status >= 500 or _is_rate_limited(resp):
            raise DeliveryError(msg, retry_after=_rate_limit_wait(resp))
        raise RejectedError(msg)

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
                parts += [str(e.get("message") or e.get("code") or e) if isinstance(e, dict)
                          else str(e) for e in data["errors"]]
        text = "; ".join(p for p in parts if p) or resp.reason or ""
        return self._scrub(" ".join(text.split()))[:200]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _basic(dest: Destination, what: str) -> tuple[str, str]:
    if not dest.login or not dest.password:
        raise ValueError(f"{what} needs the connection's login and password (API token)")
    return dest.login, dest.password


def _required(extra: dict[str, Any], key: str, what: str) -> str:
    value = extra.get(key)
    if not value or not isinstance(value, str):
        raise ValueError(f"{what} needs extra.{key} in the revleak_tickets connection")
    return value


def _seg(value: str) -> str:
    """A URL path segment."""
    return quote(str(value), safe="")


# --------------------------------------------------------------------------- ticket text


def _day(value: Any) -> str | None:
    """YYYY-MM-DD from a date, datetime or ISO string; None when absent or unparseable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return None


def _amount(value: Any, currency: Any = None) -> str:
    if value is None:
        return "n/a"
    try:
        text = f"{float(value):,.2f}"
    except (TypeError, ValueError):
        text = str(value)
    return f"{text} {currency}" if currency else text


def _who(person: Any) -> str:
    """``Name <email> (team)`` for an owner dict."""
    p = person if isinstance(person, dict) else {}
    name = p.get("name") or p.get("email") or p.get("account_id") or "unassigned"
    text = str(name)
    if p.get("email") and p["email"] != name:
        text += f" <{p['email']}>"
    if p.get("team"):
        text += f" ({p['team']})"
    return text


def _account(person: Any) -> str | None:
    return str(person["account_id"]) if isinstance(person, dict) and person.get("account_id") \
        else None


def _title(event: dict[str, Any]) -> str:
    title = event.get("title") or (f"[revleak] {event.get('category')}: "
                                   f"{event.get('entity_type')} {event.get('entity_id')}")
    return " ".join(str(title).split())


def _figures(event: dict[str, Any]) -> list[str]:
    """The finding's numbers, one line each, skipping what is unknown."""
    cur = event.get("currency")
    lines = [f"Gap: {_amount(event.get('gap_amount'), cur)}"
             + (f" (expected {_amount(event.get('expected_amount'), cur)}, actual "
                f"{_amount(event.get('actual_amount'), cur)})"
                if event.get("expected_amount") is not None else "")
             + (f", {float(event['gap_pct']):.1f}% of expected"
                if event.get("gap_pct") is not None else "")]
    if event.get("gap_amount_base") is not None:
        lines.append(f"Gap in base currency: {_amount(event['gap_amount_base'])}")
    if event.get("days_outstanding") is not None:
        lines.append(f"Outstanding for {event['days_outstanding']} days; time-weighted loss "
                     f"{_amount(event.get('time_weighted_loss'))}")
    return lines


def _plain(markdown: str) -> list[str]:
    """The relay's markdown as plain lines: table rows become ``label: value``, no ** or `."""
    lines = []
    for line in markdown.splitlines():
        line = line.strip()
        if re.fullmatch(r"\|[\s|:-]*\|", line):  # separator or empty header row
            continue
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            line = f"{cells[0]}: {' | '.join(cells[1:])}" if len(cells) > 1 else cells[0]
        lines.append(line.replace("**", "").replace("`", ""))
    return lines


def _given(event: dict[str, Any], markdown: bool) -> list[str]:
    body = str(event["body"])
    return body.splitlines() if markdown else _plain(body)


def _description(event: dict[str, Any], *, markdown: bool = False) -> list[str]:
    """The ticket description: the relay's ``body`` (or a summary of the figures), plus the
    owner, due date and fingerprint when the text does not already carry them."""
    if event.get("body"):
        lines = _given(event, markdown)
    else:
        customer = f" (customer {event['customer_id']})" if event.get("customer_id") else ""
        lines = [f"{event.get('category')} on {event.get('entity_type')} "
                 f"{event.get('entity_id')}{customer}, found by {event.get('check')} "
                 f"as of {event.get('as_of')}.", *_figures(event)]
    text = "\n".join(lines)
    owner = event.get("owner") if isinstance(event.get("owner"), dict) else {}
    if not any(v and str(v) in text for v in (owner.get("name"), owner.get("email"))):
        lines.append(f"Owner: {_who(owner)}")
    if (due := _day(event.get("due_date"))) and due not in text:
        lines.append(f"Due: {due}")
    if str(event.get("fingerprint")) not in text:
        lines.append(f"Fingerprint: {event.get('fingerprint')}")
    return lines


def _note(action: str, event: dict[str, Any], *, markdown: bool = False) -> list[str]:
    """A comment / work note for update, escalate and resolve: the relay's ``body`` (which
    it renders per action), else a short generated note."""
    if event.get("body"):
        return _given(event, markdown)
    as_of = event.get("as_of")
    if action == "escalate":
        head = (f"Deadline {_day(event.get('due_date')) or 'n/a'} passed with the gap still "
                f"open: escalated to {_who(event.get('escalation_owner'))}.")
    elif action == "resolve":
        head = f"Resolved by revleak as of {event.get('resolved_as_of') or as_of}: the gap closed."
    else:
        head = f"revleak update as of {as_of}: the gap moved."
    return [head, *_figures(event)]


def _labels(*labels: Any) -> list[str]:
    """Distinct non-empty labels without whitespace (Jira and GitHub refuse spaces / blanks)."""
    out: list[str] = []
    for label in labels:
        text = re.sub(r"\s+", "_", str(label or "").strip())
        if text and text not in out:
            out.append(text)
    return out


def adf(lines: Iterable[str]) -> dict[str, Any]:
    """An Atlassian Document Format doc: one paragraph per non-blank line."""
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in lines if line.strip()]}


# --------------------------------------------------------------------------- providers


class JiraProvider:
    """Jira Cloud (REST v3, ADF text, accountId) or Server/Data Center (REST v2, names).

    extra: project (required), api_version "3"|"2", issue_type ("Task"), resolve_transition
    ("Done"), resolution (optional resolution name set by the transition), priorities (map of
    revleak priority → Jira priority name; null omits the field).
    """

    name = "jira"

    def __init__(self, dest: Destination):
        extra = dest.extra
        self.version = str(extra.get("api_version") or "3")
        if self.version not in ("2", "3"):
            raise ValueError("jira extra.api_version must be \"3\" (Cloud) or \"2\" (Server/DC)")
        self.project = _required(extra, "project", "jira")
        self.issue_type = str(extra.get("issue_type") or "Task")
        self.resolve_transition = str(extra.get("resolve_transition") or "Done")
        self.resolution = extra.get("resolution")
        self.priorities = {**JIRA_PRIORITIES, **(extra.get("priorities") or {})}
        self.api = f"/rest/api/{self.version}"
        self.http = _Client(dest, self.name, auth=_basic(dest, "jira"))

    def close(self) -> None:
        self.http.close()

    def _text(self, lines: list[str]) -> Any:
        return adf(lines) if self.version == "3" else "\n".join(lines)

    def _user(self, account_id: str) -> dict[str, str]:
        return {"accountId": account_id} if self.version == "3" else {"name": account_id}

    def find(self, fingerprint: str) -> str | None:
        """The newest not-done issue labelled ``revleak-<fingerprint>``."""
        label = f"revleak-{fingerprint}".replace("\\", "\\\\").replace('"', '\\"')
        jql = f'labels = "{label}" AND statusCategory != Done ORDER BY created DESC'
        path = f"{self.api}/search/jql" if self.version == "3" else f"{self.api}/search"
        data = self.http.json("GET", path, params={"jql": jql, "maxResults": 1,
                                                   "fields": "summary"})
        issues = data.get("issues") if isinstance(data, dict) else None
        if not issues:
            return None
        return str(issues[0].get("key") or issues[0]["id"])

    def open(self, event: dict[str, Any], idempotency_key: str) -> str:
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": _title(event)[:255],
            "description": self._text(_description(event)),
            "labels": _labels("revleak", f"revleak-{event['fingerprint']}", event.get("category")),
        }
        if owner := _account(event.get("owner")):
            fields["assignee"] = self._user(owner)
        if due := _day(event.get("due_date")):
            fields["duedate"] = due
        if priority := self.priorities.get(str(event.get("priority") or "").lower()):
            fields["priority"] = {"name": priority}
        data = self.http.json("POST", f"{self.api}/issue", {"fields": fields})
        if not isinstance(data, dict) or not data.get("key"):
            raise DeliveryError(f"jira POST {self.api}/issue: reply has no issue key")
        return str(data["key"])

    def _comment(self, key: str, lines: list[str]) -> None:
        self.http.send("POST", f"{self.api}/issue/{_seg(key)}/comment",
                       {"body": self._text(lines)})

    def update(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._comment(key, _note("update", event))

    def escalate(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._comment(key, _note("escalate", event))
        if account := _account(event.get("escalation_owner")):
            self.http.send("PUT", f"{self.api}/issue/{_seg(key)}/assignee", self._user(account))

    def resolve(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._comment(key, _note("resolve", event))
        if not self._is_done(key):
            self._transition(key)

    def _is_done(self, key: str) -> bool:
        data = self.http.json("GET", f"{self.api}/issue/{_seg(key)}", params={"fields": "status"})
        status = ((data.get("fields") or {}).get("status") or {}) if isinstance(data, dict) else {}
        return (status.get("statusCategory") or {}).get("key") == "done"

    def _transition(self, key: str) -> None:
        path = f"{self.api}/issue/{_seg(key)}/transitions"
        data = self.http.json("GET", path)
        transitions = (data.get("transitions") or []) if isinstance(data, dict) else []
        want = self.resolve_transition.casefold()
        for t in transitions:
            names = {str(t.get("name", "")).casefold(),
                     str((t.get("to") or {}).get("name", "")).casefold()}
            if want in names:
                body: dict[str, Any] = {"transition": {"id": str(t["id"])}}
                if self.resolution:
                    body["fields"] = {"resolution": {"name": self.resolution}}
                self.http.send("POST", path, body)
                return
        available = ", ".join(str(t.get("name")) for t in transitions) or "none"
        raise RejectedError(f"jira: issue {key} has no transition named "
                            f"{self.resolve_transition!r} (available: {available}); "
                            "set extra.resolve_transition")


class ServiceNowProvider:
    """ServiceNow Table API; the ticket key is the record's sys_id.

    extra: table ("incident"), resolved_state ("6"), close_code ("Solved (Permanently)"),
    assignment_group (optional, sys_id or name).
    """

    name = "servicenow"

    def __init__(self, dest: Destination):
        extra = dest.extra
        self.table = str(extra.get("table") or "incident")
        self.resolved_state = str(extra.get("resolved_state") or "6")
        self.close_code = str(extra.get("close_code") or "Solved (Permanently)")
        self.assignment_group = extra.get("assignment_group")
        self.path = f"/api/now/table/{_seg(self.table)}"
        self.http = _Client(dest, self.name, auth=_basic(dest, "servicenow"))

    def close(self) -> None:
        self.http.close()

    def find(self, fingerprint: str) -> str | None:
        """The newest active, unresolved record whose correlation_id is the fingerprint."""
        query = (f"correlation_id={fingerprint}^active=true^state!={self.resolved_state}"
                 "^ORDERBYDESCsys_created_on")
        data = self.http.json("GET", self.path, params={
            "sysparm_query": query, "sysparm_limit": 1, "sysparm_fields": "sys_id,number"})
        rows = data.get("result") if isinstance(data, dict) else None
        return str(rows[0]["sys_id"]) if rows else None

    def open(self, event: dict[str, Any], idempotency_key: str) -> str:
        owner = event.get("owner") if isinstance(event.get("owner"), dict) else {}
        record: dict[str, Any] = {
            "short_description": _title(event)[:160],
            "description": "\n".join(_description(event)),
            "correlation_id": event["fingerprint"],
            "correlation_display": "revleak",
        }
        if assignee := _account(owner) or owner.get("email"):
            record["assigned_to"] = assignee
        if self.assignment_group:
            record["assignment_group"] = self.assignment_group
        if due := _day(event.get("due_date")):
            record["due_date"] = f"{due} 23:59:59"
        if pair := SNOW_URGENCY_IMPACT.get(str(event.get("priority") or "").lower()):
            record["urgency"], record["impact"] = pair
        data = self.http.json("POST", self.path, record)
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, dict) or not result.get("sys_id"):
            raise DeliveryError(f"servicenow POST {self.path}: reply has no sys_id")
        return str(result["sys_id"])

    def _patch(self, key: str, fields: dict[str, Any]) -> None:
        self.http.send("PATCH", f"{self.path}/{_seg(key)}", fields)

    def update(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._patch(key, {"work_notes": "\n".join(_note("update", event))})

    def escalate(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        fields = {"work_notes": "\n".join(_note("escalate", event))}
        esc = event.get("escalation_owner") if isinstance(event.get("escalation_owner"),
                                                          dict) else {}
        if assignee := _account(esc) or esc.get("email"):
            fields["assigned_to"] = assignee
        self._patch(key, fields)

    def resolve(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._patch(key, {"state": self.resolved_state, "close_code": self.close_code,
                          "close_notes": "\n".join(_note("resolve", event))})


class GitHubProvider:
    """GitHub Issues (github.com or Enterprise: base_url ``https://host/api/v3``).

    extra: repo ("owner/name", required). The connection's password is the token.
    """

    name = "github"

    def __init__(self, dest: Destination):
        repo = _required(dest.extra, "repo", "github")
        owner, sep, name = repo.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ValueError("github extra.repo must look like \"owner/name\"")
        if not dest.password:
            raise ValueError("github needs the connection's password (a token)")
        self.path = f"/repos/{_seg(owner)}/{_seg(name)}"
        self.http = _Client(dest, self.name, auth=_Bearer(dest.password), headers={
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})

    def close(self) -> None:
        self.http.close()

    def find(self, fingerprint: str) -> str | None:
        """The newest open issue (not pull request) labelled ``revleak:<fingerprint>``."""
        items = self.http.json("GET", f"{self.path}/issues", params={
            "labels": f"revleak:{fingerprint}", "state": "open", "sort": "created",
            "direction": "desc", "per_page": 30})
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "pull_request" not in item:
                return str(item["number"])
        return None

    def open(self, event: dict[str, Any], idempotency_key: str) -> str:
        issue: dict[str, Any] = {
            "title": _title(event),
            "body": "\n".join(_description(event, markdown=True)),
            "labels": _labels("revleak", f"revleak:{event['fingerprint']}", event.get("category")),
        }
        if owner := _account(event.get("owner")):
            issue["assignees"] = [owner]
        data = self.http.json("POST", f"{self.path}/issues", issue)
        if not isinstance(data, dict) or data.get("number") is None:
            raise DeliveryError(f"github POST {self.path}/issues: reply has no issue number")
        return str(data["number"])

    def _comment(self, key: str, lines: list[str]) -> None:
        self.http.send("POST", f"{self.path}/issues/{_seg(key)}/comments",
                       {"body": "\n".join(lines)})

    def update(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._comment(key, _note("update", event, markdown=True))

    def escalate(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._comment(key, _note("escalate", event, markdown=True))
        if account := _account(event.get("escalation_owner")):
            self.http.send("POST", f"{self.path}/issues/{_seg(key)}/assignees",
                           {"assignees": [account]})

    def resolve(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._comment(key, _note("resolve", event, markdown=True))
        self.http.send("PATCH", f"{self.path}/issues/{_seg(key)}",
                       {"state": "closed", "state_reason": "completed"})


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class WebhookProvider:
    """Contract §5: a signed JSON POST to the connection URL; the password is the HMAC key.

    Escalations go out as ``action: "update"`` plus ``escalated: true`` and
    ``escalation_owner``. No extra keys are read.
    """

    name = "webhook"

    def __init__(self, dest: Destination):
        if not dest.password:  # still deliver; the receiver verifies with an empty secret
            log.warning("webhook connection has no password: signing with an empty secret")
        self._key = (dest.password or "").encode()
        # The URL itself may be a capability (e.g. /hooks/<secret>): keep it out of messages.
        self.http = _Client(dest, self.name, show_path=False)

    def close(self) -> None:
        self.http.close()

    def find(self, fingerprint: str) -> str | None:
        return None  # receivers dedupe by Idempotency-Key instead

    def payload(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        """The §5 fields (missing ones null), with title and body filled in."""
        body = {f: event.get(f) for f in WEBHOOK_FIELDS}
        text = event.get("body") or "\n".join(_description(event, markdown=True))
        body.update(action=action, title=_title(event), body=str(text))
        return body

    def sign(self, raw: bytes) -> str:
        return "sha256=" + hmac.new(self._key, raw, hashlib.sha256).hexdigest()

    def _post(self, payload: dict[str, Any], idempotency_key: str) -> requests.Response:
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                         default=_json_default).encode()
        return self.http.send("POST", "", data=raw, headers={
            "Content-Type": "application/json", "Idempotency-Key": idempotency_key,
            "X-Revleak-Signature": self.sign(raw)})

    def open(self, event: dict[str, Any], idempotency_key: str) -> str:
        resp = self._post(self.payload("open", event), idempotency_key)
        try:
            data = resp.json()
        except ValueError:
            data = None
        key = data.get("key") if isinstance(data, dict) else None
        return str(key) if key not in (None, "") else str(event["fingerprint"])

    def update(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._post(self.payload("update", event), idempotency_key)

    def escalate(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        payload = self.payload("update", event)
        payload.update(escalated=True, escalation_owner=event.get("escalation_owner"))
        self._post(payload, idempotency_key)

    def resolve(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        self._post(self.payload("resolve", event), idempotency_key)


PROVIDERS: dict[str, Callable[[Destination], Provider]] = {
    "jira": JiraProvider,
    "servicenow": ServiceNowProvider,
    "github": GitHubProvider,
    "webhook": WebhookProvider,
}


def provider_for(dest: Destination) -> Provider:
    """The provider named by ``dest.provider`` (jira | servicenow | github | webhook)."""
    factory = PROVIDERS.get(str(dest.provider or "").strip().lower())
    if factory is None:
        raise ValueError(f"unknown ticket provider {dest.provider!r}: extra.provider must be "
                         f"one of {', '.join(sorted(PROVIDERS))}")
    return factory(dest)
