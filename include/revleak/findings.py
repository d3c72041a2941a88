"""The findings store: what each checked date saw (history), each leak's episodes (ticket
generations) and its current state, all keyed by fingerprint and derived from the history
alone, so the same dates run in any order give the same findings, deadlines and tickets.
"""

from __future__ import annotations

import itertools
from datetime import date

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from revleak import statements
from revleak.checks import CheckRun, jsonable
from revleak.config import Config
from revleak.registry import CHECKS

_cursor_ids = itertools.count()


def latest_as_of(conn: psycopg.Connection, check_id: str) -> date | None:
    return conn.execute(
        "select max(as_of) from revleak.check_runs where check_id = %s and status = 'succeeded'",
        (check_id,)).fetchone()[0]


def _routes(conn: psycopg.Connection, config: Config) -> None:
    """The routing rules as a temp table, so findings are routed set-based in SQL."""
    conn.execute(
        "create temp table routes (rule_no int, checks text[], categories text[],"
        " segments text[], regions text[], teams text[], min_gap numeric, max_gap numeric,"
        " owner jsonb, escalation jsonb, sla int, routed boolean) on commit drop")
    rows = [(n, m.check, m.category, m.segment, m.region, m.team, m.min_gap_base, m.max_gap_base,
             Jsonb(r.owner.as_dict()), Jsonb(r.escalation_owner.as_dict()),
             r.sla_business_days, n < len(config.routes))
            for n, (r, m) in enumerate((r, r.match) for r in (*config.routes, config.fallback))]
    with conn.cursor() as cur:
        cur.executemany("insert into routes values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                        " %s)", rows)


def record(conn: psycopg.Connection, run: CheckRun, dry_run: bool = False) -> dict:
    """Turn the run's results into history, episodes and current state, and (unless a dry run)
    the ticket events and price signals they call for, in one transaction; mark the run
    succeeded. The rule that makes the outcome independent of the order dates are run in:
    sql/findings/record.sql."""
    params = {"check_id": run.check_id, "as_of": run.as_of,
              "update_share": run.config.tickets.update_share}
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (run.check_id,))
        _routes(conn, run.config)
        for statement in statements.named("findings/record.sql").values():
            conn.execute(statement, params)
        spec = CHECKS[run.check_id]
        writes = [] if dry_run else [  # tickets: unless another check owns them
            *(["tickets/events.sql"] if spec.tickets else []),
            *(["signals/events.sql"] if spec.price_signals else [])]
        for path in writes:
            for statement in statements.named(path).values():
                conn.execute(statement, params)
        summary = summarize(conn, run.check_id, run.as_of)
        conn.execute(
            "update revleak.check_runs set summary = summary || %s"
            " where check_id = %s and as_of = %s",
            (Jsonb(jsonable(summary)), run.check_id, run.as_of))
    return jsonable(summary)


def summarize(conn: psycopg.Connection, check_id: str, as_of: date) -> dict:
    """What one date found: count, gap in base currency, top 5 by time-weighted loss."""
    cur = conn.cursor(row_factory=dict_row)
    totals = cur.execute(
        "select count(*) as findings, coalesce(sum(gap_amount_base), 0) as gap_base,"
        " count(*) filter (where status = 'resolved') as resolved"
        " from revleak.finding_history where check_id = %s and as_of = %s"
        " and entity_type <> 'portfolio'", (check_id, as_of)).fetchone()
    top = cur.execute(
        "select category, entity_type, entity_id, customer_id, currency, gap_amount,"
        " gap_amount_base, gap_pct, days_outstanding, time_weighted_loss"
        " from revleak.finding_history where check_id = %s and as_of = %s and status = 'open'"
        " order by time_weighted_loss desc nulls last, fingerprint limit 5",
        (check_id, as_of)).fetchall()
    return {"check": check_id, "as_of": as_of, **totals, "top": top}


def query(conn: psycopg.Connection, check: str | None = None, as_of: date | None = None,
          status: str = "open"):
    """Findings as the contract's JSON objects (§4): current state, or history for a date."""
    statement = statements.named("findings/query.sql")["on_date" if as_of else "current"]
    with conn.cursor(name=f"findings_{next(_cursor_ids)}", row_factory=dict_row) as cur:
        cur.execute(statement, {"check": check, "as_of": as_of, "status": status})
        yield from cur  # a server-side cursor: rows stream, memory stays flat
