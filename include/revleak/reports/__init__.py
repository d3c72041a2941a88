"""Reports people would rather look at than read: one self-contained HTML report (charts
inline, prints on A4 or Letter) and one CSV of findings per check run, rendered from the
stored findings — the same bytes for the same inputs — and kept in the report store."""

from __future__ import annotations

from datetime import date

import psycopg

from revleak import statements, warehouse
from revleak.config import Config, load_config
from revleak.reports import data, render, storage
from revleak.reports.data import NotRecorded

__all__ = ["NotRecorded", "link_tickets", "publish", "stored_or_rendered"]


def publish(check: str, as_of: date, location: str | None = None,
            config: Config | None = None) -> list[str]:
    """Render the run's report and CSV from stored findings into the report store (or
    ``location``); return where they were written, the HTML first."""
    config = config or load_config()
    store = storage.root(config, location)
    with warehouse.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for both
        conn.read_only = True
        with conn.transaction():
            data.run(conn, check, as_of, config)  # nothing is written for a run never recorded
            return [storage.write(store / storage.file_name(check, as_of, kind),
                                  producer(conn, check, as_of, config))
                    for kind, producer in (("html", render.html), ("csv", render.csv_rows))]


def stored_or_rendered(check: str, as_of: date, kind: str,
                       config: Config | None = None) -> bytes:
    """A report as stored; rendered from stored findings (same bytes) when it never was."""
    config = config or load_config()
    stored = storage.read(storage.root(config) / storage.file_name(check, as_of, kind))
    if stored is not None:
        return stored
    producer = render.html if kind == "html" else render.csv_rows
    with warehouse.connect() as conn, conn.transaction():
        return "".join(producer(conn, check, as_of, config)).encode()


def link_tickets(conn: psycopg.Connection, check: str, as_of: date, config: Config) -> int:
    """Give the run's pending ticket events a ``report_url``: the report that holds the
    finding, at its row (``#f-<fingerprint>``). Returns how many events were linked."""
    return conn.execute(statements.named("reports/tickets.sql")["link"], {
        "report_url": render.report_url(config, check, as_of), "check": check,
        "as_of": as_of}).rowcount
