"""Airflow connections outside and inside Airflow: ``AIRFLOW_CONN_<ID>`` (URI or JSON, as
anywhere in Airflow) first; inside Airflow, any other source (secrets backend, metadata DB).

A malformed connection fails in one line that says what is wrong and how to write it; the
line never quotes the value, which may hold a password."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from revleak.errors import RevleakError

URI_FORM = ("scheme://login:password@host:port/schema?key=value (percent-encode @ : / # ? "
            "in the password) or Airflow's JSON form")
NUMERIC_EXTRAS = ("timeout", "connect_timeout")  # seconds


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


def _bad_port(where: str) -> RevleakError:
    return RevleakError(f"{where}: the port is not a whole number from 1 to 65535; if the "
                        "password holds @ : / # or ?, percent-encode them (@ → %40, / → %2F)")


def _port(value: Any, where: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise _bad_port(where) from None
    if isinstance(value, bool) or not 0 < port < 65536:
        raise _bad_port(where)
    return port


def _extra(value: Any, where: str) -> dict[str, Any]:
    """The extras as a mapping; numeric extras checked (e.g. ``timeout``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except json.JSONDecodeError:
            raise RevleakError(f'{where}: extra is not valid JSON; write a JSON object such as '
                               f'{{"provider": "webhook", "timeout": 10}}') from None
    value = value or {}
    if not isinstance(value, dict):
        raise RevleakError(f'{where}: extra must be a JSON object such as {{"timeout": 10}}')
    for key in NUMERIC_EXTRAS:
        if key in value:
            try:
                ok = not isinstance(value[key], bool) and float(value[key]) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise RevleakError(f"{where}: extra.{key} must be a number of seconds above 0, "
                                   f"e.g. 10")
    return value


def parse(value: str, conn_id: str) -> ConnectionInfo:
    """Parse an Airflow connection value: JSON or URI (query parameters become extras)."""
    where = env_var(conn_id)
    value = value.strip()
    if value.startswith("{"):
        try:
            c = json.loads(value)
        except json.JSONDecodeError as e:
            raise RevleakError(f"{where} is not valid JSON (line {e.lineno}, column {e.colno}); "
                               f"write {URI_FORM}") from None
        text = {k: c.get(k) for k in ("conn_type", "host", "login", "password", "schema")}
        wrong = [k for k, v in text.items() if v is not None and not isinstance(v, str)]
        if wrong:
            raise RevleakError(f"{where}: {wrong[0]} must be a text in Airflow's JSON form")
        return ConnectionInfo(text["conn_type"], text["host"], _port(c.get("port"), where),
                              text["login"], text["password"], text["schema"],
                              _extra(c.get("extra"), where))
    scheme = value.split(":", 1)[0]
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced [ in the host
        parts = None
    if parts is None or not parts.scheme or not value[len(scheme) + 1:].startswith("//"):
        raise RevleakError(f"{where} is not a connection URI; write {URI_FORM}")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        raise _bad_port(where) from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra = _extra(query.get("__extra__", query), where)
    return ConnectionInfo(parts.scheme.replace("-", "_"), unquote(parts.hostname or "") or None,
                          port, unquote(parts.username or "") or None,
                          unquote(parts.password or "") or None,
                          unquote(parts.path.lstrip("/")) or None, extra)


def _mask(*secrets: str | None) -> None:
    """Inside Airflow, hide these values in every task log line."""
    if "airflow.sdk" in sys.modules:
        from airflow.sdk.log import mask_secret

        for secret in secrets:
            if secret:
                mask_secret(secret)


def lookup(conn_id: str) -> ConnectionInfo | None:
    """The connection, or None when it is defined nowhere."""
    if value := os.environ.get(env_var(conn_id)):
        _mask(value)  # the whole value too: a malformed one may hide its password anywhere
        info = parse(value, conn_id)
        _mask(info.password)
        return info
    if "airflow.sdk" not in sys.modules:
        return None
    from airflow.sdk import BaseHook

    try:
        c = BaseHook.get_connection(conn_id)
    except Exception:  # Airflow raises its own not-found types across versions
        return None
    where = f"the Airflow connection {conn_id}"
    return ConnectionInfo(c.conn_type, c.host, _port(c.port, where), c.login, c.password,
                          c.schema, _extra(c.extra_dejson, where))
