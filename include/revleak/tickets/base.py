"""The one small interface every ticket system implements, and the errors the relay reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Destination:
    """Where tickets go: the fields of the Airflow connection ``revleak_tickets``."""

    provider: str  # jira | servicenow | github | webhook (extra.provider)
    base_url: str  # scheme://host[:port][/path] built from the connection
    login: str | None = None
    password: str | None = field(default=None, repr=False)  # token / secret: never logged
    extra: dict[str, Any] = field(default_factory=dict)
    timeout: float = 10.0

    @property
    def key(self) -> str:
        """What rate limits and pacing are shared by: the system and its URL (no secrets)."""
        return f"{self.provider} {self.base_url}"

    def flag(self, name: str) -> bool:
        """A yes/no ``extra`` key, false when absent (Airflow's URI form gives text: ``true``,
        ``false``, ``1``, ``0``, ``yes``, ``no``)."""
        value = self.extra.get(name, False)
        if isinstance(value, bool):
            return value
        said = str(value).strip().lower()
        if said in ("true", "1", "yes", "false", "0", "no", ""):
            return said in ("true", "1", "yes")
        raise ValueError(f"extra.{name} must be true or false (got {value!r})")


class DeliveryError(Exception):
    """A delivery that may succeed later (5xx, timeout, reset). ``retry_after`` in seconds when
    the server said so; ``maybe_applied`` when a write may have taken effect before it failed.
    Messages never contain credentials."""

    def __init__(self, message: str, retry_after: float | None = None,
                 maybe_applied: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class RateLimited(DeliveryError):
    """The system asked us to slow down (429, GitHub's 403 secondary limit, an exhausted
    ``x-ratelimit-remaining``): pause the whole destination; the attempt does not count.
    ``retry_after`` is None when the reply named no wait."""


class Deferred(DeliveryError):
    """Not now, and not a failure: a search that may still miss a ticket created moments ago
    (Jira's index), or the relay's budget ending before the next write slot. Try again after
    ``retry_after`` seconds; the attempt does not count."""


class RejectedError(Exception):
    """The ticket system refused the request for good (4xx other than 429): do not retry.
    ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class AuthError(RejectedError):
    """401: the connection's credentials are wrong. Nothing can be delivered until fixed."""


class Refused(RejectedError):
    """revleak will not send tickets to this destination as configured (a GitHub repository
    that people outside it can read, without ``extra.allow_public``). Nothing can be delivered
    until the connection changes; the message names what to set."""


@dataclass
class Outcome:
    """What one delivery did: the ticket key, and anything a person should fix (for example an
    owner the ticket system does not know as an assignee)."""

    key: str
    notices: list[str] = field(default_factory=list)


class Provider(Protocol):
    """A ticket system. ``event`` is the outbox payload (contract §5 fields plus
    ``owner``/``escalation_owner`` with per-system ids, ``priority`` and
    ``previous_ticket_key``), with ``body`` rendered once from the templates and ``ref``, the
    event's marker, which every ticket and comment it writes carries.

    ``in_doubt_since`` is set when an earlier attempt of the same event may have reached the
    system (a crash, a timeout, a lost reply): the provider then looks for the event's marker
    before writing again."""

    name: str
    consistent_find: bool  # False: a fresh ticket may be missing from find() for a while
    http: Any  # its transport.Transport

    def preflight(self) -> None:
        """What the destination must pass before anything is sent to it, asked once per relay
        run (GitHub: who can read the repository); raises ``Refused`` when it must not
        receive tickets."""

    def find(self, event: dict[str, Any], since: datetime) -> str | None:
        """The ticket an earlier attempt of this open event created, if any."""

    def open(self, event: dict[str, Any]) -> Outcome:
        """Create the ticket."""

    def update(self, key: str, event: dict[str, Any], in_doubt_since: datetime | None
               ) -> Outcome:
        """Record new figures on the ticket (a comment / work note)."""

    def escalate(self, key: str, event: dict[str, Any], in_doubt_since: datetime | None
                 ) -> Outcome:
        """Deadline passed: a comment, and the ticket reassigned to the escalation owner."""

    def resolve(self, key: str, event: dict[str, Any], in_doubt_since: datetime | None
                ) -> Outcome:
        """Say what changed and close the ticket."""

    def close(self) -> None:
        """Release the HTTP session."""
