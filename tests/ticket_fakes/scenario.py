"""Books and runs that produce ticket events, and the relay settings tests use.

``leaky_books``: contract A (12,000 a year, billed monthly) and B (6,000 EUR, quarterly) are
never billed, OK is billed in full: a run on 2026-03-10 opens A, B and the portfolio's
realization finding (3 open events). ``lifecycle_events`` adds, on later dates, an update for
A (its gap grows), an escalation for each (deadline passed) and a resolve for A (billed in
full on 2026-03-12).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from revleak import pipeline
from revleak.config import DEFAULT_PATH
from tests.books import Books

CHECK = "booked_vs_billed_daily"
# Small waits so rate limits, Jira's search lag and pacing fit in a test.
FAST = {"rate_limit_pause_seconds": 1.0, "search_settle_seconds": 1.0,
        "write_interval_seconds": {"github": 0.05}, "max_attempts": 10}


def leaky_books(conn, tmp_path: Path, more: int = 0) -> None:
    """A, B and OK; ``more`` contracts like A (``M0``, ``M1``, ...) add one finding each."""
    b = Books()
    b.contract("A", "12000.00", "2026-01-01", "2026-12-31", "monthly") \
        .contract("B", "6000.00", "2026-01-01", "2026-12-31", "quarterly", currency="EUR") \
        .contract("OK", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("OK1", "OK", "2026-01-01", "1000.00").fx("EUR", "2026-01-01", "1.10")
    for i in range(more):
        b.contract(f"M{i}", "12000.00", "2026-01-01", "2026-12-31", "monthly")
    b.load(conn, tmp_path)


def many_leaks(conn, tmp_path: Path, n: int) -> None:
    """``n`` contracts never billed, one billed in full: ``n`` + 1 open events on Mar 10."""
    b = Books()
    for i in range(n):
        b.contract(f"L{i:03d}", "1200.00", "2026-01-01", "2026-12-31", "monthly")
    b.contract("OK", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("OK1", "OK", "2026-01-01", "1000.00")
    b.load(conn, tmp_path)


def check(day: date) -> None:
    pipeline.run_check(CHECK, day)


def bill_later(conn, directory: Path, invoice_id: str, opportunity_id: str,
               customer_id: str, day: str, amount: str) -> None:
    """One paid invoice of one line, issued and due on ``day``, billing a contract the books
    already hold (loaded from ``directory``)."""
    fix = Books()
    fix.rows["invoices"].append({"invoice_id": invoice_id, "customer_id": customer_id,
                                 "opportunity_id": opportunity_id, "issue_date": day,
                                 "due_date": day, "currency": "USD", "status": "paid",
                                 "kind": "invoice"})
    fix.rows["invoice_lines"].append({"invoice_id": invoice_id, "line_no": 1, "sku": "PLAN",
                                      "quantity": "1", "unit_price": amount, "amount": amount})
    fix.load(conn, directory)


def bill_a_in_full(conn, tmp_path: Path) -> None:
    """A's first quarter (3 × 1,000), billed on 2026-03-12."""
    bill_later(conn, tmp_path / "fix", "A-FIX", "A", "C-A", "2026-03-12", "3000.00")


def lifecycle_events(conn, tmp_path: Path, more: int = 0) -> None:
    """open (Feb 10), update and escalate (Mar 10) for each finding, resolve A (Mar 12): all
    pending."""
    leaky_books(conn, tmp_path, more)
    check(date(2026, 2, 10))
    check(date(2026, 3, 10))
    bill_a_in_full(conn, tmp_path)
    check(date(2026, 3, 12))


def outbox(conn) -> list[tuple[Any, ...]]:
    conn.commit()
    return conn.execute("select event_id, action, status, attempts, idempotency_key,"
                        " fingerprint, generation, last_error, notice"
                        " from revleak.ticket_outbox order by event_id").fetchall()


def config_file(tmp_path: Path, **tickets: Any) -> Path:
    """The project's configuration with ``tickets`` settings replaced (for REVLEAK_CONFIG)."""
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    data["tickets"] = {**data.get("tickets", {}), **tickets}
    path = tmp_path / "revleak.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path
