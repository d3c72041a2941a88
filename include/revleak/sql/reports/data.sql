-- What each report shows, read from the stored findings, their history and the run metrics
-- (plus, where a report needs it, the books as of the run's date). Small set-based queries;
-- only report-sized tables come back to Python. Every statement is about one run: the check
-- %(check)s as of %(as_of)s.

-- name: run
-- The run a report is about (its parameters: the rules in force) and the check's previous
-- successful run; no row: the check has no successful run for that date.
select params,
       (select max(p.as_of) from revleak.check_runs p
        where p.check_id = r.check_id and p.as_of < r.as_of and p.status = 'succeeded')
           as previous
from revleak.check_runs r
where check_id = %(check)s and as_of = %(as_of)s and status = 'succeeded';

-- name: headline
-- The run's headline: open gaps (count, base amount at their size, time-weighted loss) and
-- how many resolved on the date; portfolio totals (sums of the others) stay out.
select count(*) filter (where status = 'open' and entity_type <> 'portfolio') as open_count,
       coalesce(sum(abs(gap_amount_base)) filter (where status = 'open'
                                                    and entity_type <> 'portfolio'), 0)
           as open_gap_base,
       coalesce(sum(time_weighted_loss) filter (where status = 'open'
                                                  and entity_type <> 'portfolio'), 0)
           as open_loss,
       count(*) filter (where status = 'resolved') as resolved_count
from revleak.finding_history
where check_id = %(check)s and as_of = %(as_of)s;

-- name: findings
-- A finding h of the date with what a reader needs next to it: the customer's name and, from
-- the finding's current state f, the owner, deadline and ticket.
-- With %(every)s: every finding the date saw (open, or resolved on it) for the report's full
-- list and CSV, open first, then biggest loss, then biggest gap.
-- Otherwise the %(n)s open findings that cost the most (time-weighted loss), portfolio totals
-- left out, narrowed when given to one %(category)s, to zones or to everything but zones
-- (%(zones)s true or false), to subscriptions drifting as a whole (%(subscription_drift)s).
-- A null %(n)s means no limit.
select h.fingerprint, h.check_id as check, h.category, h.entity_type, h.entity_id,
       h.customer_id, c.name as customer_name, c.segment, h.as_of, h.expected_amount,
       h.actual_amount, h.gap_amount, h.currency, h.gap_amount_base, h.gap_pct,
       h.days_outstanding, h.time_weighted_loss, h.status, f.owner, f.due_date,
       f.ticket_key, f.first_seen_as_of, f.resolved_as_of, h.evidence
from revleak.finding_history h
join revleak.findings f using (fingerprint)
left join revleak.customers c on c.customer_id = h.customer_id
where h.check_id = %(check)s and h.as_of = %(as_of)s
  and (%(every)s or (h.status = 'open' and h.entity_type <> 'portfolio'))
  and (%(category)s::text is null or h.category = %(category)s)
  and (%(zones)s::boolean is null or (h.entity_type = 'zone') = %(zones)s)
  and (not %(subscription_drift)s or (h.evidence ->> 'subscription_drift')::boolean)
order by h.status, h.time_weighted_loss desc nulls last,
         case when %(every)s then abs(h.gap_amount_base) end desc nulls last, h.fingerprint
limit %(n)s;

-- name: changes
-- What changed since the previous run %(previous)s (null: the first run, every open gap is
-- new): each gap of the date is new, resolved, grown or shrunk (by its amount, or its rate
-- when it has no amount) or unchanged. For each kind, its count and base amount (for grown
-- and shrunk, by how much) on every row, and its %(n)s biggest changes.
with classified as (
    select x.*, case when x.status = 'resolved' then 'resolved'
                     when x.prev_status is distinct from 'open' then 'new'
                     when x.size > x.prev_size then 'grown'
                     when x.size < x.prev_size then 'shrunk' else 'unchanged' end as change
    from (
        select h.fingerprint, h.check_id as check, h.category, h.entity_type, h.entity_id,
               h.customer_id, c.name as customer_name, h.currency, h.gap_amount,
               h.gap_amount_base, h.gap_pct, h.status, p.status as prev_status,
               p.gap_amount_base as prev_gap_base, p.gap_amount as prev_gap,
               p.gap_pct as prev_gap_pct, coalesce(abs(h.gap_amount), h.gap_pct) as size,
               coalesce(abs(p.gap_amount), p.gap_pct) as prev_size
        from revleak.finding_history h
        left join revleak.customers c on c.customer_id = h.customer_id
        left join revleak.finding_history p on p.fingerprint = h.fingerprint
                                           and p.as_of = %(previous)s
        where h.check_id = %(check)s and h.as_of = %(as_of)s and h.entity_type <> 'portfolio'
    ) x
),
ranked as (
    select c.*, count(*) over kind as kind_count,
           coalesce(sum(case change when 'grown'
                                    then abs(gap_amount_base) - abs(prev_gap_base)
                                    when 'shrunk'
                                    then abs(prev_gap_base) - abs(gap_amount_base)
                                    else abs(gap_amount_base) end) over kind, 0) as kind_amount,
           row_number() over (kind order by abs(coalesce(abs(gap_amount_base)
                                                         - abs(prev_gap_base),
                                                         gap_amount_base)) desc nulls last,
                                            fingerprint) as rank
    from classified c
    where change <> 'unchanged'
    window kind as (partition by change)
)
select * from ranked where rank <= %(n)s order by change, rank;

-- name: run_metrics
-- The figures the run kept, by name: value and detail.
select metric, value, detail
from revleak.metrics
where check_id = %(check)s and as_of = %(as_of)s;

-- name: metric_trend
-- A run-level figure (a rate) per date checked after %(since)s up to the run's date, oldest
-- first.
select m.as_of, m.value, m.detail
from revleak.metrics m
join revleak.check_runs r using (check_id, as_of)
where m.check_id = %(check)s and m.metric = %(metric)s and r.status = 'succeeded'
  and m.as_of > %(since)s and m.as_of <= %(as_of)s
order by m.as_of;

-- name: aging
-- Open gaps of these %(categories)s by days outstanding: amount (base) and count per bucket.
select case when days_outstanding <= 30 then '1–30' when days_outstanding <= 60
            then '31–60' when days_outstanding <= 90 then '61–90' else '90+' end as bucket,
       count(*) as count, coalesce(sum(abs(gap_amount_base)), 0) as amount
from revleak.finding_history
where check_id = %(check)s and as_of = %(as_of)s and status = 'open'
  and category = any(%(categories)s) and entity_type <> 'portfolio'
group by 1;

-- name: receivables_not_yet_due
-- The "current" bucket of the aging: open balances of invoices not yet due, from the books as
-- of the run's date (billed less payments succeeded before the end of that day,
-- %(as_of_end)s), converted to the base currency %(base)s.
with billed as (
    select i.invoice_id, i.currency, sum(l.amount) as billed
    from revleak.invoices i join revleak.invoice_lines l using (invoice_id)
    where i.kind = 'invoice' and i.status not in ('draft', 'void')
      and i.issue_date <= %(as_of)s and i.due_date >= %(as_of)s
    group by i.invoice_id, i.currency
),
balance as (
    select b.currency, b.billed - coalesce((
        select sum(p.amount) from revleak.payments p
        where p.invoice_id = b.invoice_id and p.status = 'succeeded'
          and p.attempted_at < %(as_of_end)s), 0) as outstanding
    from billed b
)
select count(*), coalesce(round(sum(b.outstanding * fx.rate), 2), 0)
from balance b
left join revleak.fx_rates_on(%(as_of)s, %(base)s) fx on fx.currency = b.currency
where b.outstanding > 0;

-- name: by_category
-- Open gaps per category: count, amount (base) and share of the check's total.
select category, count(*) as count, coalesce(sum(abs(gap_amount_base)), 0) as amount,
       coalesce(sum(abs(gap_amount_base)) / nullif(sum(sum(abs(gap_amount_base))) over (), 0),
                0) as share
from revleak.finding_history
where check_id = %(check)s and as_of = %(as_of)s and status = 'open'
  and entity_type <> 'portfolio'
group by category
order by amount desc, category;

-- name: pricing_customers
-- Pricing drift's %(n)s biggest customers (open gaps, base currency).
select h.customer_id, c.name as customer_name, count(*) as count,
       sum(abs(h.gap_amount_base)) as amount,
       string_agg(distinct h.category, ', ' order by h.category) as categories
from revleak.finding_history h left join revleak.customers c using (customer_id)
where h.check_id = %(check)s and h.as_of = %(as_of)s and h.status = 'open'
group by h.customer_id, c.name
order by amount desc nulls last, h.customer_id
limit %(n)s;

-- name: pricing_skus
-- Pricing drift's %(n)s biggest SKUs (the second part of a line's entity id).
select split_part(h.entity_id, ':', 2) as sku, count(*) as count,
       count(distinct h.customer_id) as customers, sum(abs(h.gap_amount_base)) as amount
from revleak.finding_history h
where h.check_id = %(check)s and h.as_of = %(as_of)s and h.status = 'open'
group by 1
order by amount desc nulls last, sku
limit %(n)s;

-- name: worst_examples
-- The worst cases of a funnel %(zone)s among the finding's sample %(ids)s: when each started
-- and reached the next step, the longest waits first, never reaching it worst. The wait runs
-- to the end of the run's date %(as_of_end)s when the step was never reached; for the close
-- zone (started: the expected close date, in %(timezone)s), it is always how long ago that
-- was. One branch per zone; only the zone's runs.
with examples as (
    -- intake: received, captured as an opportunity
    select s.signal_id as id, s.channel, s.intent, s.received_at as started,
           min(o.created_at) as reached, 'received' as started_label,
           'captured as opportunity' as reached_label
    from revleak.inbound_signals s
    left join revleak.opportunities o on o.signal_id = s.signal_id
    where %(zone)s = 'intake' and s.signal_id = any(%(ids)s)
    group by s.signal_id
    union all
    -- routing: created, assigned
    select o.opportunity_id, o.channel, o.intent, o.created_at, min(e.occurred_at),
           'created', 'assigned'
    from revleak.opportunities o
    left join revleak.opportunity_events e on e.opportunity_id = o.opportunity_id
                                          and e.event_type = 'assigned'
    where %(zone)s = 'routing' and o.opportunity_id = any(%(ids)s)
    group by o.opportunity_id
    union all
    -- response: created, first response
    select o.opportunity_id, o.channel, o.intent, o.created_at, min(e.occurred_at),
           'created', 'first response'
    from revleak.opportunities o
    left join revleak.opportunity_events e on e.opportunity_id = o.opportunity_id
                                          and e.event_type = 'first_response'
    where %(zone)s = 'response' and o.opportunity_id = any(%(ids)s)
    group by o.opportunity_id
    union all
    -- follow-up: assigned, second touch (the second response or touch since assignment)
    select o.opportunity_id, o.channel, o.intent, a.assigned_at,
           (select t.occurred_at from revleak.opportunity_events t
            where t.opportunity_id = o.opportunity_id and t.occurred_at >= a.assigned_at
              and t.event_type in ('first_response', 'touch')
            order by t.occurred_at offset 1 limit 1),
           'assigned', 'second touch'
    from revleak.opportunities o
    cross join lateral (select min(e.occurred_at) as assigned_at
                        from revleak.opportunity_events e
                        where e.opportunity_id = o.opportunity_id
                          and e.event_type = 'assigned') a
    where %(zone)s = 'follow_up' and o.opportunity_id = any(%(ids)s)
    union all
    -- close: expected close, latest next step due
    select o.opportunity_id, o.channel, o.intent,
           o.expected_close_date::timestamp at time zone %(timezone)s,
           (select max(e.next_step_due) from revleak.opportunity_events e
            where e.opportunity_id = o.opportunity_id and e.event_type = 'next_step_set'),
           'expected close', 'latest next step due'
    from revleak.opportunities o
    where %(zone)s = 'close' and o.opportunity_id = any(%(ids)s)
)
select x.*, extract(epoch from case when %(zone)s = 'close' then %(as_of_end)s
                                    else coalesce(x.reached, %(as_of_end)s) end
                               - x.started) / 3600 as waited_hours
from examples x
order by x.reached is not null, waited_hours desc, x.id
limit %(n)s;
