-- Price signals the recorded findings call for (docs/pricing.md), written in the same
-- transaction as the findings, after sql/findings/record.sql: one per subscription drift and
-- its prices — the contract, SKU, currency, billed price and rate-card price — whichever
-- pricing check and date found it first. A rerun, a backfill or the other pricing check
-- finds the key taken and adds nothing; a changed price is a new key, so a new signal.

-- name: signals
insert into revleak.price_signals (signal_key, fingerprint, check_id, as_of, payload)
select k.signal_key, r.fingerprint, r.check_id, r.as_of,
       jsonb_build_object(
           'kind', 'subscription_drift', 'signal_key', k.signal_key,
           'fingerprint', r.fingerprint, 'check', r.check_id, 'as_of', r.as_of,
           'customer_id', r.customer_id, 'customer_name', e ->> 'customer_name',
           'opportunity_id', e ->> 'opportunity_id', 'sku', e ->> 'sku',
           'currency', r.currency, 'billing_frequency', e ->> 'billing_frequency',
           'contract_price', e -> 'contract_price',
           'contract_currency', e ->> 'contract_currency',
           'billed_price', e -> 'billed_price', 'rate_card_price', e -> 'rate_card_price',
           'drift_pct', e -> 'drift_pct', 'limit_pct', e -> 'limit_pct',
           'annualized_impact', e -> 'annualized_impact', 'invoice_id', e ->> 'invoice_id')
from revleak.check_results r
cross join lateral (select r.evidence as e) ev
cross join lateral (
    select encode(sha256(convert_to(jsonb_build_array(
               'subscription_drift', e ->> 'opportunity_id', e ->> 'sku', r.currency,
               round(r.actual_amount, 2), round(r.expected_amount, 2))::text, 'UTF8')), 'hex')
               as signal_key) k
where r.check_id = %(check_id)s and r.as_of = %(as_of)s and r.category = 'subscription_drift'
order by r.entity_id
on conflict (signal_key) do nothing
