"""Airflow connections outside and inside Airflow: ``AIRFLOW_CONN_<ID>`` (URI or JSON, as
anywhere in Airflow) first; inside Airflow, any other source (secrets backend, metadata DB)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from revleak.errors import RevleakError


@dataclass(frozen=True)
class ConnectionInfo:
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def parse(value: str, conn_id: str) -> ConnectionInfo:
    """Parse an Airflow connection value: JSON or URI (query parameters become extras)."""
    value = value.strip()
    if value.startswith("{"):
        try:
            c = json.loads(value)
        except json.JSONDecodeError:
            raise RevleakError(f"{env_var(conn_id)} is not valid JSON; use a URI or Airflow's "
                               "JSON form") from None
        extra = c.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra or "{}")
        port = c.get("port")
        return ConnectionInfo(c.get("conn_type"), c.get("host"), int(port) if port else None,
                              c.get("login"), c.get("password"), c.get("schema"), extra)
    parts = urlsplit(value)
    if not parts.scheme:
        raise RevleakError(f"{env_var(conn_id)} must be a URI like scheme://user:pass@host/path "
                           "or Airflow's JSON form")
    extra = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    if "__extra__" in extra:
        extra = json.loads(extra["__extra__"])
    return ConnectionInfo(parts.scheme.replace("-", "_"), unquote(parts.hostname or "") or None,
                          parts.port, unquote(parts.username or "") or None,
                          unquote(parts.password or "") or None,
                          unquote(parts.path.lstrip("/")) or None, extra)


def lookup(conn_id: str) -> ConnectionInfo | None:
    """The connection, or None when it is defined nowhere."""
    if value := os.environ.get(env_var(conn_id)):
        return parse(value, conn_id)
    if "airflow.sdk" not in sys.modules:
        return None
    from airflow.sdk import BaseHook

    try:
        c = BaseHook.get_connection(conn_id)
    except Exception:  # Airflow raises its own not-found types across versions
        return None
    return ConnectionInfo(c.conn_type, c.host, c.port, c.login, c.password, c.schema,
                          c.extra_dejson)
