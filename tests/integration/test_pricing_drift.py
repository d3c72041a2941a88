"""pricing_drift_quarterly on hand-computed lines: each kind of drift, the amount the lines
should have come to, approvals and valid promotions spared, lines outside the quarter ignored."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from revleak import findings, pipeline
from tests.books import Books

CHECK = "pricing_drift_quarterly"
AS_OF = date(2026, 9, 30)


def line(b: Books, invoice_id: str, customer: str, issued: str, sku: str, qty: str,
         price: str, discount: str = "", promo: str = "") -> None:
    if not any(c["customer_id"] == customer for c in b.rows["customers"]):
        b.customer(customer)
    b.rows["invoices"].append({"invoice_id": invoice_id, "customer_id": customer,
                               "issue_date": issued, "due_date": issued, "currency": "USD",
                               "status": "open", "kind": "invoice"})
    amount = Decimal(qty) * Decimal(price) * (1 - Decimal(discount or 0) / 100)
    b.rows["invoice_lines"].append({"invoice_id": invoice_id, "line_no": 1, "sku": sku,
                                    "quantity": qty, "unit_price": price,
                                    "discount_pct": discount, "promo_code": promo,
                                    "amount": f"{amount:.2f}"})


def test_each_kind_of_drift(conn, tmp_path):
    b = Books()
    b.rows["rate_cards"] += [
        {"sku": "PLAN", "currency": "USD", "list_price": "100.00", "effective_from": "2025-01-01",
         "effective_to": "2026-06-30"},
        {"sku": "PLAN", "currency": "USD", "list_price": "120.00", "effective_from": "2026-07-01",
         "effective_to": ""}]
    b.rows["promotions"] += [
        {"promo_code": "SUMMER", "discount_pct": "10", "valid_from": "2026-06-01",
         "valid_to": "2026-08-31", "stackable": "false"}]
    line(b, "OK", "C1", "2026-07-15", "PLAN", "2", "120.00")
    line(b, "OLD", "C2", "2026-08-01", "PLAN", "2", "100.00")        # grandfathered: 240 vs 200
    line(b, "ODD", "C3", "2026-08-01", "PLAN", "1", "110.00")        # mismatch: 120 vs 110
    line(b, "PROMO", "C4", "2026-08-15", "PLAN", "1", "120.00", "10", "SUMMER")  # valid promo
    line(b, "LATE", "C5", "2026-09-10", "PLAN", "1", "120.00", "10", "SUMMER")   # expired
    line(b, "STACK", "C6", "2026-08-15", "PLAN", "1", "120.00", "25", "SUMMER")  # stacked
    line(b, "DEAL", "C7", "2026-08-15", "PLAN", "1", "120.00", "20")  # no approval
    line(b, "OKDEAL", "C8", "2026-08-15", "PLAN", "1", "120.00", "20")  # approved
    b.rows["discount_approvals"].append({"approval_id": "A1", "customer_id": "C8", "sku": "",
                                         "max_discount_pct": "25", "approved_by": "CFO",
                                         "valid_from": "2026-01-01", "valid_to": ""})
    line(b, "Q2", "C9", "2026-06-15", "PLAN", "1", "90.00")  # issued in the quarter before
    b.load(conn, tmp_path)
    pipeline.run_check(CHECK, AS_OF)
    conn.commit()
    got = {f["entity_id"]: f for f in findings.query(conn, CHECK, AS_OF)}
    assert {k: (f["category"], f["expected_amount"], f["actual_amount"])
            for k, f in got.items()} == {
        "C2:PLAN": ("grandfathered_rate", Decimal("240.0000"), Decimal("200.0000")),
        "C3:PLAN": ("price_mismatch", Decimal("120.0000"), Decimal("110.0000")),
        "C5:PLAN": ("expired_promo", Decimal("120.0000"), Decimal("108.0000")),
        "C6:PLAN": ("stacked_discount", Decimal("108.0000"), Decimal("90.0000")),
        "C7:PLAN": ("unapproved_discount", Decimal("102.0000"), Decimal("96.0000")),
    }
    assert got["C2:PLAN"]["days_outstanding"] == (AS_OF - date(2026, 8, 1)).days
    assert got["C2:PLAN"]["evidence"]["subscription_drift"] is True


def test_lines_in_another_currency_than_the_customers_are_a_drift_of_their_own(conn, tmp_path):
    """One customer, one SKU mispriced in USD (its currency) and in EUR: two findings, not a
    run that fails on a duplicate fingerprint (found by tests/property)."""
    b = Books().customer("C1", "USD").fx("EUR", "2026-01-01", "1.25")
    for ccy in ("USD", "EUR"):
        b.rows["rate_cards"].append({"sku": "PLAN", "currency": ccy, "list_price": "100.00",
                                     "effective_from": "2026-01-01", "effective_to": ""})
    b.bill("IU", "C1", "2026-08-03", "2026-08-03", "90.00", "USD")
    b.bill("IE", "C1", "2026-08-04", "2026-08-04", "80.00", "EUR")
    b.load(conn, tmp_path)
    pipeline.run_check(CHECK, AS_OF)
    conn.commit()
    got = {f["entity_id"]: (f["category"], f["currency"].strip(), f["gap_amount"],
                            f["gap_amount_base"]) for f in findings.query(conn, CHECK, AS_OF)}
    assert got == {"C1:PLAN": ("price_mismatch", "USD", Decimal("10.0000"), Decimal("10.0000")),
                   "C1:PLAN:EUR": ("price_mismatch", "EUR", Decimal("20.0000"),
                                   Decimal("25.0000"))}
