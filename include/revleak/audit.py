"""Who changed what: manual actions that change state — failed ticket events queued again, a
run with overridden rules, a load that replaced stored rows — are kept in
``revleak.audit_log`` with who (the Airflow user who triggered the run, inside Airflow; the OS
user on the command line), when and what, in the same transaction as the change.
``revleak audit`` shows them."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def actor() -> tuple[str, str]:
    """(who, via): inside an Airflow task the user who triggered its run, else the OS user."""
    if "airflow.sdk" in sys.modules:
        from airflow.sdk import get_current_context

        try:
            run = get_current_context()["dag_run"]
        except RuntimeError:  # no task is running: a command line that imported Airflow
            pass
        else:
            return (getattr(run, "triggering_user_name", None) or "airflow scheduler",
                    "airflow")
    try:
        return getpass.getuser(), "cli"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}", "cli"


def record(conn: psycopg.Connection, action: str, subject: str, detail: dict[str, Any]) -> None:
    who, via = actor()
    conn.execute("insert into revleak.audit_log (actor, via, action, subject, detail)"
                 " values (%s, %s, %s, %s, %s)", (who, via, action, subject, Jsonb(detail)))


def entries(conn: psycopg.Connection, since: datetime | None = None, limit: int = 50):
    """The latest entries first (at most ``limit``), since a moment if given."""
    return conn.cursor(row_factory=dict_row).execute(
        "select audit_id, at, actor, via, action, subject, detail from revleak.audit_log"
        " where %(since)s::timestamptz is null or at >= %(since)s"
        " order by at desc, audit_id desc limit %(limit)s",
        {"since": since, "limit": limit}).fetchall()
