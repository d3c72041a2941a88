"""billed_vs_collected_weekly at its rule boundaries, on hand-computed books (contract §3):
past-due balances above tolerance by category, what counts as collected, unapplied cash,
the realization alarm, and the weekly window of a run."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from revleak import findings, pipeline
from revleak.checks import DataMissing
from tests.books import Books

CHECK = "billed_vs_collected_weekly"
SUNDAY = date(2026, 3, 8)  # the as-of date of the Monday Mar 9 run
T = "2026-03-0{}T10:00:00+00:00"


def found(conn, as_of=SUNDAY, **overrides):
    pipeline.run_check(CHECK, as_of, overrides)
    conn.commit()
    return {f["entity_id"]: f for f in findings.query(conn, CHECK, as_of)}


def books() -> Books:
    b = Books()
    b.bill("PAID", "C1", "2026-02-01", "2026-03-01", "1000.00") \
        .payment("P1", "PAID", "1000.00", T.format(1))
    b.bill("TWO", "C1", "2026-02-01", "2026-03-01", "1000.00") \
        .payment("P2", "TWO", "400.00", T.format(1)).payment("P3", "TWO", "600.00", T.format(2))
    b.bill("NONE", "C2", "2026-02-01", "2026-03-01", "500.00")
    b.bill("SHORT", "C2", "2026-02-01", "2026-03-01", "1000.00") \
        .payment("P4", "SHORT", "900.00", T.format(1))
    b.bill("EDGE", "C2", "2026-02-01", "2026-03-01", "1000.00") \
        .payment("P5", "EDGE", "995.00", T.format(1))  # 5.00 short = 0.5%: not a leak
    b.bill("FAILED", "C3", "2026-02-01", "2026-03-01", "800.00") \
        .payment("P6", "FAILED", "800.00", T.format(1), status="failed")
    b.bill("DISPUTE", "C3", "2026-02-01", "2026-03-01", "700.00") \
        .payment("P7", "DISPUTE", "700.00", T.format(1), status="disputed")
    b.bill("REFUND", "C3", "2026-02-01", "2026-03-01", "300.00") \
        .payment("P8", "REFUND", "300.00", T.format(1), status="refunded")
    b.bill("NOTDUE", "C3", "2026-02-20", "2026-03-08", "900.00")  # due on the as-of date
    b.bill("VOID", "C3", "2026-02-01", "2026-03-01", "900.00", status="void")
    b.bill("LATEPAY", "C3", "2026-02-01", "2026-03-01", "250.00") \
        .payment("P9", "LATEPAY", "250.00", "2026-03-09T08:00:00+00:00")  # after the Sunday
    b.payment("CASH", None, "450.00", T.format(2), customer_id="C1")
    return b


def test_past_due_balances_by_category(conn, tmp_path):
    books().load(conn, tmp_path)
    result = found(conn)
    invoices = {k: v for k, v in result.items() if v["entity_type"] == "invoice"}
    assert {k: v["category"] for k, v in invoices.items()} == {
        "NONE": "unpaid", "SHORT": "short_paid", "FAILED": "payment_failed",
        "DISPUTE": "disputed", "REFUND": "unpaid", "LATEPAY": "unpaid"}
    short = invoices["SHORT"]
    assert (short["expected_amount"], short["actual_amount"], short["gap_amount"]) == (
        Decimal("1000.0000"), Decimal("900.0000"), Decimal("100.0000"))
    assert short["days_outstanding"] == 7  # due Mar 1, as of Mar 8
    assert invoices["DISPUTE"]["actual_amount"] == 0  # disputed money is not collected
    cash = result["CASH"]
    assert (cash["category"], cash["entity_type"], cash["gap_amount"], cash["days_outstanding"]) \
        == ("unapplied_cash", "payment", Decimal("450.0000"), 6)


def test_tolerance_override_and_one_cent_over(conn, tmp_path):
    b = books()
    b.bill("CENT", "C4", "2026-02-01", "2026-03-01", "1000.00") \
        .payment("P10", "CENT", "994.99", T.format(1))  # 5.01 short
    b.load(conn, tmp_path)
    result = found(conn)
    assert "EDGE" not in result and result["CENT"]["gap_amount"] == Decimal("5.0100")
    assert "SHORT" not in found(conn, tolerance_pct=20)  # 100 short of 1000 is inside 20%


def test_realization_alarm_below_95_percent(conn, tmp_path):
    books().load(conn, tmp_path)
    portfolio = found(conn)["all"]
    # past due: 1000+1000+500+1000+1000+800+700+300+250 billed; collected 1000+1000+900+995
    assert portfolio["entity_type"] == "portfolio"
    assert portfolio["expected_amount"] == Decimal("6550.0000")
    assert portfolio["actual_amount"] == Decimal("3895.0000")
    rate = conn.execute("select value from revleak.metrics where check_id = %s and as_of = %s"
                        " and metric = 'realization_rate'", (CHECK, SUNDAY)).fetchone()[0]
    assert rate == Decimal("0.594656")


def test_a_monday_run_checks_the_week_before_as_of_its_sunday(conn, tmp_path):
    books().load(conn, tmp_path)
    run = pipeline.check_run(CHECK, datetime.fromisoformat("2026-03-09T06:00:00+00:00"), {})
    assert run.as_of == SUNDAY
    run = pipeline.check_run(CHECK, datetime.fromisoformat("2026-03-11T12:00:00+00:00"), {})
    assert run.as_of == SUNDAY  # a manual run mid-week checks the same completed week


def test_missing_payments_export_is_data_missing(conn, tmp_path):
    b = Books()
    b.bill("NONE", "C2", "2026-02-01", "2026-03-01", "500.00")
    b.load(conn, tmp_path)
    with pytest.raises(DataMissing, match="load payments.csv"):
        pipeline.run_check(CHECK, SUNDAY)
