-- pricing_drift_quarterly (and pricing_drift_on_change, which runs this file when prices
-- change): was every invoice line issued in the quarter priced as the rate card, promotions
-- and approved discounts allow? One finding per customer, SKU and kind of drift; the expected
-- amount is what the line should have come to (contract §3). Then subscription drift: each
-- active recurring contract's price per period against the rate card (docs/pricing.md).

-- name: priced_lines
create temp table priced_lines on commit drop as
with lines as (
    select i.invoice_id, i.customer_id, i.opportunity_id, i.currency, i.issue_date,
           l.line_no, l.sku,
           l.quantity, l.unit_price, coalesce(l.discount_pct, 0) as discount_pct,
           l.promo_code, l.amount
    from revleak.invoices i
    join revleak.invoice_lines l using (invoice_id)
    where i.kind = 'invoice' and i.status not in ('draft', 'void')
      and i.issue_date between %(window_start)s and %(as_of)s
)
-- the two lookups below run only for the lines that need their answer (a CASE branch is
-- evaluated only when taken): an earlier price for a line off the card, an approval for a
-- discount above the unapproved limit
select x.*, card.list_price,
       case when x.unit_price <> card.list_price then exists (
           select from revleak.rate_cards old
           where old.sku = x.sku and old.currency = x.currency
             and old.effective_to < x.issue_date and old.list_price = x.unit_price)
       end as earlier_price,
       p.discount_pct as promo_pct, p.stackable,
       p.promo_code is not null and x.issue_date between p.valid_from and p.valid_to
           as promo_valid,
       case when x.discount_pct > %(max_unapproved_discount_pct)s then exists (
           select from revleak.discount_approvals a
           where a.customer_id = x.customer_id and (a.sku is null or a.sku = x.sku)
             and x.issue_date >= a.valid_from
             and (a.valid_to is null or x.issue_date <= a.valid_to)
             and a.max_discount_pct >= x.discount_pct)
       end as approved
from lines x
left join lateral (
    select r.list_price from revleak.rate_cards r
    where r.sku = x.sku and r.currency = x.currency and r.effective_from <= x.issue_date
      and (r.effective_to is null or x.issue_date <= r.effective_to)
    order by r.effective_from desc limit 1
) card on true
left join revleak.promotions p on p.promo_code = x.promo_code;

-- name: findings
create temp table run_findings on commit drop as
with classified as (
    select l.*,
           case
               when l.unit_price <> l.list_price
                   then case when l.earlier_price then 'grandfathered_rate'
                             else 'price_mismatch' end
               when l.promo_code is not null and not l.promo_valid then 'expired_promo'
               when l.promo_code is not null and not l.stackable
                    and l.discount_pct > l.promo_pct then 'stacked_discount'
               when l.discount_pct > %(max_unapproved_discount_pct)s and not l.approved
                   then 'unapproved_discount'
           end as category
    from priced_lines l
    where l.list_price is not null
),
expected as (
    select c.*,
           c.quantity * case c.category
               when 'expired_promo' then c.unit_price
                   * (1 - (c.discount_pct - coalesce(c.promo_pct, c.discount_pct)) / 100)
               when 'stacked_discount' then c.unit_price * (1 - c.promo_pct / 100)
               when 'unapproved_discount'
                   then c.unit_price * (1 - %(max_unapproved_discount_pct)s / 100)
               else c.list_price * (1 - c.discount_pct / 100) end as should_be
    from classified c where c.category is not null
),
drift as (  -- lines in another currency than the customer's drift apart: customer:sku:currency
    select e.customer_id, e.sku, e.category, e.currency,
           e.customer_id || ':' || e.sku
           || case when e.currency <> c.currency then ':' || e.currency else '' end
               as entity_id,
           sum(e.should_be) as expected,
           sum(e.amount) as actual, min(e.issue_date) as since,
           jsonb_agg(jsonb_build_object(
               'invoice_id', e.invoice_id, 'line_no', e.line_no, 'issue_date', e.issue_date,
               'quantity', e.quantity, 'unit_price', e.unit_price, 'list_price', e.list_price,
               'discount_pct', e.discount_pct, 'promo_code', e.promo_code,
               'amount', e.amount, 'should_be', round(e.should_be, 2))
               order by e.issue_date, e.invoice_id, e.line_no) as lines
    from expected e
    join revleak.customers c using (customer_id)
    group by e.customer_id, e.sku, e.category, e.currency, c.currency
),
found as (
    select d.*, d.expected - d.actual as gap,
           revleak.tolerance(abs(d.expected), %(tolerance_pct)s, %(tolerance_min)s) as tolerance,
           fx.rate as fx_rate
    from drift d
    left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = d.currency
)
select revleak.fingerprint(%(check_id)s, f.category, 'customer_sku', f.entity_id)
           as fingerprint,
       f.category, 'customer_sku' as entity_type, f.entity_id,
       f.customer_id, f.currency, round(f.expected, 2) as expected_amount,
       round(f.actual, 2) as actual_amount, round(f.gap, 2) as gap_amount,
       round(f.gap * f.fx_rate, 2) as gap_amount_base,
       round(100 * f.gap / nullif(f.expected, 0), 4) as gap_pct,
       %(as_of)s - f.since as days_outstanding,
       jsonb_build_object('lines', f.lines, 'tolerance', round(f.tolerance, 2),
                          'fx_rate', f.fx_rate,
                          'subscription_drift', abs(100 * f.gap / nullif(f.expected, 0))
                                                > %(subscription_drift_pct)s) as evidence
from found f
where abs(f.gap) > f.tolerance;

-- name: subscription_drift
-- Every active recurring contract (closed won by the as-of date, not one_time, the as-of date
-- inside its term or it renews itself) and each SKU billed on its invoices in the window: the
-- price billed per period — the SKU's lines on the contract's latest invoice, quantity × unit
-- price before discounts (discounts have their own rules above) — against the rate card in
-- force on that invoice's issue date. Drift = (billed − rate card) / rate card; beyond
-- subscription_drift_pct either way (exactly the limit is no drift) → one finding per contract
-- and SKU: expected = the rate-card price per period, actual = the billed price.
insert into run_findings (fingerprint, category, entity_type, entity_id, customer_id, currency,
    expected_amount, actual_amount, gap_amount, gap_amount_base, gap_pct, days_outstanding,
    evidence)
with contracts as (
    select o.opportunity_id, o.customer_id, o.currency as contract_currency,
           o.billing_frequency,
           case o.billing_frequency when 'monthly' then 12 when 'quarterly' then 4 else 1 end
               as periods_per_year
    from revleak.opportunities o
    where o.stage = 'closed_won' and o.billing_frequency <> 'one_time'
      and o.contract_start <= %(as_of)s
      and (%(as_of)s <= o.contract_end or coalesce(o.auto_renew, false))
      and (o.closed_at is null or o.closed_at < %(as_of_end)s)
),
per_invoice as (  -- what each invoice billed of a contract's SKU, and what the rate card says
    select l.opportunity_id, l.sku, l.invoice_id, l.issue_date, l.currency,
           sum(l.quantity * l.unit_price) as billed, sum(l.quantity * l.list_price) as card
    from priced_lines l
    join contracts c using (opportunity_id)
    group by l.opportunity_id, l.sku, l.invoice_id, l.issue_date, l.currency
    having count(l.list_price) = count(*)  -- every line has a rate card
),
drift as (
    select p.*, 100 * (p.billed - p.card) / nullif(p.card, 0) as drift_pct,
           abs(p.billed - p.card) > %(subscription_drift_pct)s / 100 * abs(p.card)
               as beyond
    from per_invoice p
    where p.card <> 0  -- a SKU the rate card gives away cannot drift by a share
),
latest as (
    select distinct on (d.opportunity_id, d.sku) d.*,
           min(d.issue_date) filter (where d.beyond)
               over (partition by d.opportunity_id, d.sku) as since
    from drift d
    order by d.opportunity_id, d.sku, d.issue_date desc, d.invoice_id desc
),
found as (  -- from here on, only the contracts and SKUs found: their evidence
    select x.*, c.customer_id, c.contract_currency, c.billing_frequency, c.periods_per_year,
           o.amount / (select max(p.periods_per_term)
                       from revleak.billing_periods(o.contract_start, o.contract_end,
                                                    o.billing_frequency, false,
                                                    o.contract_start) p) as contract_price,
           x.card - x.billed as gap, x.opportunity_id || ':' || x.sku as entity_id,
           fx.rate as fx_rate
    from latest x
    join contracts c using (opportunity_id)
    join revleak.opportunities o using (opportunity_id)
    left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = x.currency
    where x.beyond
),
found_lines as (
    select l.opportunity_id, l.sku,
           jsonb_agg(jsonb_build_object(
               'invoice_id', l.invoice_id, 'line_no', l.line_no, 'issue_date', l.issue_date,
               'quantity', l.quantity, 'unit_price', l.unit_price, 'list_price', l.list_price,
               'discount_pct', l.discount_pct, 'amount', l.amount)
               order by l.issue_date, l.invoice_id, l.line_no) as lines
    from priced_lines l
    join found f using (opportunity_id, sku)
    group by l.opportunity_id, l.sku
)
select revleak.fingerprint(%(check_id)s, 'subscription_drift', 'contract_sku', f.entity_id),
       'subscription_drift', 'contract_sku', f.entity_id, f.customer_id, f.currency,
       round(f.card, 2), round(f.billed, 2), round(f.gap, 2), round(f.gap * f.fx_rate, 2),
       round(100 * f.gap / f.card, 4), %(as_of)s - f.since,
       jsonb_build_object(
           'customer_id', f.customer_id, 'customer_name', cu.name,
           'opportunity_id', f.opportunity_id, 'sku', f.sku,
           'billing_frequency', f.billing_frequency, 'periods_per_year', f.periods_per_year,
           'contract_price', round(f.contract_price, 2),
           'contract_currency', f.contract_currency,
           'billed_price', round(f.billed, 2), 'rate_card_price', round(f.card, 2),
           'drift_pct', round(f.drift_pct, 4), 'limit_pct', %(subscription_drift_pct)s,
           'annualized_impact', round(f.gap * f.periods_per_year, 2),
           'invoice_id', f.invoice_id, 'issue_date', f.issue_date, 'fx_rate', f.fx_rate,
           'lines', fl.lines)
from found f
join found_lines fl using (opportunity_id, sku)
left join revleak.customers cu on cu.customer_id = f.customer_id;

-- name: metrics
select 'lines_checked' as metric, count(*)::numeric as value,
       jsonb_build_object('without_rate_card', count(*) filter (where list_price is null))
           as detail
from priced_lines;
