"""Settled contracts and invoices (schema 0018) are read, not reconciled again — with the same
findings and totals as a full reconciliation, and unsettled by any later write to their books."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from psycopg import sql

from revleak import findings, pipeline
from tests.books import Books

CHECK = "booked_vs_billed_daily"
COLLECTION = "billed_vs_collected_weekly"


def settled(conn) -> set[str]:
    return {r[0] for r in conn.execute("select opportunity_id from revleak.settled_contracts")}


def run(conn, as_of: str, check: str = CHECK) -> tuple[dict, dict]:
    """The check's open findings (but portfolio totals) and the run's figures for one date."""
    pipeline.run_check(check, date.fromisoformat(as_of), {})
    conn.commit()
    found = {f["entity_id"]: (f["category"], f["gap_amount"])
             for f in findings.query(conn, check, date.fromisoformat(as_of))
             if f["status"] == "open" and f["entity_type"] != "portfolio"}
    metrics = dict(conn.execute(
        "select metric, value from revleak.metrics where check_id = %s and as_of = %s",
        (check, date.fromisoformat(as_of))).fetchall())
    conn.commit()
    return found, metrics


def reconciled_in_full(conn, settlements: str, dates, check: str) -> dict:
    """The same dates again with nothing settled (and nothing marked): what a full
    reconciliation of every entity finds."""
    conn.execute(sql.SQL("delete from revleak.{}").format(sql.Identifier(settlements)))
    conn.commit()
    return {d: run(conn, d, check) for d in dates}


def books() -> Books:
    b = Books()
    # billed exactly, ended, renewed by NEW: settled once its last period is due (Dec 1)
    b.contract("DONE", "1200.00", "2025-01-01", "2025-12-31", "monthly")
    for m in range(1, 13):
        b.invoice(f"D{m}", "DONE", f"2025-{m:02d}-01", "100.00")
    b.contract("NEW", "1200.00", "2026-01-01", "2026-12-31", "monthly", renewal_of="DONE")
    b.invoice("N1", "NEW", "2026-01-01", "100.00")
    # one_time, billed exactly: settled from its start, no renewal needed
    b.contract("ONCE", "500.00", "2025-03-01", "2025-03-31", "one_time") \
        .invoice("O1", "ONCE", "2025-03-01", "500.00")
    # billed exactly but never renewed: not settled (a renewal miss is possible)
    b.contract("LAPSED", "300.00", "2025-01-01", "2025-03-31", "quarterly") \
        .invoice("L1", "LAPSED", "2025-01-01", "300.00")
    # billed in another currency: not settled (an fx rate may move it)
    b.contract("EUR", "100.00", "2025-02-01", "2025-02-28", "one_time", currency="EUR") \
        .invoice("E1", "EUR", "2025-02-01", "110.00", currency="USD").fx("EUR", "2025-01-01", "1.1")
    return b.heartbeat("2026-03-31")


def test_settled_contracts_give_what_a_full_reconciliation_gives(conn, tmp_path):
    books().load(conn, tmp_path)
    dates = ("2026-03-01", "2025-06-15", "2026-01-01", "2025-12-31")  # newest, then backfills
    with_settled = {d: run(conn, d) for d in dates}
    assert settled(conn) == {"DONE", "ONCE", "HEARTBEAT"}
    # DONE counts as settled from its last period's due date (Dec 1 + 31 days' billing lag)
    assert conn.execute(
        "select last_period_start, last_issue_date from revleak.settled_contracts"
        " where opportunity_id = 'DONE'").fetchone() == (date(2025, 12, 1), date(2025, 12, 1))
    assert with_settled["2026-03-01"][0] == {  # HEARTBEAT is billed on Mar 31 only
        "LAPSED": ("renewal_miss", Decimal("300.0000")),
        "HEARTBEAT": ("unbilled", Decimal("10.0000"))}
    assert with_settled["2026-03-01"][1]["contracts_checked"] == 6
    assert reconciled_in_full(conn, "settled_contracts", dates, CHECK) == with_settled


def test_a_write_to_a_settled_contracts_books_unsettles_it(conn, tmp_path):
    books().load(conn, tmp_path)
    assert "DONE" not in run(conn, "2026-03-01")[0]
    assert "DONE" in settled(conn)
    # a late invoice for DONE: marked in the same statement, re-derived before the next run
    conn.execute("insert into revleak.invoices (invoice_id, customer_id, opportunity_id,"
                 " issue_date, due_date, currency, status, kind) values ('D13', 'C-DONE',"
                 " 'DONE', '2026-02-01', '2026-02-01', 'USD', 'open', 'invoice')")
    conn.execute("insert into revleak.invoice_lines (invoice_id, line_no, sku, quantity,"
                 " unit_price, amount) values ('D13', 1, 'PLAN', 1, 100, 100)")
    conn.commit()
    assert conn.execute("select 1 from revleak.unsettled where kind = 'contract' and id = 'DONE'"
                        ).fetchone()
    assert run(conn, "2026-03-01")[0]["DONE"] == ("over_billed", Decimal("-100.0000"))
    assert "DONE" not in settled(conn)
    assert "DONE" not in run(conn, "2026-01-15")[0]  # before the late invoice: still right
    # the renewal withdrawn: ONCE stays (one_time), a renewal miss appears for DONE's successor
    conn.execute("delete from revleak.invoice_lines where invoice_id = 'D13'")
    conn.execute("delete from revleak.invoices where invoice_id = 'D13'")
    conn.execute("update revleak.opportunities set renewal_of = null where opportunity_id = 'NEW'")
    conn.commit()
    assert run(conn, "2026-03-01")[0]["DONE"] == ("renewal_miss", Decimal("1200.0000"))
    assert settled(conn) == {"ONCE", "HEARTBEAT"}




def collection(conn, as_of: str) -> tuple[dict, dict]:
    return run(conn, as_of, COLLECTION)


def receivables() -> Books:
    b = Books()
    b.bill("PAID", "C1", "2026-01-05", "2026-02-04", "500.00") \
        .payment("P1", "PAID", "200.00", "2026-01-20T10:00:00+00:00") \
        .payment("P2", "PAID", "300.00", "2026-02-10T10:00:00+00:00")  # settled from Feb 10
    b.bill("OVERPAID", "C2", "2026-01-05", "2026-02-04", "100.00") \
        .payment("P3", "OVERPAID", "120.00", "2026-01-06T10:00:00+00:00")
    b.bill("SHORT", "C3", "2026-01-05", "2026-02-04", "400.00") \
        .payment("P4", "SHORT", "100.00", "2026-01-06T10:00:00+00:00")
    b.bill("FAILED", "C4", "2026-01-05", "2026-02-04", "250.00") \
        .payment("P5", "FAILED", "250.00", "2026-01-06T10:00:00+00:00", status="failed")
    return b


def settled_invoices(conn) -> set[str]:
    return {r[0] for r in conn.execute("select invoice_id from revleak.settled_invoices")}


def test_invoices_collected_in_full_give_what_a_full_reconciliation_gives(conn, tmp_path):
    receivables().load(conn, tmp_path)
    dates = ("2026-03-01", "2026-02-08", "2026-02-15")  # Sundays: the newest, then backfills
    with_settled = {d: collection(conn, d) for d in dates}
    assert settled_invoices(conn) == {"PAID", "OVERPAID"}
    assert with_settled["2026-03-01"][0] == {"SHORT": ("short_paid", Decimal("300.0000")),
                                            "FAILED": ("payment_failed", Decimal("250.0000"))}
    # Feb 8: PAID's second payment is not in yet (it is read as settled from Feb 10 only)
    assert with_settled["2026-02-08"][0]["PAID"] == ("short_paid", Decimal("300.0000"))
    assert with_settled["2026-03-01"][1]["past_due_invoices"] == 4
    assert reconciled_in_full(conn, "settled_invoices", dates, COLLECTION) == with_settled


def test_a_payment_charged_back_unsettles_its_invoice(conn, tmp_path):
    receivables().load(conn, tmp_path)
    assert "PAID" not in collection(conn, "2026-03-01")[0]
    conn.execute("update revleak.payments set status = 'disputed' where payment_id = 'P2'")
    conn.commit()
    assert collection(conn, "2026-03-01")[0]["PAID"] == ("disputed", Decimal("300.0000"))
    assert settled_invoices(conn) == {"OVERPAID"}


def test_a_mark_for_every_contract_settles_them_all_again(conn, tmp_path):
    """What a big write marks (one '*' per kind instead of a mark per row): every settlement
    of that kind is derived again, and one whose contract is gone is dropped."""
    books().load(conn, tmp_path)
    run(conn, "2026-03-01")
    conn.execute("insert into revleak.settled_contracts values ('GHOST', 'USD', 1, null,"
                 " '2025-01-01', null, null)")
    conn.execute("insert into revleak.unsettled values ('contract', '*')")
    conn.commit()
    assert run(conn, "2026-03-01")[1]["contracts_checked"] == 6  # GHOST is never read
    assert settled(conn) == {"DONE", "ONCE", "HEARTBEAT"}
