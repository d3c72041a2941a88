"""What backfills through a running Airflow must equal: the same books checked one date at a
time outside Airflow; and the tickets a webhook receiver got for them."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import psycopg
import pytest

from revleak import loader, pipeline
from tests.ticket_fakes import WebhookServer


def tickets_connection(hook: WebhookServer) -> str:
    """``AIRFLOW_CONN_REVLEAK_TICKETS`` for the receiver (the URI form, signed with its secret)."""
    return hook.url.replace("http://", f"http://x:{hook.secret}@", 1) + "?provider=webhook"


def history(uri: str) -> list[tuple]:
    with psycopg.connect(uri) as conn:
        return conn.execute(
            "select check_id, fingerprint, as_of, status, category, gap_amount,"
            " gap_amount_base, days_outstanding, time_weighted_loss"
            " from revleak.finding_history order by 1, 2, 3").fetchall()


def succeeded_checks(uri: str) -> list[tuple[str, date]]:
    """(check, as of) of every succeeded run, in that order."""
    with psycopg.connect(uri) as conn:
        return conn.execute(
            "select check_id, as_of from revleak.check_runs where status = 'succeeded'"
            " order by 1, 2").fetchall()


def assert_same_as_one_by_one(pg_server, warehouse_uri: str, books: Path,
                              checked: list[tuple[str, date]]) -> None:
    """The same books, checked one date at a time outside Airflow (``checked`` in its order)
    in a database of their own, leave the same finding history as the warehouse's."""
    name = psycopg.conninfo.conninfo_to_dict(warehouse_uri)["dbname"] + "_one_by_one"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name} template revleak_template")
    one_uri = pg_server.get_uri(name)
    with psycopg.connect(one_uri) as conn:
        loader.load(conn, books)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_REVLEAK_WAREHOUSE", one_uri)
        for check, as_of in checked:
            pipeline.run_check(check, as_of)
    backfilled = history(warehouse_uri)
    assert backfilled and backfilled == history(one_uri)


def opened(hook: WebhookServer) -> Counter:
    """How many times each fingerprint was opened at the receiver (retries it had taken
    already left out)."""
    return Counter(d["payload"]["fingerprint"] for d in hook.deliveries
                   if d["payload"]["action"] == "open" and not d["duplicate"])
