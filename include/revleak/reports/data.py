"""What each report shows, read from the stored findings, their history and the run metrics
(plus, where a report needs it, the books as of the run's date). Small set-based queries;
only report-sized tables come back to Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from revleak import periods
from revleak.config import CHECK_RULES, Config
from revleak.errors import RevleakError

# A finding h with what a reader needs next to it: customer name, and from its current state
# (alias given) the owner, deadline and ticket.
FINDING = """
select h.fingerprint, h.check_id as check, h.category, h.entity_type, h.entity_id,
       h.customer_id, c.name as customer_name, c.segment, h.as_of, h.expected_amount,
       h.actual_amount, h.gap_amount, h.currency, h.gap_amount_base, h.gap_pct,
       h.days_outstanding, h.time_weighted_loss, h.status, {state}.owner, {state}.due_date,
       {state}.ticket_key, {state}.first_seen_as_of, {state}.resolved_as_of, {evidence}
from {source}
left join revleak.customers c on c.customer_id = h.customer_id
"""
AT_DATE = FINDING.format(
    source="revleak.finding_history h join revleak.findings f using (fingerprint)",
    state="f", evidence="h.evidence") + " where h.check_id = %(check)s and h.as_of = %(as_of)s"
AGING_BUCKETS = (("1–30", 1, 30), ("31–60", 31, 60), ("61–90", 61, 90), ("90+", 91, None))


class NotRecorded(RevleakError):
    """The check has no successful run for that date: there is nothing to report yet."""


def _rows(conn: psycopg.Connection, sql: str, params: dict) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()


def run(conn: psycopg.Connection, check: str, as_of: date, config: Config) -> dict[str, Any]:
    """The run a report is about: window, rules in force, the previous run, headline counts."""
    row = conn.execute(
        "select params, (select max(p.as_of) from revleak.check_runs p"
        " where p.check_id = r.check_id and p.as_of < r.as_of and p.status = 'succeeded')"
        " from revleak.check_runs r where check_id = %s and as_of = %s and status = 'succeeded'",
        (check, as_of)).fetchone()
    if row is None:
        raise NotRecorded(f"no successful run of {check} as of {as_of}; run "
                           f"`revleak check {check} --as-of {as_of}` (or the DAG) first")
    params, previous = row
    rules = {k: params[k] for k in CHECK_RULES[check] if k in params and k != "schedule_hour"}
    head = conn.execute(
        "select count(*) filter (where status = 'open' and entity_type <> 'portfolio'),"
        " coalesce(sum(abs(gap_amount_base)) filter (where status = 'open'"
        "  and entity_type <> 'portfolio'), 0),"
        " coalesce(sum(time_weighted_loss) filter (where status = 'open'"
        "  and entity_type <> 'portfolio'), 0),"
        " count(*) filter (where status = 'resolved')"
        " from revleak.finding_history where check_id = %s and as_of = %s",
        (check, as_of)).fetchone()
    return {"check": check, "as_of": as_of, "window_start": periods.window_start(check, as_of),
            "previous": previous, "rules": rules, "base_currency": config.base_currency,
            "open_count": head[0], "open_gap_base": head[1], "open_loss": head[2],
            "resolved_count": head[3]}


def all_findings(conn: psycopg.Connection, check: str, as_of: date) -> Iterator[dict]:
    """Every finding the date saw (open, or resolved on it), biggest loss first — streamed."""
    with conn.cursor(name=f"report_{check}_{as_of:%Y%m%d}", row_factory=dict_row) as cur:
        cur.itersize = 500
        cur.execute(AT_DATE + " order by h.status, h.time_weighted_loss desc nulls last,"
                    " abs(h.gap_amount_base) desc nulls last, h.fingerprint",
                    {"check": check, "as_of": as_of})
        yield from cur


def top(conn: psycopg.Connection, check: str, as_of: date, n: int,
        where: str = "true") -> list[dict]:
    """The open findings that cost the most (time-weighted loss), with owner and ticket."""
    return _rows(conn, AT_DATE + f" and h.status = 'open' and h.entity_type <> 'portfolio'"
                 f" and ({where}) order by h.time_weighted_loss desc nulls last,"
                 f" h.fingerprint limit {int(n)}", {"check": check, "as_of": as_of})


CHANGES = """
select x.*, case when x.status = 'resolved' then 'resolved'
                 when x.prev_status is distinct from 'open' then 'new'
                 when x.size > x.prev_size then 'grown'
                 when x.size < x.prev_size then 'shrunk' else 'unchanged' end as change
from (
    select h.*, p.status as prev_status, p.gap_amount_base as prev_gap_base,
           p.gap_amount as prev_gap, p.gap_pct as prev_gap_pct,
           coalesce(abs(h.gap_amount), h.gap_pct) as size,
           coalesce(abs(p.gap_amount), p.gap_pct) as prev_size
    from ({at_date}) h
    left join revleak.finding_history p on p.fingerprint = h.fingerprint
                                       and p.as_of = %(previous)s
    where h.entity_type <> 'portfolio'
) x
"""


def changes(conn: psycopg.Connection, check: str, as_of: date, previous: date | None,
            n: int = 10) -> dict[str, Any]:
    """What changed since the previous run: new, resolved, grown and shrunk gaps — the
    count of each, the base-currency amount (for grown and shrunk, by how much) and the
    biggest of each."""
    rows = _rows(conn, f"""
        with c as ({CHANGES.format(at_date=AT_DATE)})
        select change, count(*) as count,
               coalesce(sum(case change when 'grown'
                                 then abs(gap_amount_base) - abs(prev_gap_base)
                                 when 'shrunk' then abs(prev_gap_base) - abs(gap_amount_base)
                                 else abs(gap_amount_base) end), 0) as amount
        from c where change <> 'unchanged' group by change""",
                 {"check": check, "as_of": as_of, "previous": previous})
    summary = {k: {"count": 0, "amount": Decimal(0)} for k in ("new", "resolved", "grown",
                                                               "shrunk")}
    for r in rows:
        summary[r["change"]] = {"count": r["count"], "amount": r["amount"]}
    lists = {kind: _rows(conn, f"""
        with c as ({CHANGES.format(at_date=AT_DATE)})
        select * from c where change = %(kind)s
        order by abs(coalesce(abs(gap_amount_base) - abs(prev_gap_base), gap_amount_base))
                 desc nulls last, fingerprint limit {int(n)}""",
        {"check": check, "as_of": as_of, "previous": previous, "kind": kind})
        for kind in summary}
    return {"previous": previous, "summary": summary, "lists": lists}


def run_metrics(conn: psycopg.Connection, check: str, as_of: date) -> dict[str, tuple]:
    """The figures the run kept (revleak.metrics) by name: (value, detail)."""
    return {m: (v, d) for m, v, d in conn.execute(
        "select metric, value, detail from revleak.metrics where check_id = %s and as_of = %s",
        (check, as_of)).fetchall()}


def metric_trend(conn: psycopg.Connection, check: str, metric: str, since: date,
                 as_of: date) -> list[tuple[date, Decimal, dict]]:
    """A run-level figure (a rate) per date checked, oldest first."""
    return [tuple(r) for r in conn.execute(
        "select m.as_of, m.value, m.detail from revleak.metrics m join revleak.check_runs r"
        " using (check_id, as_of) where m.check_id = %s and m.metric = %s and r.status ="
        " 'succeeded' and m.as_of > %s and m.as_of <= %s order by m.as_of",
        (check, metric, since, as_of))]


def aging(conn: psycopg.Connection, check: str, as_of: date,
          categories: tuple[str, ...]) -> list[dict]:
    """Open gaps of these categories by days outstanding: amount (base) and count."""
    rows = {r["bucket"]: r for r in _rows(conn, """
        select case when days_outstanding <= 30 then '1–30' when days_outstanding <= 60
                    then '31–60' when days_outstanding <= 90 then '61–90' else '90+' end
                   as bucket,
               count(*) as count, coalesce(sum(abs(gap_amount_base)), 0) as amount
        from revleak.finding_history
        where check_id = %(check)s and as_of = %(as_of)s and status = 'open'
          and category = any(%(categories)s) and entity_type <> 'portfolio'
        group by 1""", {"check": check, "as_of": as_of, "categories": list(categories)})}
    return [{"bucket": b, "count": rows.get(b, {}).get("count", 0),
             "amount": rows.get(b, {}).get("amount", Decimal(0))} for b, _, _ in AGING_BUCKETS]


def receivables_not_yet_due(conn: psycopg.Connection, as_of: date, config: Config) -> dict:
    """The "current" bucket of the aging: open balances of invoices not yet due, from the
    books as of the run's date (billed less succeeded payments), in base currency."""
    count, amount = conn.execute("""
        with billed as (
            select i.invoice_id, i.currency, sum(l.amount) as billed
            from revleak.invoices i join revleak.invoice_lines l using (invoice_id)
            where i.kind = 'invoice' and i.status not in ('draft', 'void')
              and i.issue_date <= %(as_of)s and i.due_date >= %(as_of)s
            group by i.invoice_id, i.currency
        ),
        balance as (
            select b.currency, b.billed - coalesce((
                select sum(p.amount) from revleak.payments p
                where p.invoice_id = b.invoice_id and p.status = 'succeeded'
                  and p.attempted_at < %(as_of_end)s), 0) as outstanding
            from billed b
        )
        select count(*), coalesce(round(sum(b.outstanding * fx.rate), 2), 0)
        from balance b
        left join revleak.fx_rates_on(%(as_of)s, %(base)s) fx on fx.currency = b.currency
        where b.outstanding > 0""", {"as_of": as_of, "base": config.base_currency,
                                     "as_of_end": periods.day_end(as_of, config.tz)}).fetchone()
    return {"bucket": "current", "count": count, "amount": amount}


def by_category(conn: psycopg.Connection, check: str, as_of: date) -> list[dict]:
    """Open gaps per category: count, amount (base) and share of the check's total."""
    return _rows(conn, """
        select category, count(*) as count, coalesce(sum(abs(gap_amount_base)), 0) as amount,
               coalesce(sum(abs(gap_amount_base)) / nullif(sum(sum(abs(gap_amount_base)))
                        over (), 0), 0) as share
        from revleak.finding_history
        where check_id = %(check)s and as_of = %(as_of)s and status = 'open'
          and entity_type <> 'portfolio'
        group by category order by amount desc, category""", {"check": check, "as_of": as_of})


def pricing_tops(conn: psycopg.Connection, check: str, as_of: date,
                 n: int = 10) -> dict[str, list[dict]]:
    """Pricing drift's biggest customers and SKUs (open gaps, base currency)."""
    params = {"check": check, "as_of": as_of}
    base = """
        from revleak.finding_history h left join revleak.customers c using (customer_id)
        where h.check_id = %(check)s and h.as_of = %(as_of)s and h.status = 'open'"""
    return {
        "customers": _rows(conn, f"""
            select h.customer_id, c.name as customer_name, count(*) as count,
                   sum(abs(h.gap_amount_base)) as amount,
                   string_agg(distinct h.category, ', ' order by h.category) as categories
            {base} group by h.customer_id, c.name
            order by amount desc nulls last, h.customer_id limit {int(n)}""", params),
        "skus": _rows(conn, f"""
            select split_part(h.entity_id, ':', 2) as sku, count(*) as count,
                   count(distinct h.customer_id) as customers,
                   sum(abs(h.gap_amount_base)) as amount
            {base} group by 1 order by amount desc nulls last, sku limit {int(n)}""", params),
    }


def funnel_zones(conn: psycopg.Connection, as_of: date, weeks: int = 8) -> list[dict]:
    """Each funnel zone this week against its limit, with the last ``weeks`` weeks.

    Intake reads as a capture rate (at least its minimum); the other zones as a problem
    share (at most their maximum)."""
    check = "funnel_leak_weekly"
    since = as_of - timedelta(weeks=weeks)
    zones = []
    for zone in ("intake", "routing", "response", "follow_up", "close"):
        trend = metric_trend(conn, check, f"{zone}_problem_pct", since, as_of)
        floor = zone == "intake"
        points = tuple((d, (Decimal(100) - v) if floor else v) for d, v, _ in trend)
        now = next(((v, detail) for d, v, detail in trend if d == as_of), None)
        if now is None:
            continue
        limit = Decimal(str(now[1]["limit_pct"]))
        zones.append({
            "zone": zone, "floor": floor, "points": points,
            "rate": (Decimal(100) - now[0]) if floor else now[0],
            "limit": (Decimal(100) - limit) if floor else limit,
            "problems": now[1]["problems"], "population": now[1]["population"]})
    return zones


# The worst examples of a zone from its sample: the longest waits first, never = worst.
WORST = {
    "intake": """
        select s.signal_id as id, s.channel, s.intent, s.received_at as started,
               min(o.created_at) as reached, 'received' as started_label,
               'captured as opportunity' as reached_label
        from revleak.inbound_signals s
        left join revleak.opportunities o on o.signal_id = s.signal_id
        where s.signal_id = any(%(ids)s) group by s.signal_id""",
    "routing": """
        select o.opportunity_id as id, o.channel, o.intent, o.created_at as started,
               min(e.occurred_at) as reached, 'created' as started_label,
               'assigned' as reached_label
        from revleak.opportunities o
        left join revleak.opportunity_events e on e.opportunity_id = o.opportunity_id
                                              and e.event_type = 'assigned'
        where o.opportunity_id = any(%(ids)s) group by o.opportunity_id""",
    "response": """
        select o.opportunity_id as id, o.channel, o.intent, o.created_at as started,
               min(e.occurred_at) as reached, 'created' as started_label,
               'first response' as reached_label
        from revleak.opportunities o
        left join revleak.opportunity_events e on e.opportunity_id = o.opportunity_id
                                              and e.event_type = 'first_response'
        where o.opportunity_id = any(%(ids)s) group by o.opportunity_id""",
    "follow_up": """
        select o.opportunity_id as id, o.channel, o.intent, a.assigned_at as started,
               (select t.occurred_at from revleak.opportunity_events t
                where t.opportunity_id = o.opportunity_id and t.occurred_at >= a.assigned_at
                  and t.event_type in ('first_response', 'touch')
                order by t.occurred_at offset 1 limit 1) as reached,
               'assigned' as started_label, 'second touch' as reached_label
        from revleak.opportunities o
        cross join lateral (select min(e.occurred_at) as assigned_at
                            from revleak.opportunity_events e
                            where e.opportunity_id = o.opportunity_id
                              and e.event_type = 'assigned') a
        where o.opportunity_id = any(%(ids)s)""",
    "close": """
        select o.opportunity_id as id, o.channel, o.intent,
               o.expected_close_date::timestamp at time zone %(timezone)s as started,
               (select max(e.next_step_due) from revleak.opportunity_events e
                where e.opportunity_id = o.opportunity_id
                  and e.event_type = 'next_step_set') as reached,
               'expected close' as started_label, 'latest next step due' as reached_label
        from revleak.opportunities o where o.opportunity_id = any(%(ids)s)""",
}


def worst_examples(conn: psycopg.Connection, zone: str, ids: list[str], as_of: date,
                   config: Config, n: int = 5) -> list[dict]:
    """The zone's worst cases among the finding's sample, with their timestamps."""
    if not ids:
        return []
    rows = _rows(conn, f"""
        select x.*, extract(epoch from case when %(zone)s = 'close' then %(as_of_end)s
                                            else coalesce(x.reached, %(as_of_end)s) end
                                       - x.started) / 3600 as waited_hours
        from ({WORST[zone]}) x
        order by x.reached is not null, waited_hours desc, x.id limit {int(n)}""",
                 {"ids": ids, "timezone": config.timezone, "zone": zone,
                  "as_of_end": periods.day_end(as_of, config.tz)})
    for r in rows:
        r["waited_hours"] = Decimal(r["waited_hours"]).quantize(Decimal("0.1"))
    return rows
