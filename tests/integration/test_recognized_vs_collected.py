"""recognized_vs_collected_quarterly at its boundaries, on hand-computed books: the 90-day
collection lag, the 5-day deposit lag, deposits referenced by payment or invoice id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from revleak import findings, pipeline
from tests.books import Books

CHECK = "recognized_vs_collected_quarterly"
AS_OF = date(2026, 9, 30)


def gl(b: Books, entry_id: str, invoice_id: str, posted: str, amount: str) -> None:
    b.rows["gl_entries"].append({"entry_id": entry_id, "posted_date": posted,
                                 "account": "revenue", "customer_id": "C1",
                                 "invoice_id": invoice_id, "amount": amount, "currency": "USD"})


def bank(b: Books, txn_id: str, booked: str, amount: str, reference: str) -> None:
    b.rows["bank_transactions"].append({"txn_id": txn_id, "booked_date": booked,
                                        "amount": amount, "currency": "USD",
                                        "reference": reference})


def test_collection_and_deposit_lags(conn, tmp_path):
    b = Books()
    # recognized Jul 1 (91 days before Sep 30): a leak; Jul 2 (90 days): not yet
    b.bill("OLD", "C1", "2026-07-01", "2026-07-31", "1000.00")
    gl(b, "G1", "OLD", "2026-07-01", "1000.00")
    b.bill("NEW", "C1", "2026-07-02", "2026-08-01", "1000.00")
    gl(b, "G2", "NEW", "2026-07-02", "1000.00")
    b.bill("PAIDUP", "C1", "2026-06-01", "2026-07-01", "500.00")
    gl(b, "G3", "PAIDUP", "2026-06-01", "500.00")
    b.payment("P1", "PAIDUP", "500.00", "2026-06-20T10:00:00+00:00")
    bank(b, "T1", "2026-06-25", "500.00", "P1")        # deposited after 5 days: fine
    b.payment("P2", None, "300.00", "2026-09-20T10:00:00+00:00", customer_id="C1")
    bank(b, "T2", "2026-09-26", "300.00", "P2")        # 6 days later: not deposited in time
    b.bill("INVREF", "C1", "2026-09-01", "2026-10-01", "200.00")
    b.payment("P3", "INVREF", "200.00", "2026-09-10T10:00:00+00:00")
    bank(b, "T3", "2026-09-12", "200.00", "INVREF")    # deposit referencing the invoice
    b.payment("P4", None, "100.00", "2026-09-26T10:00:00+00:00", customer_id="C1")  # in transit
    b.load(conn, tmp_path)
    pipeline.run_check(CHECK, AS_OF)
    conn.commit()
    got = {f["entity_id"]: f for f in findings.query(conn, CHECK, AS_OF)}
    assert set(got) == {"OLD", "P2"}
    old = got["OLD"]
    assert (old["category"], old["gap_amount"], old["days_outstanding"]) == (
        "recognized_not_collected", Decimal("1000.0000"), 0)
    p2 = got["P2"]
    assert (p2["category"], p2["gap_amount"], p2["days_outstanding"]) == (
        "payment_not_deposited", Decimal("300.0000"), 5)
