"""booked_vs_billed_daily at every rule boundary, on hand-computed books (contract §3)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from revleak import findings, pipeline
from tests.books import Books

CHECK = "booked_vs_billed_daily"


def found(conn, as_of, **overrides):
    pipeline.run_check(CHECK, date.fromisoformat(as_of), overrides)
    conn.commit()
    return {f["entity_id"]: f for f in findings.query(conn, CHECK, date.fromisoformat(as_of))
            if f["entity_type"] == "opportunity" and f["status"] == "open"}


def monthly_1000(books, opp, start="2026-01-01", **kw):
    return books.contract(opp, "12000.00", start, "2026-12-31", "monthly", **kw)


def test_tolerance_exactly_at_is_not_a_leak_one_cent_over_is(conn, tmp_path):
    b = Books()
    monthly_1000(b, "AT").invoice("AT1", "AT", "2026-01-01", "1000.00") \
        .invoice("AT2", "AT", "2026-02-01", "1000.00").invoice("AT3", "AT", "2026-03-01", "985.00")
    monthly_1000(b, "OVER").invoice("OV1", "OVER", "2026-01-01", "1000.00") \
        .invoice("OV2", "OVER", "2026-02-01", "1000.00") \
        .invoice("OV3", "OVER", "2026-03-01", "984.99")
    b.load(conn, tmp_path)
    # as of Apr 15: Jan, Feb, Mar are due (3,000); tolerance = 0.5% × 3,000 = 15.00
    result = found(conn, "2026-04-15")
    assert "AT" not in result
    f = result["OVER"]
    assert (f["category"], f["gap_amount"], f["expected_amount"], f["actual_amount"]) == (
        "under_billed", Decimal("15.0100"), Decimal("3000.0000"), Decimal("2984.9900"))
    assert f["days_outstanding"] == 14  # March is the oldest period not fully billed: due Apr 1
    assert f["time_weighted_loss"] == Decimal("15.01") * 14
    assert f["evidence"]["tolerance"] == 15.0
    assert f["evidence"]["invoice_ids"] == ["OV1", "OV2", "OV3"]


def test_minimum_tolerance_is_one_unit_of_the_contract_currency(conn, tmp_path):
    b = Books()
    b.contract("SMALL", "100.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("S1", "SMALL", "2026-01-01", "99.00")   # gap 1.00 = minimum → not a leak
    b.contract("SMALL2", "100.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("S2", "SMALL2", "2026-01-01", "98.99")  # gap 1.01 → leak
    b.load(conn, tmp_path)
    result = found(conn, "2026-03-01")
    assert set(result) == {"SMALL2"}
    assert result["SMALL2"]["gap_amount"] == Decimal("1.0100")


@pytest.mark.parametrize(("as_of", "days"), [("2026-03-31", None), ("2026-04-01", 0),
                                             ("2026-04-02", 1)])
def test_billing_lag_boundary(conn, tmp_path, as_of, days):
    """March's period (starts Mar 1) is due on Apr 1 = Mar 1 + 31 days."""
    b = Books()
    monthly_1000(b, "LAG").invoice("L1", "LAG", "2026-01-01", "1000.00") \
        .invoice("L2", "LAG", "2026-02-01", "1000.00")
    b.load(conn, tmp_path)
    result = found(conn, as_of)
    if days is None:
        assert result == {}
    else:
        assert result["LAG"]["category"] == "unbilled"
        assert result["LAG"]["gap_amount"] == Decimal("1000.0000")
        assert result["LAG"]["days_outstanding"] == days


@pytest.mark.parametrize(("frequency", "amount", "end", "due", "oldest_due"), [
    ("one_time", "5000.00", "2026-12-31", "5000.00", "2026-02-01"),
    ("monthly", "12000.00", "2026-12-31", "7000.00", "2026-02-01"),     # Jan..Jul due
    ("quarterly", "12000.00", "2026-12-31", "9000.00", "2026-02-01"),   # Jan, Apr, Jul due
    ("annual", "24000.00", "2027-12-31", "12000.00", "2026-02-01"),     # 2026 due
])
def test_each_billing_frequency(conn, tmp_path, frequency, amount, end, due, oldest_due):
    b = Books()
    b.contract("F", amount, "2026-01-01", end, frequency).heartbeat("2026-01-01")
    b.load(conn, tmp_path)
    f = found(conn, "2026-08-15")["F"]
    assert f["category"] == "unbilled"
    assert f["gap_amount"] == Decimal(due)
    assert f["days_outstanding"] == (date(2026, 8, 15) - date.fromisoformat(oldest_due)).days


def test_partial_billing_fills_periods_oldest_first(conn, tmp_path):
    b = Books()
    monthly_1000(b, "P").invoice("P1", "P", "2026-01-01", "1000.00") \
        .invoice("P2", "P", "2026-02-01", "400.00")
    b.load(conn, tmp_path)
    f = found(conn, "2026-04-15")["P"]  # due Jan–Mar = 3,000, billed 1,400
    assert (f["category"], f["gap_amount"]) == ("unbilled", Decimal("1600.0000"))
    assert f["days_outstanding"] == (date(2026, 4, 15) - date(2026, 3, 4)).days  # Feb due Mar 4
    periods = f["evidence"]["periods"]
    assert [p["billed"] for p in periods] == [1000.0, 400.0, 0.0, 0.0]


def test_credit_notes_subtract_and_fix_over_billing(conn, tmp_path):
    b = Books()
    monthly_1000(b, "FIXED").invoice("X1", "FIXED", "2026-01-01", "1000.00") \
        .invoice("X2", "FIXED", "2026-01-02", "1000.00") \
        .invoice("X3", "FIXED", "2026-01-05", "-1000.00", kind="credit_note") \
        .invoice("X4", "FIXED", "2026-02-01", "1000.00")
    monthly_1000(b, "OVER").invoice("V1", "OVER", "2026-01-01", "1000.00") \
        .invoice("V2", "OVER", "2026-01-10", "1000.00") \
        .invoice("V3", "OVER", "2026-02-01", "1000.00")
    monthly_1000(b, "CREDITED").invoice("R1", "CREDITED", "2026-01-01", "1000.00") \
        .invoice("R2", "CREDITED", "2026-01-20", "-1000.00", kind="credit_note")
    b.load(conn, tmp_path)
    result = found(conn, "2026-02-10")  # started: Jan, Feb = 2,000; due: Jan = 1,000
    assert "FIXED" not in result
    over = result["OVER"]
    assert (over["category"], over["gap_amount"]) == ("over_billed", Decimal("-1000.0000"))
    assert over["days_outstanding"] == (date(2026, 2, 10) - date(2026, 2, 1)).days
    assert result["CREDITED"]["category"] == "unbilled"
    assert result["CREDITED"]["gap_amount"] == Decimal("1000.0000")


def test_draft_and_void_invoices_do_not_count(conn, tmp_path):
    b = Books()
    b.contract("D", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("D1", "D", "2026-01-01", "1000.00", status="draft") \
        .invoice("D2", "D", "2026-01-01", "1000.00", status="void")
    b.contract("U", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("U1", "U", "2026-01-01", "1000.00", status="uncollectible")
    b.load(conn, tmp_path)
    result = found(conn, "2026-03-01")
    assert set(result) == {"D"}
    assert result["D"]["gap_amount"] == Decimal("1000.0000")


def test_invoices_issued_after_the_as_of_date_do_not_count(conn, tmp_path):
    b = Books()
    b.contract("LATE", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("LATE1", "LATE", "2026-03-02", "1000.00").heartbeat("2026-01-01")
    b.load(conn, tmp_path)
    assert "LATE" in found(conn, "2026-03-01")
    assert "LATE" not in found(conn, "2026-03-02")


def test_gap_in_base_currency_uses_the_rate_on_the_as_of_date(conn, tmp_path):
    b = Books()
    b.contract("EU", "1000.00", "2026-01-01", "2026-12-31", "one_time", currency="EUR")
    b.fx("EUR", "2026-02-01", "1.1000").fx("EUR", "2026-03-02", "9.0000")  # later: ignored
    b.heartbeat("2026-01-01")
    b.load(conn, tmp_path)
    f = found(conn, "2026-03-01")["EU"]
    assert (f["currency"], f["gap_amount"], f["gap_amount_base"]) == (
        "EUR", Decimal("1000.0000"), Decimal("1100.0000"))
    assert f["time_weighted_loss"] == Decimal("1100") * (date(2026, 3, 1) - date(2026, 2, 1)).days


@pytest.mark.parametrize(("as_of", "days"), [("2026-01-30", None), ("2026-01-31", 0),
                                             ("2026-02-01", 1)])
def test_renewal_grace(conn, tmp_path, as_of, days):
    """Ended Dec 31: a renewal miss once it ended more than 30 days before the as-of date."""
    b = Books()
    b.contract("END", "1200.00", "2025-01-01", "2025-12-31", "annual") \
        .invoice("E1", "END", "2025-01-01", "1200.00")
    b.contract("RENEWED", "1200.00", "2025-01-01", "2025-12-31", "annual") \
        .invoice("N1", "RENEWED", "2025-01-01", "1200.00")
    b.contract("NEXT", "0", "", "", stage="proposal", renewal_of="RENEWED",
               customer_id="C-RENEWED")
    b.heartbeat("2025-06-01")
    b.load(conn, tmp_path)
    result = found(conn, as_of)
    assert "RENEWED" not in result
    if days is not None:
        f = result["END"]
        assert (f["category"], f["gap_amount"], f["days_outstanding"]) == (
            "renewal_miss", Decimal("1200.0000"), days)
    else:
        assert "END" not in result


def test_auto_renewing_contracts_keep_expecting_billing(conn, tmp_path):
    b = Books()
    b.contract("AUTO", "1200.00", "2025-01-01", "2025-12-31", "quarterly", auto_renew=True) \
        .invoice("A1", "AUTO", "2025-01-01", "300.00") \
        .invoice("A2", "AUTO", "2025-04-01", "300.00") \
        .invoice("A3", "AUTO", "2025-07-01", "300.00").invoice("A4", "AUTO", "2025-10-01", "300.00")
    b.load(conn, tmp_path)
    result = found(conn, "2026-03-01")
    f = result["AUTO"]  # the renewed term's first quarter (Jan 2026) is due and unbilled
    assert (f["category"], f["gap_amount"], f["days_outstanding"]) == (
        "unbilled", Decimal("300.0000"), (date(2026, 3, 1) - date(2026, 2, 1)).days)
    assert f["evidence"]["periods"][-1]["term"] == 1


def test_portfolio_finding_and_realization_metric(conn, tmp_path):
    b = Books()
    b.contract("A", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("A1", "A", "2026-01-01", "1000.00")
    b.contract("B", "1000.00", "2026-01-01", "2026-12-31", "one_time")
    b.load(conn, tmp_path)
    found(conn, "2026-03-01")
    portfolio = [f for f in findings.query(conn, CHECK, date(2026, 3, 1))
                 if f["entity_type"] == "portfolio"]
    assert len(portfolio) == 1
    assert portfolio[0]["gap_amount"] == Decimal("1000.0000")
    rate = conn.execute("select value from revleak.metrics where check_id = %s and as_of = %s"
                        " and metric = 'realization_rate'", (CHECK, date(2026, 3, 1))).fetchone()
    assert rate[0] == Decimal("0.5")


def test_a_one_time_contract_is_never_a_renewal_miss(conn, tmp_path):
    b = Books()
    b.contract("FEE", "5000.00", "2025-01-01", "2025-03-31", "one_time") \
        .invoice("F1", "FEE", "2025-01-05", "5000.00")   # an implementation fee, billed
    b.contract("SUB", "1200.00", "2025-01-01", "2025-12-31", "annual") \
        .invoice("S1", "SUB", "2025-01-05", "1200.00")   # a subscription that lapsed
    b.load(conn, tmp_path)
    result = found(conn, "2026-06-01")
    assert set(result) == {"SUB"}
    assert result["SUB"]["category"] == "renewal_miss"


def test_an_invoice_in_another_currency_counts_at_the_rate_of_its_issue_date(conn, tmp_path):
    # base USD; 1 GBP = 1.30 USD from Jan 1, 1.20 USD from Mar 1 (the as-of rate must not be used)
    b = Books().fx("GBP", "2026-01-01", "1.30").fx("GBP", "2026-03-01", "1.20")
    b.contract("RIGHT", "12000.00", "2026-01-01", "2026-12-31", "one_time", currency="GBP") \
        .invoice("R1", "RIGHT", "2026-02-01", "15600.00", currency="USD")   # = 12,000 GBP
    b.contract("SHORT", "10000.00", "2026-01-01", "2026-12-31", "one_time", currency="GBP") \
        .invoice("W1", "SHORT", "2026-02-01", "10000.00", currency="USD")   # = 7,692.31 GBP
    b.load(conn, tmp_path)
    result = found(conn, "2026-04-01")
    assert set(result) == {"SHORT"}
    f = result["SHORT"]
    # 10,000 USD × (1 / 1.30) = 7,692.3077 GBP billed; gap 2,307.69 GBP, 2,769.23 USD at 1.20
    assert (f["currency"], f["expected_amount"], f["actual_amount"], f["gap_amount"]) == (
        "GBP", Decimal("10000.0000"), Decimal("7692.3100"), Decimal("2307.6900"))
    assert f["gap_amount_base"] == Decimal("2769.2300")
    [invoice] = f["evidence"]["converted_invoices"]
    assert (invoice["invoice_id"], invoice["currency"], invoice["amount"], invoice["billed"]) == (
        "W1", "USD", 10000.0, 7692.31)
    assert round(invoice["fx_rate"], 6) == round(1 / 1.30, 6)


def test_a_one_time_contract_marked_auto_renew_is_still_billed_once(conn, tmp_path):
    Books().contract("ONCE", "120.00", "2024-06-28", "2024-07-27", "one_time", auto_renew=True) \
        .invoice("O1", "ONCE", "2024-06-28", "120.00").load(conn, tmp_path)
    assert found(conn, "2025-01-01") == {}
