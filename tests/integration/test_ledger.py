"""The leakage ledger (found vs recovered) on a real PostgreSQL: hand-computed figures for
books whose leaks close, stay open and come back, every filter, and an independent oracle
(a plain Python walk over the history) on the demo company run over many dates."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest

from revleak import demo, loader, pipeline
from revleak.reports.ledger import DIMENSIONS, NO_SEGMENT, Filters, ledger
from tests.books import Books

CHECK = "booked_vs_billed_daily"
DAYS = [date(2026, 4, 1) + timedelta(days=i) for i in range(5)]  # Apr 1 … Apr 5
ROUTING = """
routing:
  rules:
    - match: {check: booked_vs_billed_daily, segment: enterprise}
      owner: {team: RevOps, name: Enterprise desk, email: ent@example.com}
    - match: {check: booked_vs_billed_daily}
      owner: {team: RevOps, name: RevOps on call, email: revops@example.com}
"""


@pytest.fixture
def books(conn, tmp_path, monkeypatch):
    """Monthly contracts of 1,000 from January (a period is due 31 days after it starts):

    M (mid): March billed on Apr 3 — open Apr 1–2 (1,000), recovered Apr 3 after 2 days.
    N (enterprise): never billed — Jan–Mar due, 3,000 open throughout.
    R (smb): March billed Apr 2 — recovered after 1 day; a credit note on Apr 4 takes it
    back — found again Apr 4, open 1,000 at the end."""
    config = tmp_path / "revleak.yaml"
    config.write_text(ROUTING)
    monkeypatch.setenv("REVLEAK_CONFIG", str(config))
    b = Books()
    monthly = ("12000.00", "2026-01-01", "2026-12-31", "monthly")
    b.contract("M", *monthly).invoice("M1", "M", "2026-01-01", "1000.00") \
        .invoice("M2", "M", "2026-02-01", "1000.00").invoice("M3", "M", "2026-04-03", "1000.00")
    b.contract("N", "6000.00", "2026-01-01", "2026-06-30", "monthly")
    b.contract("R", *monthly).invoice("R1", "R", "2026-01-01", "1000.00") \
        .invoice("R2", "R", "2026-02-01", "1000.00").invoice("R3", "R", "2026-04-02", "1000.00") \
        .invoice("R4", "R", "2026-04-04", "-1000.00", kind="credit_note")
    b.heartbeat("2026-01-01")
    segments = {"C-M": "mid", "C-N": "enterprise", "C-R": "smb"}
    for c in b.rows["customers"]:
        c["segment"] = segments.get(c["customer_id"], "")
    b.load(conn, tmp_path / "books")
    for day in DAYS:
        pipeline.run_check(CHECK, day)
    conn.commit()


def figures(line):
    return (line.open_count, line.open_amount, line.found_count, line.found_amount,
            line.recovered_count, line.recovered_amount, line.median_days_to_recover)


def by(result, dimension):
    return {line.label: figures(line) for line in result.by[dimension]}


def test_found_recovered_and_still_open_over_the_whole_period(books, conn):
    result = ledger(conn, DAYS[0], DAYS[-1], "USD")
    # open: N 3,000 + R 1,000; found: M, N, R on Apr 1 and R again on Apr 4;
    # recovered: M (1,000 after 2 days) and R (1,000 after 1 day)
    assert figures(result.total) == (2, 4000, 4, 6000, 2, 2000, Decimal("1.5"))
    assert result.total.recovery_rate == Decimal("0.3333")  # 2,000 / (2,000 + 4,000)
    assert by(result, "segment") == {
        "enterprise": (1, 3000, 1, 3000, 0, 0, None),
        "smb": (1, 1000, 2, 2000, 1, 1000, Decimal("1.0")),
        "mid": (0, 0, 1, 1000, 1, 1000, Decimal("2.0"))}
    assert by(result, "owner") == {
        "RevOps on call": (1, 1000, 3, 3000, 2, 2000, Decimal("1.5")),
        "Enterprise desk": (1, 3000, 1, 3000, 0, 0, None)}
    assert by(result, "check") == {CHECK: figures(result.total)}
    assert by(result, "category") == {"unbilled": figures(result.total)}  # whole months


def test_a_period_counts_only_what_happened_in_it(books, conn):
    late = ledger(conn, DAYS[3], DAYS[4], "USD")  # Apr 4–5: R comes back
    assert figures(late.total) == (2, 4000, 1, 1000, 0, 0, None)
    assert late.total.recovery_rate == 0
    day3 = ledger(conn, DAYS[2], DAYS[2], "USD")  # Apr 3: M closes; R closed the day before
    assert figures(day3.total) == (1, 3000, 0, 0, 1, 1000, Decimal("2.0"))
    assert day3.total.recovery_rate == Decimal("0.25")


def test_filters_narrow_every_figure(books, conn):
    ent = ledger(conn, DAYS[0], DAYS[-1], "USD", Filters(segment="enterprise"))
    assert figures(ent.total) == (1, 3000, 1, 3000, 0, 0, None)
    assert figures(ledger(conn, DAYS[0], DAYS[-1], "USD", Filters(owner="Enterprise desk"))
                   .total) == figures(ent.total)
    smb = ledger(conn, DAYS[0], DAYS[-1], "USD", Filters(check=CHECK, category="unbilled",
                                                         segment="smb"))
    assert figures(smb.total) == (1, 1000, 2, 2000, 1, 1000, Decimal("1.0"))
    over = ledger(conn, DAYS[0], DAYS[-1], "USD", Filters(category="over_billed"))
    assert figures(over.total) == (0, 0, 0, 0, 0, 0, None)
    nothing = ledger(conn, DAYS[0], DAYS[-1], "USD", Filters(check="funnel_leak_weekly"))
    assert figures(nothing.total) == (0, 0, 0, 0, 0, 0, None)
    assert nothing.total.recovery_rate is None and all(not v for v in nothing.by.values())


# --- the oracle: the same ledger by walking the history in Python --------------------------

def oracle(conn, start, end, keep=lambda row: True):
    rows = conn.execute(
        "select h.fingerprint, h.as_of, h.check_id, h.category, h.status,"
        " abs(h.gap_amount_base), f.owner ->> 'name', c.segment"
        " from revleak.finding_history h join revleak.findings f using (fingerprint)"
        " left join revleak.customers c on c.customer_id = h.customer_id"
        " where h.entity_type <> 'portfolio' and h.gap_amount_base is not null"
        " order by h.fingerprint, h.as_of").fetchall()
    last_run = dict(conn.execute(
        "select check_id, max(as_of) from revleak.check_runs where status = 'succeeded'"
        " and as_of <= %s group by 1", (end,)).fetchall())
    all_history = defaultdict(list)
    for r in conn.execute("select fingerprint, as_of, status, abs(gap_amount_base)"
                          " from revleak.finding_history order by 1, 2"):
        all_history[r[0]].append(r[1:])
    totals = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0), 0, Decimal(0), []])
    for fp, as_of, check, category, status, amount, owner, segment in rows:
        row = {"check": check, "category": category, "owner": owner,
               "segment": segment or NO_SEGMENT}
        if not keep(row):
            continue
        earlier = [h for h in all_history[fp] if h[0] < as_of]
        keys = ["total", *(f"{d}:{row[d]}" for d in DIMENSIONS)]
        for key in keys:
            t = totals[key]
            if status == "open" and last_run.get(check) == as_of:
                t[0] += 1
                t[1] += amount
            if status == "open" and start <= as_of <= end and (
                    not earlier or earlier[-1][1] == "resolved"):
                t[2] += 1
                t[3] += amount
            if status == "resolved" and start <= as_of <= end:
                opens = [h for h in earlier if h[1] == "open"]
                since = max((h[0] for h in earlier if h[1] == "resolved"), default=date.min)
                first = min(h[0] for h in opens if h[0] > since)
                t[4] += 1
                t[5] += opens[-1][2]
                t[6].append((as_of - first).days)
    totals["total"]  # there even when nothing matches
    return {k: (v[0], v[1], v[2], v[3], v[4], v[5],
                Decimal(str(statistics.median(v[6]))).quantize(Decimal("0.1")) if v[6] else None)
            for k, v in totals.items()}


@pytest.fixture
def demo_history(conn, tmp_path):
    """The demo company, booked vs billed daily over 20 days (two over-billings close on
    Sep 14), collections and funnel weekly over five weeks, the quarterly audits twice."""
    manifest = demo.generate(tmp_path / "demo", seed=7, scale="small")
    loader.load(conn, tmp_path / "demo")
    as_of = date.fromisoformat(manifest["as_of"])
    for back in range(20, -1, -1):
        pipeline.run_check(CHECK, as_of - timedelta(days=back))
    sunday = date.fromisoformat(manifest["runs"]["billed_vs_collected_weekly"]["as_of"])
    for weeks in range(4, -1, -1):
        pipeline.run_check("billed_vs_collected_weekly", sunday - timedelta(weeks=weeks))
        pipeline.run_check("funnel_leak_weekly", sunday - timedelta(weeks=weeks))
    for quarter_end in (date(2026, 6, 30), as_of):
        pipeline.run_check("recognized_vs_collected_quarterly", quarter_end)
        pipeline.run_check("pricing_drift_quarterly", quarter_end)
    conn.commit()
    return as_of


def test_the_ledger_equals_a_walk_over_the_history(demo_history, conn):
    end = demo_history
    for filters in (Filters(), Filters(segment="smb"), Filters(check="billed_vs_collected_weekly"),
                    Filters(category="over_billed"), Filters(owner="RevOps on call")):
        def keep(row, filters=filters):
            return all(getattr(filters, d) in (None, row[d]) for d in DIMENSIONS)

        for start in (end - timedelta(days=29), end - timedelta(days=16),
                      end - timedelta(days=7), end):
            expected = oracle(conn, start, end, keep)
            result = ledger(conn, start, end, "USD", filters)
            got = {"total": figures(result.total), **{
                f"{d}:{line.label}": figures(line) for d in DIMENSIONS for line in result.by[d]}}
            assert got == {k: v for k, v in expected.items() if k == "total" or any(v[:6])}, \
                (filters, start)
    month = ledger(conn, end - timedelta(days=29), end, "USD")
    assert month.total.recovered_count and month.total.found_count and month.total.open_count
