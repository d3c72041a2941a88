-- recognized_vs_collected_quarterly: was the revenue the ledger recognized collected, and did
-- collected cash reach the bank? As of the last day of the quarter checked (contract §3).

-- name: findings
create temp table run_findings on commit drop as
with recognized as (  -- revenue recognized more than the collection lag before the as-of date
    select g.invoice_id, sum(g.amount) as recognized, min(g.posted_date) as first_posted,
           array_agg(g.entry_id order by g.posted_date, g.entry_id) as entry_ids
    from revleak.gl_entries g
    join revleak.invoices i using (invoice_id)
    where g.account = 'revenue' and i.kind = 'invoice' and i.status not in ('draft', 'void')
      and g.posted_date < %(as_of)s - %(collection_lag_days)s
    group by g.invoice_id
),
collected as (
    select p.invoice_id, sum(p.amount) as collected
    from revleak.payments p
    where p.status = 'succeeded' and p.attempted_at < %(as_of_end)s and p.invoice_id is not null
    group by p.invoice_id
),
not_collected as (
    select r.*, i.customer_id, i.currency, coalesce(c.collected, 0) as collected,
           r.recognized - coalesce(c.collected, 0) as gap,
           revleak.tolerance(r.recognized, %(tolerance_pct)s, %(tolerance_min)s) as tolerance
    from recognized r
    join revleak.invoices i using (invoice_id)
    left join collected c using (invoice_id)
),
undeposited as (  -- succeeded payments with no bank deposit within the deposit lag
    select p.payment_id, p.customer_id, p.currency, p.amount, p.invoice_id,
           (p.attempted_at at time zone %(timezone)s)::date as paid_on
    from revleak.payments p
    where p.status = 'succeeded'
      and (p.attempted_at at time zone %(timezone)s)::date
          <= %(as_of)s - %(deposit_lag_days)s
      and not exists (
          select from revleak.bank_transactions t
          where t.reference in (p.payment_id, p.invoice_id)
            and t.booked_date between (p.attempted_at at time zone %(timezone)s)::date
                                  and (p.attempted_at at time zone %(timezone)s)::date
                                      + %(deposit_lag_days)s)
),
found as (
    select revleak.fingerprint(%(check_id)s, 'recognized_not_collected', 'invoice',
                               n.invoice_id) as fingerprint,
           'recognized_not_collected' as category, 'invoice' as entity_type,
           n.invoice_id as entity_id, n.customer_id, n.currency,
           round(n.recognized, 2) as expected_amount, round(n.collected, 2) as actual_amount,
           round(n.gap, 2) as gap_amount,
           %(as_of)s - (n.first_posted + %(collection_lag_days)s + 1) as days_outstanding,
           jsonb_build_object('recognized', round(n.recognized, 2),
                              'collected', round(n.collected, 2),
                              'first_posted', n.first_posted, 'gl_entry_ids', n.entry_ids,
                              'tolerance', round(n.tolerance, 2)) as evidence
    from not_collected n where n.gap > n.tolerance
    union all
    select revleak.fingerprint(%(check_id)s, 'payment_not_deposited', 'payment', u.payment_id),
           'payment_not_deposited', 'payment', u.payment_id, u.customer_id, u.currency,
           round(u.amount, 2), 0, round(u.amount, 2),
           %(as_of)s - (u.paid_on + %(deposit_lag_days)s),
           jsonb_build_object('paid_on', u.paid_on, 'invoice_id', u.invoice_id,
                              'deposit_lag_days', %(deposit_lag_days)s)
    from undeposited u
)
select f.fingerprint, f.category, f.entity_type, f.entity_id, f.customer_id, f.currency,
       f.expected_amount, f.actual_amount, f.gap_amount,
       round(f.gap_amount * fx.rate, 2) as gap_amount_base,
       round(100 * f.gap_amount / nullif(f.expected_amount, 0), 4) as gap_pct,
       f.days_outstanding,
       f.evidence || jsonb_build_object('fx_rate', fx.rate) as evidence
from found f
left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = f.currency;
