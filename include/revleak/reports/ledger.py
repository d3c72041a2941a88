"""The leakage ledger: what revleak found and what came back, across checks.

Derived from the findings' history (one row per finding and date checked) and its episodes
(a leak's consecutive checked dates, ``revleak.finding_generations``):

- open leakage: the gaps still open on each check's last run on or before the period end;
- found: gaps whose episode began in the period, at the size they were first seen;
- recovered: gaps whose episode closed in the period (resolved on a run), with the amount
  that came back — the last open gap — and the time to recover, the date it closed minus
  the date it was first seen;
- recovery rate: recovered ÷ (recovered + still open).

Amounts are in the base currency at their size (an over-billing is money out of place as
much as an under-billing); portfolio totals (sums of the other findings) and findings without
an amount stay out. One set-based query; Python only receives the totals.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

DIMENSIONS = ("check", "category", "owner", "segment")
NO_SEGMENT = "no segment"


SEGMENT = f"coalesce(c.segment, '{NO_SEGMENT}')"


@dataclass(frozen=True)
class Filters:
    """What the reader narrowed the view to; None means everything."""

    check: str | None = None
    category: str | None = None
    owner: str | None = None
    segment: str | None = None
    checks: tuple[str, ...] | None = None  # the checks the reader may see; None: every check

    def params(self) -> dict:
        return {f"f_{f.name}": list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}

    def where(self, owner: str) -> str:
        """The SQL conditions of the filters set, on a finding ``h`` (history or current
        state), its customer ``c`` and the ``owner`` column given; only those (values stay
        bind parameters), so the planner sees what it filters on."""
        column = {"check": "h.check_id", "category": "h.category", "owner": owner,
                  "segment": SEGMENT, "checks": "h.check_id"}
        test = {"checks": "= any(%(f_checks)s)"}
        return " ".join(f"and {column[f.name]} {test.get(f.name, f'= %(f_{f.name})s')}"
                        for f in fields(self) if getattr(self, f.name) is not None)


# A finding h with an amount (portfolio totals are sums of the others).
MONEY = "h.entity_type <> 'portfolio' and h.gap_amount_base is not null"

# Episodes (a leak's consecutive checked dates, kept in revleak.finding_generations by
# sql/findings/record.sql, with the owner they were routed to) say when a gap was first
# seen, when it was last seen and when it closed; the history row of that date says how big
# it was. Reading episodes rather than every date checked keeps the cost with the number of
# leaks, not with the length of the history.
LEDGER = f"""
with last_run as (  -- each check's last successful run on or before the period end
    select check_id, max(as_of) as as_of from revleak.check_runs
    where status = 'succeeded' and as_of <= %(end)s group by check_id
),
episodes as (
    select 'open' as kind, g.fingerprint, l.as_of, null::int as days, g.owner
    from revleak.finding_generations g join last_run l using (check_id)
    where l.as_of between g.first_seen_as_of and g.last_seen_as_of
    union all
    select 'found', g.fingerprint, g.first_seen_as_of, null, g.owner
    from revleak.finding_generations g
    where g.first_seen_as_of between %(start)s and %(end)s
    union all
    select 'recovered', g.fingerprint, g.last_seen_as_of,
           g.resolved_as_of - g.first_seen_as_of, g.owner
    from revleak.finding_generations g
    where g.resolved_as_of between %(start)s and %(end)s
),
entries as (
    select e.kind, h.check_id, h.category, e.owner ->> 'name' as owner, {SEGMENT} as segment,
           abs(h.gap_amount_base) as amount, e.days
    from episodes e
    join revleak.finding_history h on h.fingerprint = e.fingerprint and h.as_of = e.as_of
    left join revleak.customers c on c.customer_id = h.customer_id
    where {MONEY} {{filters}}
),
-- few cells to aggregate by every dimension: one per kind and dimensions (and, for the
-- median, per recovered gap)
cells as (
    select kind, check_id, category, owner, segment, days, count(*) as n, sum(amount) as amount
    from entries group by kind, check_id, category, owner, segment, days
),
weighted as (
    select c.*, k from cells c
    cross join lateral generate_series(1, case when c.kind = 'recovered' then c.n else 1 end) k
)
select case when grouping(check_id) = 0 and grouping(category) = 0 then 'category'
            when grouping(check_id) = 0 then 'check'
            when grouping(owner) = 0 then 'owner'
            when grouping(segment) = 0 then 'segment' else 'total' end as dimension,
       check_id, category, owner, segment,
       coalesce(sum(n) filter (where kind = 'open' and k = 1), 0) as open_count,
       coalesce(sum(amount) filter (where kind = 'open' and k = 1), 0) as open_amount,
       coalesce(sum(n) filter (where kind = 'found' and k = 1), 0) as found_count,
       coalesce(sum(amount) filter (where kind = 'found' and k = 1), 0) as found_amount,
       coalesce(sum(n) filter (where kind = 'recovered' and k = 1), 0) as recovered_count,
       coalesce(sum(amount) filter (where kind = 'recovered' and k = 1), 0)
           as recovered_amount,
       percentile_cont(0.5) within group (order by days)
           filter (where kind = 'recovered') as median_days_to_recover
from weighted
group by grouping sets ((), (check_id), (check_id, category), (owner), (segment))
"""


@dataclass(frozen=True)
class Line:
    """One line of the ledger: a check, a category, an owner, a segment, or the total."""

    label: str
    check: str | None
    open_count: int
    open_amount: Decimal
    found_count: int
    found_amount: Decimal
    recovered_count: int
    recovered_amount: Decimal
    median_days_to_recover: Decimal | None

    @property
    def recovery_rate(self) -> Decimal | None:
        """Recovered ÷ (recovered + still open), 0–1."""
        whole = self.recovered_amount + self.open_amount
        return (self.recovered_amount / whole).quantize(Decimal("0.0001")) if whole else None


@dataclass(frozen=True)
class Ledger:
    start: date
    end: date
    currency: str
    total: Line
    by: dict[str, tuple[Line, ...]]


def ledger(conn: psycopg.Connection, start: date, end: date, currency: str,
           filters: Filters = Filters()) -> Ledger:
    """The ledger of the period ``start``–``end`` (inclusive), totals and by dimension."""
    rows = conn.cursor(row_factory=dict_row).execute(
        LEDGER.replace("{filters}", filters.where(owner="e.owner ->> 'name'")),
        {"start": start, "end": end, **filters.params()}).fetchall()
    by: dict[str, list[Line]] = {d: [] for d in DIMENSIONS}
    total = Line("total", None, 0, Decimal(0), 0, Decimal(0), 0, Decimal(0), None)
    for r in rows:
        days = r["median_days_to_recover"]
        label = {"check": r["check_id"], "category": r["category"], "owner": r["owner"],
                 "segment": r["segment"], "total": "total"}[r["dimension"]]
        line = Line(label or "—", r["check_id"], r["open_count"], r["open_amount"],
                    r["found_count"], r["found_amount"], r["recovered_count"],
                    r["recovered_amount"],
                    None if days is None else Decimal(str(days)).quantize(Decimal("0.1")))
        if r["dimension"] == "total":
            total = line
        else:
            by[r["dimension"]].append(line)
    order = {  # biggest open leakage first, then name: the same order every time
        d: tuple(sorted(lines, key=lambda x: (-x.open_amount, -x.recovered_amount, x.label)))
        for d, lines in by.items()}
    return Ledger(start, end, currency, total, order)
