"""The one small interface every ticket system implements, and the errors the relay reads."""

from __future__ import annotations

from dataclasses import dataclass, field
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


class DeliveryError(Exception):
    """A delivery that may succeed later (5xx, 429, timeout, reset). ``retry_after`` in
    seconds when the server said so. Messages never contain credentials."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RejectedError(Exception):
    """The ticket system refused the request for good (4xx other than 429): do not retry."""


class Provider(Protocol):
    """A ticket system. ``event`` is the contract §5 payload plus ``owner.account_id``,
    ``escalation_owner``, ``priority`` (highest|high|medium|low) and ``previous_ticket_key``."""

    def find(self, fingerprint: str) -> str | None:
        """The key of the ticket already opened for this fingerprint, if any (crash recovery)."""

    def open(self, event: dict[str, Any], idempotency_key: str) -> str:
        """Create the ticket; return its key."""

    def update(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        """Record new figures on the ticket (a comment / work note)."""

    def resolve(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        """Say what changed and close the ticket."""

    def escalate(self, key: str, event: dict[str, Any], idempotency_key: str) -> None:
        """Deadline passed: comment and hand to the escalation owner."""
