-- What the Revenue leakage page shows for a choice of filters. The reader's filters are
-- always bound, null meaning everything: %(f_check)s, %(f_category)s, %(f_owner)s,
-- %(f_segment)s and %(f_checks)s (the checks the reader may see); a customer without a
-- segment counts under %(no_segment)s.

-- name: findings
-- One page of current findings h matching the filters and %(status)s ('all': every status),
-- with how many match in all: each with its customer's name, owner, deadline and ticket (the
-- same columns as a report's findings, sql/reports/data.sql, from the current state rather
-- than a date's history), without its evidence: a page is ordered and cut on these columns
-- first, and only its rows bring their evidence (evidence, below).
-- The reader's sort, a column of the page and a direction from the fixed list in
-- revleak/reports/page.py (SORTS), fills in the order below; to paste into psql, put in
-- one such as: time_weighted_loss desc
select x.*, count(*) over () as matching
from (
    select h.fingerprint, h.check_id as check, h.category, h.entity_type, h.entity_id,
           h.customer_id, c.name as customer_name, c.segment, h.as_of, h.expected_amount,
           h.actual_amount, h.gap_amount, h.currency, h.gap_amount_base, h.gap_pct,
           h.days_outstanding, h.time_weighted_loss, h.status, h.owner, h.due_date,
           h.ticket_key, h.first_seen_as_of, h.resolved_as_of
    from revleak.findings h
    left join revleak.customers c on c.customer_id = h.customer_id
    where (%(f_check)s::text is null or h.check_id = %(f_check)s)
      and (%(f_category)s::text is null or h.category = %(f_category)s)
      and (%(f_owner)s::text is null or h.owner ->> 'name' = %(f_owner)s)
      and (%(f_segment)s::text is null
           or coalesce(c.segment, %(no_segment)s) = %(f_segment)s)
      and (%(f_checks)s::text[] is null or h.check_id = any(%(f_checks)s))
      and (%(status)s = 'all' or h.status = %(status)s)
) x
order by {order} nulls last, fingerprint
limit %(limit)s offset %(offset)s;

-- name: evidence
-- The evidence of the page's %(fingerprints)s.
select fingerprint, evidence from revleak.findings where fingerprint = any(%(fingerprints)s);

-- name: options
-- The values each filter offers: those the findings of the %(checks)s have.
select array_agg(distinct f.check_id order by f.check_id),
       array_agg(distinct f.category order by f.category),
       array_agg(distinct f.owner ->> 'name' order by f.owner ->> 'name'),
       array_agg(distinct coalesce(c.segment, %(no_segment)s)
                 order by coalesce(c.segment, %(no_segment)s))
           filter (where f.customer_id is not null)
from revleak.findings f left join revleak.customers c using (customer_id)
where f.check_id = any(%(checks)s);

-- name: latest_runs
-- Each of the %(checks)s' latest successful run: the report a reader opens first.
select check_id, max(as_of)
from revleak.check_runs
where status = 'succeeded' and check_id = any(%(checks)s)
group by 1
order by 1;

-- name: trends
-- Open leakage (base currency, at its size; count of gaps) on each date a check ran from
-- %(start)s to %(end)s, narrowed by the filters; the owner filter reads the owner of the
-- leak's episode on that date.
with runs as (
    select check_id, as_of from revleak.check_runs
    where status = 'succeeded' and as_of between %(start)s and %(end)s
      and (%(f_check)s::text is null or check_id = %(f_check)s)
      and (%(f_checks)s::text[] is null or check_id = any(%(f_checks)s))
),
scoped as (
    select h.check_id, h.as_of, abs(h.gap_amount_base) as amount
    from runs r
    join revleak.finding_history h on h.check_id = r.check_id and h.as_of = r.as_of
    left join revleak.customers c on c.customer_id = h.customer_id
    where h.status = 'open' and h.entity_type <> 'portfolio'
      and h.gap_amount_base is not null
      and (%(f_category)s::text is null or h.category = %(f_category)s)
      and (%(f_owner)s::text is null or exists (
               select from revleak.finding_generations g
               where g.fingerprint = h.fingerprint
                 and h.as_of between g.first_seen_as_of and g.last_seen_as_of
                 and g.owner ->> 'name' = %(f_owner)s))
      and (%(f_segment)s::text is null
           or coalesce(c.segment, %(no_segment)s) = %(f_segment)s)
)
select r.check_id, r.as_of, coalesce(sum(s.amount), 0), count(s.amount)
from runs r left join scoped s using (check_id, as_of)
group by r.check_id, r.as_of
order by r.check_id, r.as_of;

-- name: funnel_owner
-- Whether any funnel finding (%(check)s) is routed to the %(owner)s.
select 1 from revleak.findings where check_id = %(check)s and owner ->> 'name' = %(owner)s
limit 1;

-- name: last_run
-- The last successful run of %(check)s on or before %(end)s.
select max(as_of) from revleak.check_runs
where check_id = %(check)s and status = 'succeeded' and as_of <= %(end)s;

-- name: data_version
-- What the page's summaries depend on: the warehouse, the runs recorded and the loads made.
select current_database(), inet_server_port(),
       (select (count(*), max(finished_at))::text from revleak.check_runs),
       (select (count(*), max(finished_at))::text from revleak.loads);
