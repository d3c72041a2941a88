-- billed_vs_collected_weekly: was every invoice past its due date collected, and is all
-- collected cash applied? As of the Sunday that ends the ISO week checked (contract §3).
-- Collected = payments with status succeeded; refunded, disputed, failed and pending are not.

-- name: settled
-- Invoices collected in full by the as-of date (revleak.settled_invoices, schema 0018): no
-- finding; they count in the realization rate with what they billed, and are not reconciled
-- again.
create temp table settled on commit drop as
select s.invoice_id, s.currency, s.billed
from revleak.settled_invoices s
where s.issue_date <= %(as_of)s and s.due_date < %(as_of)s
  and (s.last_attempted_at is null or s.last_attempted_at < %(as_of_end)s)
  and not exists (select from revleak.unsettled u
                  where u.kind = 'invoice' and u.id in (s.invoice_id, '*'));

-- name: settled_statistics
-- How many are settled, for the planner: with most of the books settled, the others are
-- reached by their keys instead of a scan of every line.
analyze settled;

-- name: settled_totals
-- Their amounts per currency, at the as-of date's rate to the base currency.
create temp table settled_totals on commit drop as
select s.currency, count(*) as invoices, sum(s.billed) as billed, fx.rate as fx_rate
from settled s
left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = s.currency
group by s.currency, fx.rate;

-- name: invoice_balances
-- Every invoice past its due date and not settled: what was billed, what was collected, how
-- payments went.
create temp table invoice_balances on commit drop as
with billed as (
    select i.invoice_id, i.customer_id, i.opportunity_id, i.currency, i.due_date,
           sum(l.amount) as billed
    from revleak.invoices i
    join revleak.invoice_lines l using (invoice_id)
    where i.kind = 'invoice' and i.status not in ('draft', 'void')
      and i.issue_date <= %(as_of)s and i.due_date < %(as_of)s
      and not exists (select from settled s where s.invoice_id = i.invoice_id)
    group by i.invoice_id
),
payments as (
    select p.invoice_id,
           coalesce(sum(p.amount) filter (where p.status = 'succeeded'), 0) as collected,
           bool_or(p.status = 'disputed') as disputed,
           bool_or(p.status = 'failed') as failed
    from revleak.payments p
    where p.invoice_id is not null and p.attempted_at < %(as_of_end)s
    group by p.invoice_id
)
select b.*, coalesce(p.collected, 0) as collected, coalesce(p.disputed, false) as disputed,
       coalesce(p.failed, false) as failed,
       b.billed - coalesce(p.collected, 0) as outstanding,
       revleak.tolerance(b.billed, %(tolerance_pct)s, %(tolerance_min)s) as tolerance,
       fx.rate as fx_rate
from billed b
left join payments p using (invoice_id)
left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = b.currency;

-- name: findings
create temp table run_findings on commit drop as
with uncollected as (
    select b.*,
           case when b.disputed then 'disputed'
                when b.failed and b.collected = 0 then 'payment_failed'
                when b.collected > 0 then 'short_paid'
                else 'unpaid' end as category
    from invoice_balances b
    where b.outstanding > b.tolerance
),
unapplied as (
    select p.payment_id, p.customer_id, p.currency, p.amount,
           (p.attempted_at at time zone %(timezone)s)::date as paid_on, fx.rate as fx_rate
    from revleak.payments p
    left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = p.currency
    where p.invoice_id is null and p.status = 'succeeded' and p.attempted_at < %(as_of_end)s
),
portfolio as (  -- every past-due invoice: the reconciled ones and the settled ones
    select sum(billed_base) as billed_base, sum(collected_base) as collected_base
    from (select billed * fx_rate as billed_base, least(collected, billed) * fx_rate
                     as collected_base
          from invoice_balances
          union all
          select billed * fx_rate, billed * fx_rate from settled_totals) b
),
found as (
    select revleak.fingerprint(%(check_id)s, 'collection', 'invoice', u.invoice_id)
               as fingerprint,
           u.category, 'invoice' as entity_type, u.invoice_id as entity_id, u.customer_id,
           u.currency, round(u.billed, 2) as expected_amount,
           round(u.collected, 2) as actual_amount, round(u.outstanding, 2) as gap_amount,
           round(u.outstanding * u.fx_rate, 2) as gap_amount_base,
           round(100 * u.outstanding / nullif(u.billed, 0), 4) as gap_pct,
           %(as_of)s - u.due_date as days_outstanding,
           jsonb_build_object('billed', round(u.billed, 2), 'collected', round(u.collected, 2),
                              'due_date', u.due_date, 'tolerance', round(u.tolerance, 2),
                              'opportunity_id', u.opportunity_id, 'fx_rate', u.fx_rate,
                              'payments', coalesce(a.attempts, '[]')) as evidence
    from uncollected u
    left join lateral (  -- evidence only for the invoices found: their payment attempts
        select jsonb_agg(jsonb_build_object('payment_id', p.payment_id, 'status', p.status,
                                            'amount', p.amount, 'attempted_at', p.attempted_at,
                                            'failure_code', p.failure_code)
                         order by p.attempted_at, p.payment_id) as attempts
        from revleak.payments p
        where p.invoice_id = u.invoice_id and p.attempted_at < %(as_of_end)s
    ) a on true
    union all
    select revleak.fingerprint(%(check_id)s, 'unapplied_cash', 'payment', a.payment_id),
           'unapplied_cash', 'payment', a.payment_id, a.customer_id, a.currency,
           round(a.amount, 2), 0, round(a.amount, 2), round(a.amount * a.fx_rate, 2), 100,
           %(as_of)s - a.paid_on,
           jsonb_build_object('paid_on', a.paid_on, 'fx_rate', a.fx_rate)
    from unapplied a
    union all
    -- the realization-rate alarm: collected / billed of past-due invoices below the threshold
    select revleak.fingerprint(%(check_id)s, 'realization', 'portfolio', 'all'),
           'short_paid', 'portfolio', 'all', null, %(base_currency)s::text,
           round(p.billed_base, 2), round(p.collected_base, 2),
           round(p.billed_base - p.collected_base, 2), round(p.billed_base - p.collected_base, 2),
           round(100 * (p.billed_base - p.collected_base) / p.billed_base, 4),
           (select coalesce(max(%(as_of)s - due_date), 0) from uncollected),
           jsonb_build_object('realization_rate', round(p.collected_base / p.billed_base, 6),
                              'alarm_below_pct', %(realization_alarm_pct)s)
    from portfolio p
    where p.billed_base > 0
      and 100 * p.collected_base / p.billed_base < %(realization_alarm_pct)s
)
select * from found;

-- name: metrics
-- A settled invoice is billed and collected what it billed.
with past_due as (
    select billed * fx_rate as billed_base, least(collected, billed) * fx_rate
               as collected_base, 1 as invoices
    from invoice_balances
    union all
    select billed * fx_rate, billed * fx_rate, invoices from settled_totals
)
select 'realization_rate' as metric,
       round(sum(collected_base) / nullif(sum(billed_base), 0), 6),
       jsonb_build_object('billed_base', round(sum(billed_base), 2),
                          'collected_base', round(sum(collected_base), 2))
from past_due
union all
select 'past_due_invoices', coalesce(sum(invoices), 0), '{}'::jsonb from past_due;
