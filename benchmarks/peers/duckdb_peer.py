"""The DuckDB script a user would write instead of revleak: booked-vs-billed and
billed-vs-collected (contract §3 with its clarifications) in SQL straight over the CSV exports.

    .venv/bin/python benchmarks/peers/duckdb_peer.py booked_vs_billed_daily \
        --books benchmarks/out/medium --as-of 2026-09-30 --rules '{...}' --out found.jsonl

Each export is read once (the columns the check needs, typed) into an in-memory table. Money is
DECIMAL, exact; a share of a contract (amount / periods in a term) stays a numerator over the
number of periods until a figure is rounded, half away from zero, to the cent. An invoice in
another currency than its contract converts at the rates of its issue date (an as-of join);
base-currency totals are summed exactly per currency.
"""

from __future__ import annotations

import re
import tempfile
from fractions import Fraction

import duckdb
import peer_args

MONEY = "DECIMAL(38, 10)"
TYPES = {  # the contract's §2 types of the columns the checks read (fx rates stay text: exact)
    "amount": "DECIMAL(18, 4)", "auto_renew": "BOOLEAN", "contract_start": "DATE",
    "contract_end": "DATE", "issue_date": "DATE", "due_date": "DATE", "rate_date": "DATE",
    "created_at": "TIMESTAMPTZ", "closed_at": "TIMESTAMPTZ", "attempted_at": "TIMESTAMPTZ",
}
READS = {
    "booked_vs_billed_daily": {
        "opportunities": ("opportunity_id", "customer_id", "stage", "amount", "currency",
                          "contract_start", "contract_end", "billing_frequency", "auto_renew",
                          "renewal_of", "created_at", "closed_at"),
        "invoices": ("invoice_id", "opportunity_id", "issue_date", "currency", "status", "kind"),
        "invoice_lines": ("invoice_id", "amount"),
        "fx_rates": ("currency", "rate_date", "rate_to_base"),
    },
    "billed_vs_collected_weekly": {
        "invoices": ("invoice_id", "customer_id", "issue_date", "due_date", "currency", "status",
                     "kind"),
        "invoice_lines": ("invoice_id", "amount"),
        "payments": ("payment_id", "invoice_id", "customer_id", "amount", "currency",
                     "attempted_at", "status"),
        "fx_rates": ("currency", "rate_date", "rate_to_base"),
    },
}

MACROS = f"""
-- num / periods (num in money) rounded half away from zero to the cent, exactly
create macro cents(num, periods) as
    (sign(num) * ((abs((num::{MONEY} * 10000000000)::hugeint) * 2 + periods * 100000000)
                  // (periods * 200000000)))::decimal(38, 0) * 0.01;
create macro fx_on(day, base) as table  -- each currency's rate on a day
    select currency, arg_max(rate_to_base, rate_date) as rate from fx_rates
    where rate_date <= day and currency <> base group by currency
    union all select base, '1';
"""

BOOKED_VS_BILLED = ["""
create table contracts as
with won as (
    select *, case billing_frequency when 'monthly' then 1 when 'quarterly' then 3
                                     when 'annual' then 12 else 0 end as step,
           coalesce(auto_renew, false) and billing_frequency <> 'one_time' as auto,
           -- whole months from the start to the day after the end (PostgreSQL's age())
           (year(contract_end + 1) * 12 + month(contract_end + 1))
             - (year(contract_start) * 12 + month(contract_start))
             - (day(contract_end + 1) < day(contract_start))::int as span,
           datediff('day', contract_start, contract_end) + 1 as term_days
    from opportunities
    where stage = 'closed_won' and contract_start <= $as_of
      and (closed_at is null or closed_at < $as_of_end)
)
select w.*,
       (contract_start + to_months(span))::date = contract_end + 1 as whole_months,
       case when step = 0 then 1 else (
           select count(*) from range(0, span // greatest(step, 1) + 2) k(k)
           where (contract_start + to_months(k * step))::date <= contract_end) end as n
from won w
""", """
create table periods as  -- every period begun by the as-of date, oldest first
with terms as (
    select c.*, j,
           case when whole_months then (contract_start + to_months(j * span))::date
                else contract_start + (j * term_days)::integer end as term_start
    from contracts c,
         range(0, case when auto then greatest(datediff('day', contract_start, $as_of), 0)
                                      // term_days + 3 else 1 end) t(j)
),
starts as (
    select opportunity_id, amount, n, (term_start + to_months(k * step))::date as period_start
    from terms, range(0, n) p(k)
    where j = 0 or term_start <= $as_of
)
select *, row_number() over (partition by opportunity_id order by period_start) - 1 as ord
from starts where period_start <= $as_of
""", f"""
create table billed_invoices as  -- in the contract's currency
with invoiced as (
    select i.invoice_id, i.opportunity_id, i.issue_date, i.currency,
           o.currency as contract_currency,
           sum(case when i.kind = 'credit_note' then -abs(l.amount) else l.amount end) as amount
    from invoices i
    join opportunities o on o.opportunity_id = i.opportunity_id and o.stage = 'closed_won'
    join invoice_lines l on l.invoice_id = i.invoice_id
    where i.status not in ('draft', 'void') and i.issue_date <= $as_of
    group by all
)
select v.opportunity_id, v.invoice_id, v.issue_date,
       case when v.currency = v.contract_currency then v.amount::{MONEY}
            else (v.amount::double
                  * (case when v.currency = $base then 1 else src.rate_to_base::double end)
                  / (case when v.contract_currency = $base then 1
                          else dst.rate_to_base::double end))::{MONEY} end as billed
from invoiced v
asof left join fx_rates src on src.currency = v.currency and v.issue_date >= src.rate_date
asof left join fx_rates dst
    on dst.currency = v.contract_currency and v.issue_date >= dst.rate_date
""", """
create table gaps as  -- amounts due and started are kept × n (periods per term): exact
select c.opportunity_id, c.customer_id, c.currency, c.amount, c.n, c.auto,
       c.billing_frequency, c.contract_end, coalesce(b.billed, 0) as billed,
       c.amount * e.due_n as due_x, c.amount * e.started_n as started_x,
       c.amount * e.due_n - coalesce(b.billed, 0) * c.n as under_x,
       c.opportunity_id in (select renewal_of from opportunities
                            where renewal_of is not null and created_at < $as_of_end) as renewed
from contracts c
join (select opportunity_id, count(*) as started_n,
             count(*) filter (where period_start + $lag <= $as_of) as due_n
      from periods group by opportunity_id) e using (opportunity_id)
left join (select opportunity_id, sum(billed) as billed from billed_invoices
           group by opportunity_id) b using (opportunity_id)
""", """
with under as (
    select * from gaps where 100 * under_x > greatest(due_x * $pct, 100 * $min * n)
),
oldest_short as (  -- the due date of the oldest due period billing (oldest first) left short
    select p.opportunity_id, min(p.period_start + $lag) as since
    from periods p join under u using (opportunity_id)
    where p.period_start + $lag <= $as_of
      and p.amount * (p.ord + 1) - u.billed * p.n > 0.005 * p.n
    group by p.opportunity_id
),
over as (
    select *, 100 * started_x + greatest(started_x * $pct, 100 * $min * n) as limit_x100
    from gaps
    where 100 * (billed * n - started_x) > greatest(started_x * $pct, 100 * $min * n)
),
over_since as (  -- the invoice whose billing first pushed the contract over what started
    select opportunity_id, min(issue_date) as since
    from (select b.*, o.n, o.limit_x100,
                 sum(b.billed) over (partition by b.opportunity_id
                                     order by b.issue_date, b.invoice_id) as cumulative
          from billed_invoices b join over o using (opportunity_id))
    where 100 * cumulative * n > limit_x100
    group by opportunity_id
)
select case when cents(u.under_x, u.n) >= cents(u.amount, u.n) then 'unbilled'
            else 'under_billed' end, 'opportunity', u.opportunity_id, u.customer_id,
       u.currency, cents(u.due_x, u.n), cents(u.billed, 1), cents(u.under_x, u.n),
       datediff('day', coalesce(o.since, $as_of), $as_of)
from under u left join oldest_short o using (opportunity_id)
union all
select 'over_billed', 'opportunity', v.opportunity_id, v.customer_id, v.currency,
       cents(v.started_x, v.n), cents(v.billed, 1), cents(v.started_x - v.billed * v.n, v.n),
       datediff('day', coalesce(s.since, $as_of), $as_of)
from over v left join over_since s using (opportunity_id)
union all
select 'renewal_miss', 'opportunity', opportunity_id, customer_id, currency, cents(amount, 1),
       0, cents(amount, 1), datediff('day', contract_end + $grace + 1, $as_of)
from gaps
where not auto and not renewed and billing_frequency <> 'one_time'
  and contract_end < $as_of - $grace
""", """
-- the portfolio: what is due and the shortfall, per currency and periods per term
select currency, n, sum(due_x), sum(greatest(under_x, 0)) from gaps group by all
"""]

BILLED_VS_COLLECTED = ["""
create table balances as  -- every invoice past its due date: billed, collected, attempts
with billed as (
    select i.invoice_id, i.customer_id, i.currency, i.due_date, sum(l.amount) as billed
    from invoices i join invoice_lines l using (invoice_id)
    where coalesce(i.kind, 'invoice') = 'invoice' and i.status not in ('draft', 'void')
      and i.issue_date <= $as_of and i.due_date < $as_of
    group by all
),
paid as (
    select invoice_id,
           coalesce(sum(amount) filter (where status = 'succeeded'), 0) as collected,
           bool_or(status = 'disputed') as disputed, bool_or(status = 'failed') as failed
    from payments
    where invoice_id is not null and attempted_at < $as_of_end
    group by invoice_id
)
select b.*, coalesce(p.collected, 0) as collected, coalesce(p.disputed, false) as disputed,
       coalesce(p.failed, false) as failed, b.billed - coalesce(p.collected, 0) as outstanding
from billed b left join paid p using (invoice_id)
""", """
select case when disputed then 'disputed'
            when failed and collected = 0 then 'payment_failed'
            when collected > 0 then 'short_paid' else 'unpaid' end,
       'invoice', invoice_id, customer_id, currency, cents(billed, 1), cents(collected, 1),
       cents(outstanding, 1), datediff('day', due_date, $as_of)
from balances
where 100 * outstanding > greatest(billed * $pct, 100 * $min)
union all
select 'unapplied_cash', 'payment', payment_id, customer_id, currency, cents(amount, 1), 0,
       cents(amount, 1), datediff('day', timezone($timezone, attempted_at)::date, $as_of)
from payments
where invoice_id is null and status = 'succeeded' and attempted_at < $as_of_end
""", """
-- the portfolio: billed and collected (at most billed, per invoice), per currency
select currency, 1, sum(billed), sum(least(collected, billed)) from balances group by all
"""]


def load(con: duckdb.DuckDBPyConnection, books, check: str) -> None:
    """Read each export the check needs once, typed, into a table of the same name."""
    for table, columns in READS[check].items():
        path = str(books / f"{table}.csv").replace("'", "''")
        header = con.sql(f"select * from read_csv('{path}', header = true, all_varchar = true)"
                         " limit 0").columns
        types = ", ".join(f"'{c}': '{TYPES.get(c, 'VARCHAR')}'" for c in header)
        con.execute(f"create table {table} as select {', '.join(columns)} from read_csv("
                    f"'{path}', header = true, auto_detect = false, columns = {{{types}}})")


def run(con: duckdb.DuckDBPyConnection, statement: str, values: dict) -> list[tuple]:
    """One statement with the named values it uses; tolerances as exact decimals."""
    for name, typed in (("$pct", "$pct::decimal(9, 4)"), ("$min", "$min::decimal(18, 4)"),
                        ("$lag", "$lag::integer"), ("$grace", "$grace::integer")):
        statement = statement.replace(name, typed)
    used = {k: v for k, v in values.items() if re.search(rf"\${k}\b", statement)}
    return con.execute(statement, used).fetchall()


def findings(a) -> list[dict]:
    """What the check finds in the books of ``a`` (peer_args' command line)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    # what does not fit in memory spills to the system's temp folder, at most 4 GB (a large
    # run once wrote 45 GB into the working folder)
    con.execute(f"set temp_directory = '{tempfile.gettempdir()}/revleak-duckdb'")
    con.execute("set max_temp_directory_size = '4GB'")
    load(con, a.books, a.check)
    con.execute(MACROS)
    rules = a.rules
    values = {"as_of": a.as_of, "as_of_end": peer_args.as_of_end(a.as_of, a.timezone),
              "base": a.base_currency, "timezone": a.timezone,
              "pct": str(rules["tolerance_pct"]), "min": str(rules["tolerance_min"]),
              "lag": int(rules.get("billing_lag_days", 0)),
              "grace": int(rules.get("renewal_grace_days", 0))}
    *steps, found_sql, totals_sql = (BOOKED_VS_BILLED if a.check == "booked_vs_billed_daily"
                                     else BILLED_VS_COLLECTED)
    for step in steps:
        run(con, step, values)
    found = [{"category": cat, "entity_type": kind, "entity_id": entity, "customer_id": cust,
              "currency": ccy, "expected_amount": _money(e), "actual_amount": _money(ac),
              "gap_amount": _money(g), "days_outstanding": days}
             for cat, kind, entity, cust, ccy, e, ac, g, days in run(con, found_sql, values)]
    rates = {ccy: Fraction(rate) for ccy, rate in
             con.execute("select * from fx_on(?, ?)", [a.as_of, a.base_currency]).fetchall()}
    first = second = Fraction(0)
    for ccy, n, x, y in run(con, totals_sql, values):
        if ccy in rates:  # amounts without a rate are left out, as SQL's sum() leaves NULLs
            first += Fraction(x) / n * rates[ccy]
            second += Fraction(y) / n * rates[ccy]
    return found + peer_args.portfolio(a, found, first, second)


def _money(value) -> str:
    return peer_args.cents_text(round(value * 100))


def main() -> None:
    a = peer_args.parse(__doc__.splitlines()[0])
    peer_args.write(a.out, findings(a))


if __name__ == "__main__":
    main()
