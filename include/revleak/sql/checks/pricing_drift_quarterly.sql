-- pricing_drift_quarterly: was every invoice line issued in the quarter priced as the rate
-- card, promotions and approved discounts allow? One finding per customer, SKU and kind of
-- drift; the expected amount is what the line should have come to (contract §3).

-- name: priced_lines
create temp table priced_lines on commit drop as
with lines as (
    select i.invoice_id, i.customer_id, i.currency, i.issue_date, l.line_no, l.sku,
           l.quantity, l.unit_price, coalesce(l.discount_pct, 0) as discount_pct,
           l.promo_code, l.amount
    from revleak.invoices i
    join revleak.invoice_lines l using (invoice_id)
    where i.kind = 'invoice' and i.status not in ('draft', 'void')
      and i.issue_date between %(window_start)s and %(as_of)s
)
select x.*, card.list_price,
       exists (select from revleak.rate_cards old
               where old.sku = x.sku and old.currency = x.currency
                 and old.effective_to < x.issue_date and old.list_price = x.unit_price)
           as earlier_price,
       p.discount_pct as promo_pct, p.stackable,
       p.promo_code is not null and x.issue_date between p.valid_from and p.valid_to
           as promo_valid,
       exists (select from revleak.discount_approvals a
               where a.customer_id = x.customer_id and (a.sku is null or a.sku = x.sku)
                 and x.issue_date >= a.valid_from
                 and (a.valid_to is null or x.issue_date <= a.valid_to)
                 and a.max_discount_pct >= x.discount_pct) as approved
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

-- name: metrics
select 'lines_checked' as metric, count(*)::numeric as value,
       jsonb_build_object('without_rate_card', count(*) filter (where list_price is null))
           as detail
from priced_lines;
