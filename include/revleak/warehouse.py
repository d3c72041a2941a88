"""The warehouse: PostgreSQL reached through the Airflow connection ``revleak_warehouse``.

Resolution order: ``AIRFLOW_CONN_REVLEAK_WAREHOUSE`` (URI or JSON, as anywhere in Airflow);
inside Airflow, any other connection source (secrets backend, metadata database);
otherwise an embedded PostgreSQL server from PyPI (pgserver) in ``$REVLEAK_HOME/pgdata``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from revleak.config import PROJECT_ROOT
from revleak.errors import RevleakError

CONN_ID = "revleak_warehouse"
ENV_VAR = "AIRFLOW_CONN_REVLEAK_WAREHOUSE"
SCHEMA_DIR = Path(os.environ.get("REVLEAK_SQL_DIR", PROJECT_ROOT / "sql")) / "schema"
LIBPQ_EXTRAS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name",
                "connect_timeout", "target_session_attrs", "host"}
log = logging.getLogger(__name__)


def revleak_home() -> Path:
    return Path(os.environ.get("REVLEAK_HOME") or PROJECT_ROOT / ".revleak")


def _libpq(host=None, port=None, login=None, password=None, schema=None, extra=None) -> dict:
    params = {"host": host or None, "port": port or None, "user": login or None,
              "password": password or None, "dbname": schema or None}
    params.update({k: v for k, v in (extra or {}).items() if k in LIBPQ_EXTRAS})
    return {k: v for k, v in params.items() if v is not None}


def _from_env(value: str) -> dict:
    """Parse an Airflow connection value (JSON or URI) into libpq parameters."""
    value = value.strip()
    if value.startswith("{"):
        try:
            c = json.loads(value)
        except json.JSONDecodeError:
            raise RevleakError(f"{ENV_VAR} is not valid JSON; use a URI or Airflow's JSON form")
        extra = c.get("extra") or {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
        return _libpq(c.get("host"), c.get("port"), c.get("login"), c.get("password"),
                      c.get("schema"), extra)
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise RevleakError(
            f"{ENV_VAR} must be a postgres:// or postgresql:// URI (got scheme {parts.scheme!r})"
        )
    extra = dict(
        (unquote(k), unquote(v))
        for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return _libpq(unquote(parts.hostname or ""), parts.port, unquote(parts.username or ""),
                  unquote(parts.password or ""), unquote(parts.path.lstrip("/")), extra)


def _from_airflow() -> dict | None:
    """A connection defined elsewhere in Airflow, when running inside Airflow."""
    if "airflow.sdk" not in sys.modules:
        return None
    from airflow.sdk import BaseHook

    try:
        c = BaseHook.get_connection(CONN_ID)
    except Exception:  # Airflow raises its own not-found types across versions
        return None
    return _libpq(c.host, c.port, c.login, c.password, c.schema, c.extra_dejson)


def embedded_server():
    """Start (or reuse) the project-local embedded PostgreSQL server."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = revleak_home() / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pgserver.get_server(pgdata, cleanup_mode=None)


def connection_params() -> dict:
    if value := os.environ.get(ENV_VAR):
        return _from_env(value)
    if params := _from_airflow():
        return params
    srv = embedded_server()
    return _from_env(srv.get_uri())


def describe(params: dict) -> str:
    """Where the warehouse is, without credentials."""
    where = params.get("host", "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    return f"{where}{port}/{params.get('dbname', '')}"


def connect(autocommit: bool = False) -> psycopg.Connection:
    params = connection_params()
    try:
        return psycopg.connect(autocommit=autocommit, connect_timeout=10, **params)
    except psycopg.OperationalError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else "connection refused"
        raise RevleakError(
            f"cannot reach the warehouse at {describe(params)} ({reason}); "
            f"check {ENV_VAR} or the Airflow connection {CONN_ID}"
        ) from None


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations from sql/schema in order; return the ones applied."""
    files = sorted(SCHEMA_DIR.glob("*.sql"))
    applied = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('revleak.migrate'))")
        conn.execute("create schema if not exists revleak_meta")
        conn.execute(
            "create table if not exists revleak_meta.schema_migrations ("
            " version text primary key, checksum text not null,"
            " applied_at timestamptz not null default now())"
        )
        done = dict(conn.execute("select version, checksum from revleak_meta.schema_migrations"))
        for f in files:
            sql = f.read_text(encoding="utf-8")
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if f.name in done:
                if done[f.name] != checksum:
                    raise RevleakError(
                        f"migration {f.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            conn.execute(sql)
            conn.execute(
                "insert into revleak_meta.schema_migrations (version, checksum) values (%s, %s)",
                (f.name, checksum),
            )
            applied.append(f.name)
    return applied
