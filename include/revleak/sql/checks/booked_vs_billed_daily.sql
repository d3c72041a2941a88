-- booked_vs_billed_daily: was every closed-won contract billed what its terms say, as of a date?
-- Contract §3. Steps run in order, each a statement; values are bind parameters.

-- name: settled
-- Contracts settled by the as-of date (revleak.settled_contracts, schema 0018): billed exactly
-- their amount, every period due, renewed or one_time. They cannot be a finding; they count in
-- the portfolio with their amount, and are not reconciled again.
create temp table settled on commit drop as
select s.opportunity_id, s.currency, s.amount
from revleak.settled_contracts s
where s.last_period_start <= %(as_of)s
  and s.last_period_start + %(billing_lag_days)s <= %(as_of)s
  and (s.last_issue_date is null or s.last_issue_date <= %(as_of)s)
  and (s.renewed_at is null or s.renewed_at < %(as_of_end)s)
  and (s.closed_at is null or s.closed_at < %(as_of_end)s)
  and not exists (select from revleak.unsettled u
                  where u.kind = 'contract' and u.id in (s.opportunity_id, '*'));

-- name: settled_statistics
-- How many are settled, for the planner: with most of the books settled, the others are
-- reached by their keys instead of a scan of every line.
analyze settled;

-- name: settled_totals
-- Their amounts per currency, at the as-of date's rate to the base currency.
create temp table settled_totals on commit drop as
select s.currency, count(*) as contracts, sum(s.amount) as amount, fx.rate as fx_rate
from settled s
left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = s.currency
group by s.currency, fx.rate;

-- name: contract_invoices
-- What each invoice linked to a closed-won contract billed, in the contract's currency: an
-- invoice in another currency counts at the fx rate of its issue date (contract §3).
create temp table contract_invoices on commit drop as
with invoiced as (
    select i.opportunity_id, i.invoice_id, i.issue_date, i.currency,
           o.currency as contract_currency,
           sum(case when i.kind = 'credit_note' then -abs(l.amount) else l.amount end) as amount
    from revleak.invoices i
    join revleak.opportunities o
      on o.opportunity_id = i.opportunity_id and o.stage = 'closed_won'
    join revleak.invoice_lines l using (invoice_id)
    where i.status not in ('draft', 'void')
      and i.issue_date <= %(as_of)s
      and not exists (select from settled s where s.opportunity_id = i.opportunity_id)
    group by i.invoice_id, o.currency
),
rated as (
    select v.*, v.currency <> v.contract_currency as converted,
           case when v.currency = v.contract_currency then 1
                else revleak.fx_rate(v.currency, v.issue_date, %(base_currency)s)
                     / nullif(revleak.fx_rate(v.contract_currency, v.issue_date,
                                              %(base_currency)s), 0)
           end as fx_rate
    from invoiced v
)
select r.*, r.amount * r.fx_rate as billed from rated r;

-- name: contract_gaps
-- One row per closed-won contract booked by the as-of date and not settled: what was due,
-- started and billed.
create temp table contract_gaps on commit drop as
with contracts as (
    select o.opportunity_id, o.customer_id, o.currency, o.amount, o.contract_start,
           o.contract_end, o.billing_frequency, coalesce(o.auto_renew, false) as auto_renew,
           o.owner
    from revleak.opportunities o
    where o.stage = 'closed_won'
      and o.contract_start <= %(as_of)s
      and (o.closed_at is null or o.closed_at < %(as_of_end)s)
      and not exists (select from settled s where s.opportunity_id = o.opportunity_id)
),
fixed_terms as (  -- schedules that never renew by themselves: periods counted, not generated
    select c.opportunity_id, c.amount, c.contract_start, c.billing_frequency,
           revleak.periods_by(c.contract_start, c.billing_frequency, c.contract_end)
               as periods_per_term
    from contracts c
    where c.billing_frequency = 'one_time' or not c.auto_renew
),
expected as materialized (  -- computed once, whatever the planner guesses of its size
    select f.opportunity_id,  -- one division per contract: exact to the last cent
           f.amount * least(f.periods_per_term, revleak.periods_by(
               f.contract_start, f.billing_frequency,
               least(%(as_of)s, %(as_of)s - %(billing_lag_days)s))) / f.periods_per_term as due,
           f.amount * least(f.periods_per_term, revleak.periods_by(
               f.contract_start, f.billing_frequency, %(as_of)s)) / f.periods_per_term as started,
           f.amount / f.periods_per_term as per_period
    from fixed_terms f
    union all
    select c.opportunity_id,  -- self-renewing: the schedule function, term by term
           max(c.amount) * count(*)
               filter (where p.period_start <= %(as_of)s
                         and p.period_start + %(billing_lag_days)s <= %(as_of)s)
               / max(p.periods_per_term),
           max(c.amount) * count(*) filter (where p.period_start <= %(as_of)s)
               / max(p.periods_per_term),
           max(c.amount) / max(p.periods_per_term)
    -- the dates are tested in the aggregates, not in a where: a where is pushed into the
    -- schedule function and evaluated per period generated (4x slower)
    from contracts c,
         revleak.billing_periods(c.contract_start, c.contract_end, c.billing_frequency,
                                 c.auto_renew, %(as_of)s) p
    where c.auto_renew and c.billing_frequency <> 'one_time'
    group by c.opportunity_id
),
billed as (
    select opportunity_id, sum(billed) as billed,
           array_agg(invoice_id order by invoice_id) as invoice_ids,
           jsonb_agg(jsonb_build_object(
               'invoice_id', invoice_id, 'issue_date', issue_date, 'currency', currency,
               'amount', round(amount, 2), 'fx_rate', fx_rate, 'billed', round(billed, 2))
               order by invoice_id) filter (where converted) as converted_invoices
    from contract_invoices
    group by opportunity_id
),
renewed as (
    select distinct renewal_of as opportunity_id
    from revleak.opportunities
    where renewal_of is not null and created_at < %(as_of_end)s
)
select c.*,
       coalesce(e.due, 0) as due,
       coalesce(e.started, 0) as started,
       e.per_period,
       coalesce(b.billed, 0) as billed,
       coalesce(b.invoice_ids, '{}') as invoice_ids,
       b.converted_invoices,
       r.opportunity_id is not null as renewed,
       fx.rate as fx_rate
from contracts c
left join expected e using (opportunity_id)
left join billed b using (opportunity_id)
left join renewed r using (opportunity_id)
left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = c.currency;

-- name: findings
-- Every contract whose gap is above tolerance, plus the portfolio when its total is.
create temp table run_findings on commit drop as
with tolerances as (
    select g.*,
           revleak.tolerance(g.due, %(tolerance_pct)s, %(tolerance_min)s) as under_tolerance,
           revleak.tolerance(g.started, %(tolerance_pct)s, %(tolerance_min)s) as over_tolerance
    from contract_gaps g
),
gaps as (
    select t.*, 'under_billing' as leak, t.due as expected_amount, t.due - t.billed as gap,
           case when round(t.due - t.billed, 2) >= round(t.per_period, 2)
                then 'unbilled' else 'under_billed' end as category,
           t.under_tolerance as tolerance
    from tolerances t where t.due - t.billed > t.under_tolerance
    union all
    select t.*, 'over_billing', t.started, t.started - t.billed, 'over_billed', t.over_tolerance
    from tolerances t where t.billed - t.started > t.over_tolerance
    union all
    select t.*, 'renewal_miss', t.amount, t.amount, 'renewal_miss', null
    from tolerances t
    where not t.auto_renew and not t.renewed and t.billing_frequency <> 'one_time'
      and t.contract_end < %(as_of)s - %(renewal_grace_days)s
),
periods as (  -- evidence: each started period, what it expected and what billing filled it
    select g.opportunity_id, g.leak,
           jsonb_agg(jsonb_build_object(
               'term', p.term, 'period_start', p.period_start,
               'due_date', p.period_start + %(billing_lag_days)s,
               'expected', round(g.amount / p.periods_per_term, 2),
               'billed', round(greatest(0, least(g.amount / p.periods_per_term,
                                                 g.billed - p.cum_before)), 2))
               order by p.period_start) as periods,
           min(p.period_start + %(billing_lag_days)s) filter (
               where p.period_start + %(billing_lag_days)s <= %(as_of)s
                 and p.cum_before + g.amount / p.periods_per_term - g.billed > 0.005
           ) as oldest_unbilled_due
    from gaps g,
         lateral (
             select bp.*, coalesce(sum(g.amount / bp.periods_per_term) over (
                        order by bp.period_start rows between unbounded preceding
                        and 1 preceding), 0) as cum_before
             from revleak.billing_periods(g.contract_start, g.contract_end,
                                          g.billing_frequency, g.auto_renew, %(as_of)s) bp
             where bp.period_start <= %(as_of)s
         ) p
    where g.leak <> 'renewal_miss'
    group by g.opportunity_id, g.leak
),
over_since as (  -- the invoice whose billing first pushed the contract over what had started
    select g.opportunity_id, min(i.issue_date) as since
    from gaps g
    join lateral (
        select ci.issue_date,
               sum(ci.billed) over (order by ci.issue_date, ci.invoice_id) as cumulative
        from contract_invoices ci
        where ci.opportunity_id = g.opportunity_id
    ) i on i.cumulative > g.started + g.tolerance
    where g.leak = 'over_billing'
    group by g.opportunity_id
),
contract_findings as (
    select revleak.fingerprint(%(check_id)s, g.leak, 'opportunity', g.opportunity_id)
               as fingerprint,
           g.category, 'opportunity' as entity_type, g.opportunity_id as entity_id,
           g.customer_id, g.currency,
           round(g.expected_amount, 2) as expected_amount,
           round(case when g.leak = 'renewal_miss' then 0 else g.billed end, 2) as actual_amount,
           round(g.gap, 2) as gap_amount,
           round(g.gap * g.fx_rate, 2) as gap_amount_base,
           round(100 * g.gap / nullif(g.expected_amount, 0), 4) as gap_pct,
           %(as_of)s - case g.leak
               when 'renewal_miss' then g.contract_end + %(renewal_grace_days)s + 1
               when 'over_billing' then coalesce(o.since, %(as_of)s)
               else coalesce(p.oldest_unbilled_due, %(as_of)s) end as days_outstanding,
           jsonb_build_object(
               'contract', jsonb_build_object(
                   'amount', g.amount, 'contract_start', g.contract_start,
                   'contract_end', g.contract_end, 'billing_frequency', g.billing_frequency,
                   'auto_renew', g.auto_renew, 'crm_owner', g.owner),
               'due', round(g.due, 2), 'started', round(g.started, 2),
               'billed', round(g.billed, 2), 'tolerance', round(g.tolerance, 2),
               'fx_rate', g.fx_rate, 'invoice_ids', to_jsonb(g.invoice_ids),
               'converted_invoices', g.converted_invoices,
               'periods', coalesce(p.periods, '[]'::jsonb)) as evidence
    from gaps g
    left join periods p using (opportunity_id, leak)
    left join over_since o using (opportunity_id)
),
portfolio as (  -- every contract booked: the reconciled ones and the settled ones
    select sum(due_base) as due_base, sum(shortfall_base) as shortfall_base,
           sum(missing_fx) as missing_fx,
           (select coalesce(max(days_outstanding), 0) from contract_findings
            where gap_amount > 0 and category <> 'renewal_miss') as days
    from (select due * fx_rate as due_base, greatest(due - billed, 0) * fx_rate
                     as shortfall_base, (fx_rate is null)::int as missing_fx
          from contract_gaps
          union all
          select amount * fx_rate, 0 * fx_rate, case when fx_rate is null then contracts
                                                     else 0 end
          from settled_totals) c
)
select * from contract_findings
union all
select revleak.fingerprint(%(check_id)s, 'portfolio', 'portfolio', 'all'),
       'under_billed', 'portfolio', 'all', null, %(base_currency)s::text,
       round(p.due_base, 2), round(p.due_base - p.shortfall_base, 2),
       round(p.shortfall_base, 2), round(p.shortfall_base, 2),
       round(100 * p.shortfall_base / nullif(p.due_base, 0), 4),
       p.days,
       jsonb_build_object('due_base', round(p.due_base, 2),
                          'shortfall_base', round(p.shortfall_base, 2),
                          'contracts_without_fx_rate', p.missing_fx)
from portfolio p
where p.shortfall_base > revleak.tolerance(p.due_base, %(tolerance_pct)s, %(tolerance_min)s);

-- name: metrics
-- Run-level figures: realization (billed / due, excess billing not netted), totals, coverage;
-- a settled contract is due and billed its amount.
with booked as (
    select due * fx_rate as due_base, least(billed, due) * fx_rate as billed_base,
           greatest(due - billed, 0) * fx_rate as shortfall_base, 1 as contracts
    from contract_gaps
    union all
    select amount * fx_rate, amount * fx_rate, 0 * fx_rate, contracts from settled_totals
)
select 'realization_rate' as metric,
       round(1 - sum(shortfall_base) / nullif(sum(due_base), 0), 6),
       jsonb_build_object('due_base', round(sum(due_base), 2),
                          'billed_base', round(sum(billed_base), 2))
from booked
union all
select 'contracts_checked', coalesce(sum(contracts), 0), '{}'::jsonb from booked;
