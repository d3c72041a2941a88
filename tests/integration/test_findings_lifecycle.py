"""Findings over time: reruns change nothing, backfills reproduce history, a backfill of an
older date never reopens a finding a later date resolved. Plus property tests: the order
of input rows and how an invoice is split into lines never change the findings."""

from __future__ import annotations

import random
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revleak import findings, pipeline
from tests.books import Books

CHECK = "booked_vs_billed_daily"
DAYS = [date(2026, 3, 28) + timedelta(days=i) for i in range(7)]


def history(conn):
    return conn.execute(
        "select fingerprint, as_of, status, category, gap_amount, days_outstanding,"
        " time_weighted_loss from revleak.finding_history order by 1, 2").fetchall()


def current(conn):
    return conn.execute(
        "select fingerprint, status, category, gap_amount, first_seen_as_of, resolved_as_of,"
        " as_of, due_date from revleak.findings order by 1").fetchall()


def books_with_a_leak_that_closes(tmp_path, conn):
    """March (due Apr 1) goes unbilled until an invoice on Apr 2 closes the gap."""
    b = Books()
    b.contract("M", "12000.00", "2026-01-01", "2026-12-31", "monthly") \
        .invoice("M1", "M", "2026-01-01", "1000.00").invoice("M2", "M", "2026-02-01", "1000.00") \
        .invoice("M3", "M", "2026-04-02", "1000.00")
    b.contract("N", "6000.00", "2026-01-01", "2026-06-30", "monthly")  # never billed
    b.heartbeat("2026-01-01")
    b.load(conn, tmp_path)


def run(day):
    pipeline.run_check(CHECK, day)


def test_rerun_and_backfill_reproduce_findings_and_history(conn, tmp_path):
    books_with_a_leak_that_closes(tmp_path, conn)
    for day in DAYS:
        run(day)
    conn.commit()
    first_history, first_current = history(conn), current(conn)
    for day in DAYS:  # the backfill of the same seven dates
        run(day)
    run(DAYS[3])  # and one more rerun
    conn.commit()
    assert history(conn) == first_history
    assert current(conn) == first_current
    # the March gap opened on Apr 1 and resolved on Apr 2; N stays open
    m = [h for h in first_history if h[3] == "unbilled" and h[4] == 1000]
    assert [(h[1], h[2]) for h in m] == [(date(2026, 4, 1), "open"),
                                         (date(2026, 4, 2), "resolved")]
    states = {row[2]: row[1] for row in first_current if row[2] != "under_billed"}
    assert states == {"unbilled": "open"}  # N open; M resolved is category unbilled too
    assert sorted(r[1] for r in first_current) == ["open", "open", "resolved"]  # + portfolio


def test_backfilling_an_older_date_never_reopens_a_later_resolution(conn, tmp_path):
    books_with_a_leak_that_closes(tmp_path, conn)
    run(date(2026, 4, 3))  # newest first: M is already billed
    run(date(2026, 4, 1))  # older date: M's gap was open then
    conn.commit()
    m = conn.execute("select status, first_seen_as_of, resolved_as_of from revleak.findings"
                     " where entity_id = 'M'").fetchone()
    assert m == ("resolved", date(2026, 4, 1), date(2026, 4, 3))
    open_ids = {f["entity_id"] for f in findings.query(conn, CHECK)}
    assert "M" not in open_ids and "N" in open_ids
    assert conn.execute("select count(*) from revleak.finding_history where as_of = '2026-04-01'"
                        " and status = 'open'").fetchone()[0] == 3  # M, N, portfolio


def test_fingerprint_is_stable_across_dates(conn, tmp_path):
    books_with_a_leak_that_closes(tmp_path, conn)
    run(date(2026, 3, 5))
    run(date(2026, 3, 20))
    conn.commit()
    n = conn.execute("select count(distinct fingerprint), count(*) from revleak.finding_history"
                     " where entity_id = 'N'").fetchone()
    assert n == (1, 2)


def _findings(conn):
    return sorted((f["fingerprint"], f["category"], f["gap_amount"], f["days_outstanding"])
                  for f in findings.query(conn, CHECK, date(2026, 5, 10)))


def _reset(conn):
    conn.execute("truncate revleak.opportunities, revleak.customers, revleak.invoices,"
                 " revleak.invoice_lines, revleak.findings, revleak.finding_history,"
                 " revleak.check_runs, revleak.check_results, revleak.quarantine,"
                 " revleak.loads, revleak.ticket_outbox cascade")
    conn.commit()


def _varied_books(parts: list[int]) -> Books:
    b = Books()
    b.contract("Q", "3000.00", "2026-01-01", "2026-12-31", "quarterly") \
        .contract("R", "1200.00", "2026-01-01", "2026-12-31", "monthly") \
        .contract("S", "999.99", "2026-02-10", "2026-12-31", "one_time").heartbeat("2026-05-01")
    b.invoice("Q1", "Q", "2026-01-01", *_split("750.00", parts[0]))
    b.invoice("R1", "R", "2026-01-01", *_split("100.00", parts[1]))
    b.invoice("R2", "R", "2026-02-01", *_split("60.00", parts[2]))
    b.invoice("R3", "R", "2026-03-01", *_split("100.00", parts[3]), status="void")
    b.invoice("S1", "S", "2026-02-10", *_split("1200.00", parts[4]))
    return b


def _split(total: str, n: int) -> list[str]:
    """``total`` as ``n`` lines with the same sum, to the cent."""
    cents = int(total.replace(".", ""))
    shares = [cents // n] * n
    shares[0] += cents - sum(shares)
    return [f"{c // 100}.{c % 100:02d}" for c in shares]


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.integers(1, 4), min_size=5, max_size=5), seed=st.integers(0, 10_000))
def test_row_order_and_line_splits_never_change_findings(conn, tmp_path_factory, parts, seed):
    _reset(conn)
    _varied_books([1] * 5).load(conn, tmp_path_factory.mktemp("base"))
    pipeline.run_check(CHECK, date(2026, 5, 10))
    conn.commit()
    expected = _findings(conn)
    assert expected  # Q, R and S all leak

    _reset(conn)
    b = _varied_books(parts)
    rng = random.Random(seed)
    for rows in b.rows.values():
        rng.shuffle(rows)
    b.load(conn, tmp_path_factory.mktemp("varied"))
    pipeline.run_check(CHECK, date(2026, 5, 10))
    conn.commit()
    assert _findings(conn) == expected
