"""The findings store: per-as-of history plus the current state of every leak.

Upserts are keyed by fingerprint. A date older than the latest one checked only rewrites
its own history: a backfill never reopens a finding that a later date resolved.
"""

from __future__ import annotations

import itertools
from datetime import date

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from revleak.checks import CheckRun, jsonable
from revleak.config import Config
from revleak.tickets import outbox

FIGURES = ("category, entity_type, entity_id, customer_id, expected_amount, actual_amount,"
           " gap_amount, currency, gap_amount_base, gap_pct, days_outstanding,"
           " time_weighted_loss, evidence")
_cursor_ids = itertools.count()
UPDATE_FIGURES = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in FIGURES.split(","))

HISTORY = f"""
delete from revleak.finding_history where check_id = %(check_id)s and as_of = %(as_of)s;
insert into revleak.finding_history (fingerprint, as_of, check_id, status, {FIGURES})
select fingerprint, as_of, check_id, 'open', {FIGURES}
from revleak.check_results where check_id = %(check_id)s and as_of = %(as_of)s;
-- open on the previous date checked, gone now: resolved on this date
insert into revleak.finding_history (fingerprint, as_of, check_id, status, {FIGURES})
select h.fingerprint, %(as_of)s, h.check_id, 'resolved', {', '.join(
    'h.' + c.strip() for c in FIGURES.split(','))}
from revleak.finding_history h
where h.check_id = %(check_id)s and h.status = 'open'
  and h.as_of = (select max(as_of) from revleak.check_runs
                 where check_id = %(check_id)s and as_of < %(as_of)s and status = 'succeeded')
  and not exists (select from revleak.check_results r where r.check_id = h.check_id
                  and r.as_of = %(as_of)s and r.fingerprint = h.fingerprint)
"""

ROUTED = """
select r.*, route.owner, route.escalation, route.routed,
       revleak.add_business_days(r.as_of, route.sla) as due_date
from revleak.check_results r
left join revleak.customers c using (customer_id)
cross join lateral (
    select t.owner, t.escalation, t.sla, t.routed from routes t
    where (t.checks is null or r.check_id = any(t.checks))
      and (t.categories is null or r.category = any(t.categories))
      and (t.segments is null or c.segment = any(t.segments))
      and (t.regions is null or c.region = any(t.regions))
      and (t.min_gap is null or coalesce(r.gap_amount_base, r.gap_amount) >= t.min_gap)
      and (t.max_gap is null or coalesce(r.gap_amount_base, r.gap_amount) < t.max_gap)
    order by t.rule_no limit 1) route
where r.check_id = %(check_id)s and r.as_of = %(as_of)s
"""

CURRENT = f"""
insert into revleak.findings as f (fingerprint, check_id, as_of, first_seen_as_of, owner,
    escalation_owner, routed, due_date, status, notified_gap, {FIGURES})
select fingerprint, check_id, as_of, as_of, owner, escalation, routed, due_date, 'open',
       gap_amount, {FIGURES}
from ({ROUTED}) r
on conflict (fingerprint) do update set {UPDATE_FIGURES},
    as_of = excluded.as_of, owner = excluded.owner, escalation_owner = excluded.escalation_owner,
    routed = excluded.routed, status = 'open', resolved_as_of = null,
    first_seen_as_of = least(f.first_seen_as_of, excluded.first_seen_as_of),
    due_date = case when f.status = 'resolved' then excluded.due_date else f.due_date end,
    ticket_generation = f.ticket_generation + (f.status = 'resolved')::int,
    notified_gap = case when f.status = 'resolved' then excluded.gap_amount
                        else f.notified_gap end,
    escalated_as_of = case when f.status = 'resolved' then null else f.escalated_as_of end,
    updated_at = now();
update revleak.findings f set status = 'resolved', resolved_as_of = %(as_of)s, as_of = %(as_of)s,
    updated_at = now()
where f.check_id = %(check_id)s and f.status = 'open'
  and not exists (select from revleak.check_results r where r.check_id = f.check_id
                  and r.as_of = %(as_of)s and r.fingerprint = f.fingerprint)
"""

# An older date than the latest checked: learn only what is new about the past.
BACKFILL = f"""
update revleak.findings f set first_seen_as_of = r.as_of
from revleak.check_results r
where r.check_id = %(check_id)s and r.as_of = %(as_of)s and r.fingerprint = f.fingerprint
  and r.as_of < f.first_seen_as_of;
insert into revleak.findings (fingerprint, check_id, as_of, first_seen_as_of, owner,
    escalation_owner, routed, due_date, status, resolved_as_of, {FIGURES})
select fingerprint, check_id, as_of, as_of, owner, escalation, routed, due_date, 'resolved',
       (select min(as_of) from revleak.check_runs c where c.check_id = r.check_id
        and c.as_of > r.as_of and c.status = 'succeeded'), {FIGURES}
from ({ROUTED}) r
on conflict (fingerprint) do nothing
"""


def latest_as_of(conn: psycopg.Connection, check_id: str) -> date | None:
    return conn.execute(
        "select max(as_of) from revleak.check_runs where check_id = %s and status = 'succeeded'",
        (check_id,)).fetchone()[0]


def _routes(conn: psycopg.Connection, config: Config) -> None:
    """The routing rules as a temp table, so findings are routed set-based in SQL."""
    conn.execute(
        "create temp table routes (rule_no int, checks text[], categories text[],"
        " segments text[], regions text[], min_gap numeric, max_gap numeric, owner jsonb,"
        " escalation jsonb, sla int, routed boolean) on commit drop")
    rows = [(n, r.match.get("check"), r.match.get("category"), r.match.get("segment"),
             r.match.get("region"), r.match.get("min_gap_base"), r.match.get("max_gap_base"),
             Jsonb(r.owner.as_dict()), Jsonb(r.escalation.as_dict()), r.sla_business_days, True)
            for n, r in enumerate(config.routes)]
    fb = config.fallback
    rows.append((len(rows), None, None, None, None, None, None, Jsonb(fb.owner.as_dict()),
                 Jsonb(fb.escalation.as_dict()), fb.sla_business_days, False))
    with conn.cursor() as cur:
        cur.executemany("insert into routes values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        rows)


def record(conn: psycopg.Connection, run: CheckRun, dry_run: bool = False) -> dict:
    """Turn the run's results into history and current state, and (unless a dry run) the
    ticket events they call for, in one transaction; mark the run succeeded."""
    params = {"check_id": run.check_id, "as_of": run.as_of,
              "update_share": run.config.tickets["update_share"]}
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (run.check_id,))
        _routes(conn, run.config)
        latest = latest_as_of(conn, run.check_id)
        for statement in HISTORY.split(";"):
            conn.execute(statement, params)
        is_latest = latest is None or run.as_of >= latest
        for statement in (CURRENT if is_latest else BACKFILL).split(";"):
            conn.execute(statement, params)
        if is_latest and not dry_run:
            conn.execute(outbox.events_sql(), params)
        summary = summarize(conn, run.check_id, run.as_of)
        conn.execute(
            "update revleak.check_runs set status = 'succeeded', finished_at = now(),"
            " summary = summary || %s where check_id = %s and as_of = %s",
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
    source = "revleak.finding_history h join revleak.findings f using (fingerprint)" if as_of \
        else "revleak.findings f"
    prefix = "h." if as_of else "f."
    where, args = [], []
    if check:
        where.append("f.check_id = %s")
        args.append(check)
    if as_of:
        where.append("h.as_of = %s")
        args.append(as_of)
    if status != "all":
        where.append(f"{prefix}status = %s")
        args.append(status)
    cols = ", ".join(f"{prefix}{c.strip()}" for c in FIGURES.split(",") if c.strip() != "evidence")
    with conn.cursor(name=f"findings_{next(_cursor_ids)}", row_factory=dict_row) as cur:
        cur.execute(
            f"select f.fingerprint, f.check_id as check, {cols}, {prefix}as_of, f.owner,"
            f" f.due_date, {prefix}status, f.ticket_key, f.first_seen_as_of, f.resolved_as_of,"
            f" {prefix}evidence from {source} {'where ' + ' and '.join(where) if where else ''}"
            f" order by {prefix}time_weighted_loss desc nulls last, f.fingerprint", args)
        yield from cur  # a server-side cursor: rows stream, memory stays flat
