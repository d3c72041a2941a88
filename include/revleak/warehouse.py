"""The warehouse: PostgreSQL reached through the Airflow connection ``revleak_warehouse``.

Resolution order: ``AIRFLOW_CONN_REVLEAK_WAREHOUSE`` (URI or JSON, as anywhere in Airflow);
inside Airflow, any other connection source (secrets backend, metadata database);
otherwise an embedded PostgreSQL server from PyPI (pgserver) in ``$REVLEAK_HOME/pgdata``.
Inside Airflow the connection is opened by the postgres provider's ``PostgresHook`` (its
extras, IAM and options as Airflow documents them); outside it, by psycopg directly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import warnings
from pathlib import Path

import psycopg

from revleak import connections
from revleak.config import PROJECT_ROOT
from revleak.errors import RevleakError

CONN_ID = "revleak_warehouse"
ENV_VAR = "AIRFLOW_CONN_REVLEAK_WAREHOUSE"
SQL_DIR = Path(os.environ.get("REVLEAK_SQL_DIR") or Path(__file__).resolve().parent / "sql")
SCHEMA_DIR = SQL_DIR / "schema"
LIBPQ_EXTRAS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name",
                "connect_timeout", "target_session_attrs", "host"}
log = logging.getLogger(__name__)
_embedded = threading.Lock()  # pgserver is not thread-safe while it starts the server


def revleak_home() -> Path:
    return Path(os.environ.get("REVLEAK_HOME") or PROJECT_ROOT / ".revleak")


def _libpq(c: connections.ConnectionInfo) -> dict:
    params = {"host": c.host, "port": c.port, "user": c.login, "password": c.password,
              "dbname": c.schema}
    params.update({k: v for k, v in c.extra.items() if k in LIBPQ_EXTRAS})
    return {k: v for k, v in params.items() if v not in (None, "")}


def _pgserver():
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def embedded_server():
    """Start (or reuse) the project-local embedded PostgreSQL server; it keeps running after
    the process ends (``revleak stop`` stops it). Threads share one handle per process."""
    pgserver = _pgserver()
    pgdata = revleak_home() / "pgdata"
    with _embedded, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgdata.mkdir(parents=True, exist_ok=True)
        return pgserver.get_server(pgdata, cleanup_mode=None)


def stop_embedded() -> bool:
    """Stop the embedded server if it runs (fast shutdown: open sessions end); True if it did."""
    pgserver = _pgserver()
    from pgserver.utils import PostmasterInfo

    pgdata = revleak_home() / "pgdata"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.is_dir() else None
    if info is None or not info.is_running():
        return False
    # as root, pgserver runs the server as its own system user: pg_ctl must too
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return True


def _defined() -> connections.ConnectionInfo | None:
    """The warehouse connection where one is defined (a PostgreSQL one), else None."""
    info = connections.lookup(CONN_ID)
    if info is not None and info.conn_type not in (None, "postgres", "postgresql"):
        raise RevleakError(f"{ENV_VAR} (or the Airflow connection {CONN_ID}) must be a "
                           f"postgres:// or postgresql:// URI (got {info.conn_type!r})")
    return info


def connection_params(info: connections.ConnectionInfo | None = None) -> dict:
    """libpq parameters of the defined connection, else of the embedded server."""
    info = info or _defined() or connections.parse(embedded_server().get_uri(), CONN_ID)
    return _libpq(info)


def socket_dir() -> str:
    """The embedded server's socket folder (its libpq host)."""
    return connections.parse(embedded_server().get_uri(), CONN_ID).extra["host"]


def describe(params: dict) -> str:
    """Where the warehouse is, without credentials."""
    where = params.get("host", "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    return f"{where}{port}/{params.get('dbname', '')}"


def connect(autocommit: bool = False) -> psycopg.Connection:
    """Inside Airflow, with the connection defined, Airflow's own PostgresHook opens it;
    otherwise psycopg, falling back to the embedded server."""
    info = _defined()
    params = connection_params(info)
    try:
        if info is not None and "airflow.sdk" in sys.modules:
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            conn = PostgresHook(postgres_conn_id=CONN_ID).get_conn()
            conn.autocommit = autocommit
            return conn
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
    if not files:
        raise RevleakError(f"no migrations in {SCHEMA_DIR}; reinstall revleak (its SQL ships "
                           "inside the package)")
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
