"""Requests checked against the vendors' published OpenAPI descriptions (``tests/specs``) with
openapi-core: a request the description refuses is a violation, and a violation fails the test
that caused it (see ``FakeServer.__exit__``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS = Path(__file__).resolve().parents[1] / "specs"


@dataclass
class _Request:
    """openapi-core's request protocol."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


class Spec:
    """One API description; ``refusal`` says why a request does not conform (None when it
    does)."""

    def __init__(self, filename: str):
        doc = json.loads((SPECS / filename).read_text(encoding="utf-8"))
        self.name = filename
        self.api = OpenAPI.from_dict(doc)
        self.server = doc["servers"][0]["url"].rstrip("/")

    def refusal(self, method: str, path: str, query: list[tuple[str, str]],
                headers: dict[str, str], body: bytes) -> str | None:
        request = _Request(
            self.server, path, method.lower(), body or None,
            (headers.get("Content-Type") or "").lower(),
            RequestParameters(query=ImmutableMultiDict(query), header=Headers(headers),
                              cookie=ImmutableMultiDict()))
        try:
            self.api.validate_request(request)
        except OpenAPIError as e:
            cause = f" ({e.__cause__})" if e.__cause__ else ""
            return f"{self.name} refuses {method} {path}: {e}{cause}"[:2000]
        return None


@cache
def spec(filename: str) -> Spec:
    """Parsed once per test session."""
    return Spec(filename)
