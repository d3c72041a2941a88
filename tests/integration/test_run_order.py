"""The same dates run in any order give the same findings, deadlines and ticket events
(contract §3): every permutation of three dates, on books whose leaks grow, close, come back
and appear (the rule is written in sql/findings/record.sql)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date

import pytest

from revleak import pipeline
from tests.books import Books

CHECK = "booked_vs_billed_daily"
D1, D2, D3 = date(2026, 4, 5), date(2026, 4, 20), date(2026, 5, 10)
RUNTIME = ("check_runs, check_results, findings, finding_history, finding_generations, metrics,"
           " ticket_outbox, tickets")


def books(conn, tmp_path):
    """Monthly contracts of 1,000 from January; a period is due 31 days after it starts."""
    b = Books()
    monthly = ("12000.00", "2026-01-01", "2026-12-31", "monthly")
    # A: only January billed — a gap that grows (2,000 → 3,000) and passes its deadline
    b.contract("A", *monthly).invoice("A1", "A", "2026-01-01", "1000.00")
    # B: March billed late on Apr 10 (closes), April never billed (comes back by May 10)
    b.contract("B", *monthly).invoice("B1", "B", "2026-01-01", "1000.00") \
        .invoice("B2", "B", "2026-02-01", "1000.00").invoice("B3", "B", "2026-04-10", "1000.00")
    # C: billed through March, April never: appears on the last date only
    b.contract("C", *monthly).invoice("C1", "C", "2026-01-01", "1000.00") \
        .invoice("C2", "C", "2026-02-01", "1000.00").invoice("C3", "C", "2026-03-01", "1000.00")
    b.load(conn, tmp_path)


def outcome(conn):
    findings = conn.execute(
        "select fingerprint, entity_id, category, status, as_of, first_seen_as_of,"
        " resolved_as_of, due_date, escalated_as_of, gap_amount, days_outstanding, owner"
        " from revleak.findings order by 1").fetchall()
    episodes = conn.execute(
        "select fingerprint, first_seen_as_of, last_seen_as_of, resolved_as_of, due_date,"
        " escalated_as_of from revleak.finding_generations order by 1, 2").fetchall()
    # ticket events by the episode they belong to (generation numbers follow the run order)
    events = Counter(conn.execute(
        "select o.fingerprint, g.first_seen_as_of, o.action from revleak.ticket_outbox o"
        " join revleak.finding_generations g using (fingerprint, generation)"
        " where o.action <> 'update'").fetchall())
    history = conn.execute("select fingerprint, as_of, status, gap_amount"
                           " from revleak.finding_history order by 1, 2").fetchall()
    return findings, episodes, events, history


@pytest.fixture
def outcomes(conn, tmp_path):
    books(conn, tmp_path)
    results = {}
    for order in itertools.permutations((D1, D2, D3)):
        conn.execute(f"truncate {', '.join('revleak.' + t.strip() for t in RUNTIME.split(','))}")
        conn.commit()
        for day in order:
            pipeline.run_check(CHECK, day)
        results[order] = outcome(conn)
    return results


def test_every_order_of_three_dates_gives_the_same_outcome(outcomes):
    in_order = outcomes[(D1, D2, D3)]
    for order, result in outcomes.items():
        for part, got, want in zip(("findings", "episodes", "events", "history"), result,
                                   in_order, strict=True):
            assert got == want, f"{part} differ when run in the order {order}"


def test_the_outcome_is_the_one_computed_by_hand(outcomes):
    findings, episodes, events, _ = outcomes[(D3, D1, D2)]
    state = {f[1]: f for f in findings}  # entity "all": the portfolio
    # A: first seen Apr 5 (a Sunday) → deadline 5 business days later, Apr 10; overdue on Apr 20
    assert state["A"][3:9] == ("open", D3, D1, None, date(2026, 4, 10), D2)
    assert state["A"][9] == 3000
    # B: two episodes — Apr 5 (resolved Apr 20) and May 10 (open, due May 15)
    assert state["B"][3:8] == ("open", D3, D3, None, date(2026, 5, 15))
    b_fp = state["B"][0]
    assert [e[1:4] for e in episodes if e[0] == b_fp] == [(D1, D1, D2), (D3, D3, None)]
    # C: found on May 10 only
    assert state["C"][3:6] == ("open", D3, D3)
    # one open per episode; escalations for A and the portfolio (short since Apr 5, overdue on
    # Apr 20); a resolve for B's first episode
    opens = Counter((fp, first) for (fp, first, action), n in events.items() if action == "open"
                    for _ in range(n))
    assert set(opens.values()) == {1} and len(opens) == len(episodes)
    assert sorted(k for k in events if k[2] == "escalate") == sorted(
        [(state["A"][0], D1, "escalate"), (state["all"][0], D1, "escalate")])
    assert [k for k in events if k[2] == "resolve"] == [(b_fp, D1, "resolve")]
