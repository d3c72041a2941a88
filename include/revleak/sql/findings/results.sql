-- The tail every check shares: its run_findings become the date's results, each with its
-- time-weighted loss (contract §4: gap_amount_base × days_outstanding), and the run's totals.

-- name: results_clear
delete from revleak.check_results where check_id = %(check_id)s and as_of = %(as_of)s;

-- name: results
insert into revleak.check_results (check_id, as_of, fingerprint, category, entity_type,
    entity_id, customer_id, expected_amount, actual_amount, gap_amount, currency,
    gap_amount_base, gap_pct, days_outstanding, time_weighted_loss, evidence)
select %(check_id)s, %(as_of)s, fingerprint, category, entity_type, entity_id, customer_id,
       expected_amount, actual_amount, gap_amount, currency, gap_amount_base, gap_pct,
       days_outstanding, gap_amount_base * days_outstanding,
       evidence || jsonb_build_object('rule_version', %(rule_version)s::text,
                                      'rules', %(rules)s::jsonb)
from run_findings;

-- name: metrics
-- How many findings of each category, and their gap in base currency (portfolios not added:
-- they restate the entities' gaps).
select 'findings' as metric, count(*)::numeric as value,
       coalesce(jsonb_object_agg(category, n), '{}') as detail
from (select category, count(*) as n from run_findings group by category) c
union all
select 'gap_base_total', coalesce(sum(gap_amount_base), 0), '{}'::jsonb
from run_findings where entity_type <> 'portfolio';
