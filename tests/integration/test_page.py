"""The page's findings list: every sort the page offers, both ways, paged without loss."""

from __future__ import annotations

from datetime import date

import pytest

from revleak import pipeline
from revleak.reports.page import SORTS, View, findings_page
from tests.books import Books


@pytest.fixture
def two_checks(conn, tmp_path):
    """Open findings of two checks: unbilled contracts and unpaid invoices."""
    b = Books()
    for n, amount in enumerate(("1200.00", "2400.00", "3600.00"), 1):
        b.contract(f"K{n}", amount, "2026-01-01", "2026-12-31", "monthly")
        b.bill(f"U{n}", f"C-U{n}", "2026-01-05", "2026-02-04", f"{n}00.00")
    b.payment("P0", "U1", "1.00", "2026-01-10T00:00:00+00:00", status="failed")
    b.heartbeat("2026-03-01").load(conn, tmp_path)
    pipeline.run_check("booked_vs_billed_daily", date(2026, 3, 31), {})
    pipeline.run_check("billed_vs_collected_weekly", date(2026, 3, 29), {})
    conn.commit()


@pytest.mark.parametrize("sort", list(SORTS))
@pytest.mark.parametrize("descending", [True, False])
def test_each_sort_orders_the_pages_and_loses_no_finding(conn, two_checks, sort, descending):
    open_findings = conn.execute(
        "select count(*) from revleak.findings where status = 'open'").fetchone()[0]
    seen = []
    for page in range(1, -(-open_findings // 3) + 1):
        rows, matching = findings_page(conn, View(sort=sort, descending=descending, page=page,
                                                  per_page=3))
        seen += rows
    assert matching == open_findings == len(seen) == len({r["fingerprint"] for r in seen}) > 6
    if sort == "check":  # the column named like an SQL keyword
        checks = [r["check"] for r in seen]
        assert checks == sorted(checks, reverse=descending)
        assert set(checks) == {"booked_vs_billed_daily", "billed_vs_collected_weekly"}
    if sort == "gap":
        gaps = [abs(r["gap_amount_base"]) for r in seen]
        assert gaps == sorted(gaps, reverse=descending)
