-- The leakage ledger of the period %(start)s to %(end)s (inclusive): what revleak found and
-- what came back, across checks (see revleak/reports/ledger.py for the figures' meaning).
-- Amounts are in the base currency at their size; portfolio totals (sums of the other
-- findings) and findings without an amount stay out. A customer without a segment counts
-- under %(no_segment)s.
-- The reader's filters are always bound, null meaning everything: %(f_check)s, %(f_category)s,
-- %(f_owner)s (the owner the episode was routed to), %(f_segment)s and %(f_checks)s (the checks
-- the reader may see).

-- name: ledger
-- Episodes (a leak's consecutive checked dates, kept in revleak.finding_generations by
-- sql/findings/record.sql, with the owner they were routed to) say when a gap was first
-- seen, when it was last seen and when it closed; the history row of that date says how big
-- it was. Reading episodes rather than every date checked keeps the cost with the number of
-- leaks, not with the length of the history.
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
    select e.kind, h.check_id, h.category, e.owner ->> 'name' as owner,
           coalesce(c.segment, %(no_segment)s) as segment, abs(h.gap_amount_base) as amount,
           e.days
    from episodes e
    join revleak.finding_history h on h.fingerprint = e.fingerprint and h.as_of = e.as_of
    left join revleak.customers c on c.customer_id = h.customer_id
    where h.entity_type <> 'portfolio' and h.gap_amount_base is not null
      and (%(f_check)s::text is null or h.check_id = %(f_check)s)
      and (%(f_category)s::text is null or h.category = %(f_category)s)
      and (%(f_owner)s::text is null or e.owner ->> 'name' = %(f_owner)s)
      and (%(f_segment)s::text is null
           or coalesce(c.segment, %(no_segment)s) = %(f_segment)s)
      and (%(f_checks)s::text[] is null or h.check_id = any(%(f_checks)s))
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
group by grouping sets ((), (check_id), (check_id, category), (owner), (segment));
