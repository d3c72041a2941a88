"""Contract §5: a signed JSON POST to the connection URL; the password is the HMAC key.

Escalations go out as ``action: "update"`` plus ``escalated: true`` and
``escalation_owner`` (whom the receiver should reassign the ticket to). Every POST carries the
event's ``Idempotency-Key``, the same on every retry, so the receiver dedupes: nothing to look
up before sending again. No extra keys are read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests

from revleak.tickets import text
from revleak.tickets.base import Destination, Outcome
from revleak.tickets.transport import Transport

log = logging.getLogger(__name__)
FIELDS = (
    "action", "fingerprint", "check", "category", "entity_type", "entity_id", "customer_id",
    "as_of", "owner", "due_date", "gap_amount", "gap_amount_base", "currency", "gap_pct",
    "days_outstanding", "time_weighted_loss", "title", "body",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class WebhookProvider:
    name = "webhook"
    consistent_find = True

    def __init__(self, dest: Destination, pacer: Callable[[], None] | None = None):
        if not dest.password:  # still deliver; the receiver verifies with an empty secret
            log.warning("webhook connection has no password: signing with an empty secret")
        self._key = (dest.password or "").encode()
        # The URL itself may be a capability (e.g. /hooks/<secret>): keep it out of messages.
        self.http = Transport(dest, self.name, show_path=False, pacer=pacer)

    def close(self) -> None:
        self.http.close()

    def preflight(self) -> None:
        """Nothing to check before delivering."""

    def find(self, event: dict[str, Any], since: datetime) -> str | None:
        return None  # the receiver dedupes by Idempotency-Key instead

    def payload(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        """The §5 fields (missing ones null), with title and body filled in."""
        body = {f: event.get(f) for f in FIELDS}
        body.update(action=action, title=text.title(event), body=event["body"])
        return body

    def sign(self, raw: bytes) -> str:
        return "sha256=" + hmac.new(self._key, raw, hashlib.sha256).hexdigest()

    def _post(self, payload: dict[str, Any], event: dict[str, Any]) -> requests.Response:
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                         default=_json_default).encode()
        return self.http.send("POST", "", data=raw, headers={
            "Content-Type": "application/json", "Idempotency-Key": event["idempotency_key"],
            "X-Revleak-Signature": self.sign(raw)})

    def open(self, event: dict[str, Any]) -> Outcome:
        resp = self._post(self.payload("open", event), event)
        try:
            data = resp.json()
        except ValueError:
            data = None
        key = data.get("key") if isinstance(data, dict) else None
        return Outcome(str(key) if key not in (None, "") else str(event["fingerprint"]))

    def update(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._post(self.payload("update", event), event)
        return Outcome(key)

    def escalate(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        payload = self.payload("update", event)
        payload.update(escalated=True, escalation_owner=event.get("escalation_owner"))
        self._post(payload, event)
        return Outcome(key)

    def resolve(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._post(self.payload("resolve", event), event)
        return Outcome(key)
