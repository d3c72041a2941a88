"""A price-signal receiver (docs/pricing.md): a real HTTP server on 127.0.0.1 that verifies the
HMAC signature with its secret (401 when wrong), wants JSON and an ``Idempotency-Key``, and
acts once per key (a repeated key gets the first reply again).

``signals`` holds each signal acted on (payload, headers, raw body), ``deliveries`` every
accepted POST with ``duplicate`` set for a repeated key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.ticket_fakes.base import FakeServer, HttpError, Reply, Request

PATH = "/hooks/prices"


class PriceSignalReceiver(FakeServer):
    provider = "webhook"

    def __init__(self, secret: str | None = None):
        super().__init__(None, secret)
        self.signals: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.replies: dict[str, Reply] = {}
        self.route("POST", PATH, self.receive)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def connection_uri(self, secret: str | None = None) -> str:
        """``AIRFLOW_CONN_REVLEAK_PRICE_SIGNALS``: the URL with the signing secret as password."""
        return self.url.replace("http://", f"http://:{secret or self.password}@", 1)

    def authenticate(self, req: Request) -> None:
        """The signature is checked in ``receive``."""

    def receive(self, req: Request) -> Reply:
        expected = "sha256=" + hmac.new(self.password.encode(), req.body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest((req.headers.get("X-Revleak-Signature") or "").encode(),
                                   expected.encode()):
            raise HttpError(401, {"error": "bad signature"})
        key = req.headers.get("Idempotency-Key")
        if not key:
            raise self.bad("Idempotency-Key header required")
        payload = self.body_object(req)
        self.deliveries.append({"key": key, "payload": payload, "duplicate": key in self.replies})
        if key not in self.replies:
            self.signals.append({"payload": payload, "headers": dict(req.headers.items()),
                                 "raw": req.body})
            self.replies[key] = Reply(202, {"accepted": key})
        return self.replies[key]
