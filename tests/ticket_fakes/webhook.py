"""A contract §5 receiver, checked against ``tests/specs/revleak-webhook.json``: verifies the
HMAC, dedupes by Idempotency-Key, replies a key.

``deliveries`` holds every accepted POST: ``{"headers", "raw", "payload", "duplicate"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
from typing import Any

from tests.ticket_fakes.base import FakeServer, HttpError, Reply, Request
from tests.ticket_fakes.spec import spec

SPEC_PATH = "/hooks/revleak"  # the path in the description; the fake may listen elsewhere


class WebhookServer(FakeServer):
    provider = "webhook"
    spec = spec("revleak-webhook.json")

    def __init__(self, secret: str | None = None, path: str = SPEC_PATH):
        super().__init__(None, secret)
        self.path = path
        self.deliveries: list[dict[str, Any]] = []
        self.replies: dict[str, Reply] = {}
        self._nums = itertools.count(1)
        self.route("POST", re.escape(path), self.receive)

    @property
    def secret(self) -> str:
        assert self.password
        return self.password

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def refusal(self, req: Request, pairs: list[tuple[str, str]]) -> str | None:
        if self.spec is None or req.path != self.path:
            return None  # unchecked, or not the receiver: a plain 404
        return self.spec.refusal(req.method, SPEC_PATH, pairs, dict(req.headers.items()),
                                 req.body)

    def authenticate(self, req: Request) -> None:
        """The signature is checked in ``receive``, after the Content-Type."""

    def signature(self, raw: bytes) -> str:
        return "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()

    def receive(self, req: Request) -> Reply:
        got = req.headers.get("X-Revleak-Signature") or ""
        if not hmac.compare_digest(got.encode(), self.signature(req.body).encode()):
            raise HttpError(401, {"error": "bad signature"})
        idem = req.headers["Idempotency-Key"]
        payload = self.body_object(req)
        record = {"headers": dict(req.headers.items()), "raw": req.body, "payload": payload,
                  "duplicate": idem in self.replies}
        self.deliveries.append(record)
        if idem in self.replies:
            return self.replies[idem]
        reply = self._apply(payload)
        self.replies[idem] = reply
        if payload["action"] == "open":
            self._created()
        return reply

    def _apply(self, payload: dict[str, Any]) -> Reply:
        if payload["action"] == "open":
            key = f"WH-{next(self._nums)}"
            self.tickets[key] = {"key": key, "fingerprint": payload["fingerprint"],
                                 "state": "open", "escalated": False, "events": [payload],
                                 "comments": []}
            return Reply(201, {"key": key})
        ticket = next((t for t in reversed(self.tickets.values())
                       if t["fingerprint"] == payload["fingerprint"]), None)
        if ticket is None:
            return Reply(404, {"error": "no ticket for this fingerprint"})
        ticket["events"].append(payload)
        ticket["comments"].append(payload.get("body") or "")
        if payload.get("escalated"):
            ticket["escalated"] = True
        if payload["action"] == "resolve":
            ticket["state"] = "resolved"
        return Reply(200, {"key": ticket["key"]})
