"""Subscription drift (docs/pricing.md) on hand-computed contracts: an active recurring
contract's price per period for a SKU (its latest invoice in the window, before discounts)
against the rate card in force that day. 4.9% and exactly 5% are no drift, 5.1% is (either
way); one finding per contract and SKU with its figures; one_time, ended and fixed contracts
are none. The change check finds the same drifts under its own id and writes no ticket."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from revleak import findings, pipeline
from tests.books import Books

QUARTERLY, ON_CHANGE = "pricing_drift_quarterly", "pricing_drift_on_change"
AS_OF = date(2026, 9, 30)  # the window: Jul 1 – Sep 30
YEAR = ("2026-01-01", "2026-12-31")


def card(b: Books, sku: str, price: str, start: str = "2025-01-01", end: str = "") -> None:
    b.rows["rate_cards"].append({"sku": sku, "currency": "USD", "list_price": price,
                                 "effective_from": start, "effective_to": end})


def billed(b: Books, invoice_id: str, opp: str, issued: str,
           *lines: tuple[str, str, str, str]) -> None:
    """An invoice of the contract with lines (sku, quantity, unit price, discount %)."""
    customer = next(o["customer_id"] for o in b.rows["opportunities"]
                    if o["opportunity_id"] == opp)
    b.rows["invoices"].append({"invoice_id": invoice_id, "customer_id": customer,
                               "opportunity_id": opp, "issue_date": issued,
                               "due_date": issued, "currency": "USD", "status": "open",
                               "kind": "invoice"})
    for n, (sku, qty, price, discount) in enumerate(lines, 1):
        amount = Decimal(qty) * Decimal(price) * (1 - Decimal(discount or 0) / 100)
        b.rows["invoice_lines"].append({"invoice_id": invoice_id, "line_no": n, "sku": sku,
                                        "quantity": qty, "unit_price": price,
                                        "discount_pct": discount, "amount": f"{amount:.2f}"})


def monthly(b: Books, opp: str, price: str, months=(7, 8, 9), sku: str = "PLAN") -> None:
    b.contract(opp, "1200.00", *YEAR)  # 12 periods of 100.00
    for m in months:
        billed(b, f"{opp}-{m}", opp, f"2026-{m:02d}-01", (sku, "1", price, ""))


@pytest.fixture
def books(conn, tmp_path):
    b = Books()
    card(b, "PLAN", "100.00")
    card(b, "SEAT", "50.00")
    card(b, "SUITE", "100.00")
    card(b, "PRO", "200.00", end="2026-08-15")
    card(b, "PRO", "240.00", start="2026-08-16")
    monthly(b, "K+4.9", "104.90")
    monthly(b, "K+5.0", "105.00")
    monthly(b, "K-4.9", "95.10")
    monthly(b, "K-5.1", "94.90", months=(8, 9))
    monthly(b, "K+5.1", "105.10")  # and a SEAT at its rate card on the September invoice
    b.rows["invoice_lines"].append({"invoice_id": "K+5.1-9", "line_no": 2, "sku": "SEAT",
                                    "quantity": "2", "unit_price": "50.00", "amount": "100.00"})
    b.contract("KQ", "1200.00", *YEAR, frequency="quarterly")  # 4 periods of 300.00
    billed(b, "KQ-7", "KQ", "2026-07-01", ("SUITE", "3", "110.00", ""))
    b.contract("KAUTO", "1200.00", "2025-01-01", "2025-12-31", auto_renew=True)  # renewed
    billed(b, "KAUTO-8", "KAUTO", "2026-08-03", ("PLAN", "1", "110.00", ""))
    b.contract("KCHG", "2400.00", *YEAR)  # the rate card rose on Aug 16, the price did not
    billed(b, "KCHG-7", "KCHG", "2026-07-10", ("PRO", "1", "200.00", ""))
    billed(b, "KCHG-9", "KCHG", "2026-09-10", ("PRO", "1", "200.00", ""))
    # no subscription drift:
    b.contract("KONE", "120.00", *YEAR, frequency="one_time")  # not a subscription
    billed(b, "KONE-7", "KONE", "2026-07-01", ("PLAN", "1", "120.00", ""))
    b.contract("KOLD", "800.00", "2026-01-01", "2026-08-31")  # ended before the as-of date
    billed(b, "KOLD-7", "KOLD", "2026-07-01", ("PLAN", "1", "120.00", ""))
    b.contract("KMIX", "1200.00", *YEAR)  # drifted in July, billed right since
    billed(b, "KMIX-7", "KMIX", "2026-07-01", ("PLAN", "1", "110.00", ""))
    billed(b, "KMIX-9", "KMIX", "2026-09-01", ("PLAN", "1", "100.00", ""))
    b.contract("KDISC", "1200.00", *YEAR)  # a discount is no drift (its own rules judge it)
    billed(b, "KDISC-8", "KDISC", "2026-08-01", ("PLAN", "1", "100.00", "20"))
    b.contract("KQ2", "1200.00", *YEAR)  # drifted, but only before the window
    billed(b, "KQ2-6", "KQ2", "2026-06-01", ("PLAN", "1", "120.00", ""))
    b.load(conn, tmp_path)
    return b


# entity → expected (rate card per period), actual (billed), gap, gap %, days outstanding,
# drift %, annualized impact (gap × periods a year), contract price per period
EXPECTED = {
    "K+5.1:PLAN": ("100.00", "105.10", "-5.10", "-5.1000", 91, "5.1000", "-61.20", "100.00"),
    "K-5.1:PLAN": ("100.00", "94.90", "5.10", "5.1000", 60, "-5.1000", "61.20", "100.00"),
    "KQ:SUITE": ("300.00", "330.00", "-30.00", "-10.0000", 91, "10.0000", "-120.00", "300.00"),
    "KAUTO:PLAN": ("100.00", "110.00", "-10.00", "-10.0000", 58, "10.0000", "-120.00",
                   "100.00"),
    "KCHG:PRO": ("240.00", "200.00", "40.00", "16.6667", 20, "-16.6667", "480.00", "200.00"),
}


def drifts(conn, check: str) -> dict[str, dict]:
    return {f["entity_id"]: f for f in findings.query(conn, check, AS_OF)
            if f["category"] == "subscription_drift"}


def figures(f: dict) -> tuple:
    e = f["evidence"]
    return (f["expected_amount"], f["actual_amount"], f["gap_amount"], f["gap_pct"],
            f["days_outstanding"], Decimal(str(e["drift_pct"])),
            Decimal(str(e["annualized_impact"])), Decimal(str(e["contract_price"])))


def test_drift_beyond_the_limit_either_way_one_finding_per_contract_and_sku(conn, books):
    pipeline.run_check(QUARTERLY, AS_OF)
    conn.commit()
    got = drifts(conn, QUARTERLY)
    assert {k: figures(f) for k, f in got.items()} == {
        k: (*map(Decimal, v[:4]), v[4], *map(Decimal, v[5:])) for k, v in EXPECTED.items()}
    f = got["K+5.1:PLAN"]
    assert (f["entity_type"], f["customer_id"], f["currency"].strip()) == \
        ("contract_sku", "C-K+5.1", "USD")
    assert f["gap_amount_base"] == Decimal("-5.10")
    e = f["evidence"]
    assert (e["opportunity_id"], e["sku"], e["customer_name"], e["billing_frequency"],
            e["periods_per_year"], e["invoice_id"]) == \
        ("K+5.1", "PLAN", "C-K+5.1", "monthly", 12, "K+5.1-9")
    assert (Decimal(str(e["billed_price"])), Decimal(str(e["rate_card_price"])),
            Decimal(str(e["limit_pct"]))) == (Decimal("105.10"), Decimal("100.00"), 5)
    assert [(x["invoice_id"], Decimal(str(x["unit_price"]))) for x in e["lines"]] == [
        ("K+5.1-7", Decimal("105.10")), ("K+5.1-8", Decimal("105.10")),
        ("K+5.1-9", Decimal("105.10"))]
    assert [x["invoice_id"] for x in got["KCHG:PRO"]["evidence"]["lines"]] == ["KCHG-7",
                                                                             "KCHG-9"]
    # the line-level categories still judge every line (a price off the card to the cent)
    mismatched = {f["entity_id"] for f in findings.query(conn, QUARTERLY, AS_OF)
                  if f["category"] == "price_mismatch"}
    assert {"C-K+4.9:PLAN", "C-K+5.0:PLAN", "C-K+5.1:PLAN"} <= mismatched


def test_a_stricter_limit_is_read_from_the_rules(conn, books, tmp_path, monkeypatch):
    """The limit is the configured rule, shared by both pricing checks: at 4.8% the 4.9% and
    5% drifts count too."""
    from revleak.config import load_config

    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(Path(os.environ["REVLEAK_CONFIG"]).read_text().replace(
        "subscription_drift_pct: 5 ", "subscription_drift_pct: 4.8 "))
    monkeypatch.setenv("REVLEAK_CONFIG", str(stricter))
    assert load_config().rules[ON_CHANGE]["subscription_drift_pct"] == Decimal("4.8")
    pipeline.run_check(ON_CHANGE, AS_OF)
    conn.commit()
    assert set(drifts(conn, ON_CHANGE)) == {*EXPECTED, "K+4.9:PLAN", "K-4.9:PLAN",
                                                 "K+5.0:PLAN"}


def test_the_change_check_finds_the_same_drifts_under_its_own_id_and_opens_no_ticket(conn,
                                                                                     books):
    pipeline.run_check(ON_CHANGE, AS_OF)
    pipeline.run_check(QUARTERLY, AS_OF)
    conn.commit()
    on_change, quarterly = drifts(conn, ON_CHANGE), drifts(conn, QUARTERLY)
    assert {k: figures(f) for k, f in on_change.items()} == \
        {k: figures(f) for k, f in quarterly.items()}
    assert not {f["fingerprint"] for f in on_change.values()} & \
        {f["fingerprint"] for f in quarterly.values()}
    outbox = conn.execute("select f.check_id, count(*) from revleak.ticket_outbox o"
                          " join revleak.findings f using (fingerprint)"
                          " group by f.check_id").fetchall()
    assert dict(outbox)[QUARTERLY] > 0 and ON_CHANGE not in dict(outbox)
    assert conn.execute("select rule_version from revleak.check_runs where check_id = %s",
                        (ON_CHANGE,)).fetchone()[0] == "pd-2"
