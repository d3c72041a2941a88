-- funnel_leak_weekly: where did sales opportunities leak in the ISO week checked — intake,
-- routing, first response, follow-up, close? One rate per zone, a finding per zone past its
-- limit (contract §3). Week = window_start .. as_of in the company's timezone.

-- name: zones
create temp table zones on commit drop as
with week_opps as (
    select o.* from revleak.opportunities o
    where o.created_at >= %(window_start_at)s and o.created_at < %(as_of_end)s
),
intake as (  -- signals not captured as an opportunity on the day they arrived
    select s.signal_id as id,
           not exists (select from revleak.opportunities o
                       where o.signal_id = s.signal_id
                         and (o.created_at at time zone %(timezone)s)::date
                             = (s.received_at at time zone %(timezone)s)::date) as problem
    from revleak.inbound_signals s
    where s.received_at >= %(window_start_at)s and s.received_at < %(as_of_end)s
),
routing as (  -- opportunities not assigned to an owner in time
    select o.opportunity_id as id,
           not exists (select from revleak.opportunity_events e
                       where e.opportunity_id = o.opportunity_id and e.event_type = 'assigned'
                         and e.occurred_at <= o.created_at
                             + make_interval(hours => %(routing_hours)s)) as problem
    from week_opps o
),
response as (  -- high-intent opportunities without a real first response in time
    select o.opportunity_id as id,
           not exists (select from revleak.opportunity_events e
                       where e.opportunity_id = o.opportunity_id
                         and e.event_type = 'first_response'
                         and e.occurred_at <= o.created_at
                             + make_interval(mins => %(response_minutes)s)) as problem
    from week_opps o where o.intent = 'high'
),
assigned as (
    select e.opportunity_id, min(e.occurred_at) as assigned_at
    from revleak.opportunity_events e where e.event_type = 'assigned'
    group by e.opportunity_id
),
follow_up as (  -- assigned this week, fewer than two touches within the follow-up window
    select a.opportunity_id as id,
           (select count(*) from revleak.opportunity_events e
            where e.opportunity_id = a.opportunity_id
              and e.event_type in ('first_response', 'touch')
              and e.occurred_at between a.assigned_at
                  and a.assigned_at + make_interval(hours => %(follow_up_hours)s)) < 2
               as problem
    from assigned a
    where a.assigned_at >= %(window_start_at)s and a.assigned_at < %(as_of_end)s
),
close as (  -- open at the week's end, past the expected close date with no next step ahead
    select o.opportunity_id as id,
           o.expected_close_date < %(as_of)s
           and not exists (select from revleak.opportunity_events e
                           where e.opportunity_id = o.opportunity_id
                             and e.event_type = 'next_step_set'
                             and e.occurred_at < %(as_of_end)s
                             and (e.next_step_due at time zone %(timezone)s)::date
                                 >= %(as_of)s) as problem
    from revleak.opportunities o
    where o.stage not in ('closed_won', 'closed_lost') and o.created_at < %(as_of_end)s
),
measured as (
    select 'intake' as zone, 100 - %(intake_min_pct)s as limit_pct, * from intake
    union all select 'routing', %(routing_max_pct)s, * from routing
    union all select 'response', %(response_max_pct)s, * from response
    union all select 'follow_up', %(follow_up_max_pct)s, * from follow_up
    union all select 'close', %(close_max_pct)s, * from close
)
select zone, limit_pct, count(*) as population, count(*) filter (where problem) as problems,
       round(100.0 * count(*) filter (where problem) / nullif(count(*), 0), 2) as problem_pct,
       (array_agg(id order by id) filter (where problem))[1:200] as sample
from measured
group by zone, limit_pct;

-- name: findings
create temp table run_findings on commit drop as
select md5(concat_ws(':', %(check_id)s::text, 'zone', z.zone)) as fingerprint,
       z.zone as category, 'zone' as entity_type, z.zone as entity_id, null as customer_id,
       null::char(3) as currency, null::numeric as expected_amount,
       null::numeric as actual_amount, null::numeric as gap_amount,
       null::numeric as gap_amount_base,
       case when z.zone = 'intake' then 100 - z.problem_pct else z.problem_pct end as gap_pct,
       null::integer as days_outstanding, null::numeric as time_weighted_loss,
       jsonb_build_object(
           'value_pct', case when z.zone = 'intake' then 100 - z.problem_pct
                             else z.problem_pct end,
           'limit_pct', case when z.zone = 'intake' then 100 - z.limit_pct else z.limit_pct end,
           'rule', case when z.zone = 'intake' then 'same-day capture below the limit'
                        else 'share of problems above the limit' end,
           'problems', z.problems, 'population', z.population,
           'window_start', %(window_start)s, 'sample', to_jsonb(z.sample)) as evidence
from zones z
where z.population > 0 and z.problem_pct > z.limit_pct;

-- name: metrics
select zone || '_problem_pct' as metric, problem_pct as value,
       jsonb_build_object('problems', problems, 'population', population,
                          'limit_pct', limit_pct) as detail
from zones;
