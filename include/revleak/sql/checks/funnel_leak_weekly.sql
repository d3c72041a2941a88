-- funnel_leak_weekly: where did demand leak in the ISO week checked — intake, routing, first
-- response, follow-up, close — in which channel × intent × time-of-day cell, what did the leak
-- cost, which zone keeps getting worse, which deals went stale, and how healthy is the
-- pipeline? Contract §3; the states, cells, values and metrics are described in
-- docs/funnel.md. Week = window_start .. as_of in the company's timezone.

-- name: work_mem
-- A year of stage changes is sorted below: give this run's sorts room in memory (the
-- server's, for this transaction only) instead of spilling them to disk.
set local work_mem = '64MB';

-- name: trend_rates
-- Each zone's share with a problem in this week and the trend_weeks - 1 weeks before it, each
-- measured from the books as they stood at that week's end (the steps week_signals .. measured
-- and keep_rate run once per earlier week before this one), so a trend never depends on which
-- weeks were checked before, or in what order.
create temp table trend_rates (as_of date, zone text, problem_pct numeric) on commit drop;

-- name: week_signals
-- Inbound signals received in the week and whether they were captured by the week's end.
create temp table week_signals on commit drop as
with signals as (
    select s.signal_id, s.channel, s.intent, s.received_at, s.answered,
           (s.received_at at time zone %(timezone)s)::date as received_on
    from revleak.inbound_signals s
    where s.received_at >= %(window_start_at)s and s.received_at < %(as_of_end)s
),
signal_opportunities as (  -- opportunities created from those signals
    select o.signal_id, o.opportunity_id, o.created_at
    from revleak.opportunities o join signals s using (signal_id)
),
captures as (  -- ... by the week's end
    select o.signal_id, o.opportunity_id, o.created_at,
           (o.created_at at time zone %(timezone)s)::date as created_on
    from signal_opportunities o
    where o.created_at < %(as_of_end)s
),
captured as (
    select c.signal_id, bool_or(c.created_on = s.received_on) as same_day,
           min(c.created_on) as captured_on
    from captures c join signals s using (signal_id)
    group by c.signal_id
)
select s.*, coalesce(c.same_day, false) as same_day, c.captured_on,
       (select count(*) from generate_series(s.received_on + 1, c.captured_on, interval '1 day') d
        where extract(isodow from d) < 6) as business_days_late,
       s.answered is false and not exists (  -- a callback ending after the week counts, on
           -- any opportunity of the signal (even one created after the week's end)
           select from signal_opportunities k join revleak.opportunity_events e
                using (opportunity_id)
           where k.signal_id = s.signal_id and e.event_type in ('first_response', 'touch')
             and e.occurred_at >= s.received_at
             and e.occurred_at <= s.received_at + make_interval(mins => %(callback_minutes)s)
       ) as missed_call_no_callback
from signals s left join captured c using (signal_id);

-- name: week_opportunities
-- Opportunities created in the week, with the routing facts each needs.
create temp table week_opportunities on commit drop as
with created as (
    select o.opportunity_id, o.channel, o.intent, o.created_at, o.owner, o.stage, o.closed_at,
           s.contact_key
    from revleak.opportunities o
    left join revleak.inbound_signals s using (signal_id)
    where o.created_at >= %(window_start_at)s and o.created_at < %(as_of_end)s
),
same_contact as (  -- the week's contacts' opportunities, each with the one before it
    select o.opportunity_id, s.contact_key,
           lag(o.opportunity_id) over contact as previous_id,
           lag(o.created_at) over contact as previous_at
    from revleak.opportunities o
    join revleak.inbound_signals s using (signal_id)
    where s.contact_key in (select contact_key from created where contact_key is not null)
      and o.created_at >= %(window_start_at)s - make_interval(days => %(duplicate_days)s)
      and o.created_at < %(as_of_end)s
    window contact as (partition by s.contact_key order by o.created_at, o.opportunity_id)
)
select w.*,
       (select min(e.occurred_at) from revleak.opportunity_events e
        where e.opportunity_id = w.opportunity_id and e.event_type = 'assigned') as assigned_at,
       exists (select from revleak.opportunity_events e
               where e.opportunity_id = w.opportunity_id and e.event_type = 'reassigned'
                 and e.occurred_at < %(as_of_end)s and e.has_note is not true)
           as reassigned_without_note,
       case when d.previous_at >= w.created_at - make_interval(days => %(duplicate_days)s)
            then d.previous_id end as duplicate_of,
       coalesce(w.owner, '') = ''
       and not (w.stage in ('closed_won', 'closed_lost')
                and (w.closed_at is null or w.closed_at < %(as_of_end)s))
       and not exists (select from revleak.opportunity_events e
                       where e.opportunity_id = w.opportunity_id
                         and e.event_type in ('assigned', 'reassigned')
                         and e.occurred_at < %(as_of_end)s) as ownerless,
       exists (select from revleak.opportunity_events e
               where e.opportunity_id = w.opportunity_id and e.event_type = 'first_response'
                 and e.occurred_at <= w.created_at + make_interval(mins => t.target))
           as answered_in_time,
       exists (select from revleak.opportunity_events e
               where e.opportunity_id = w.opportunity_id and e.event_type = 'auto_ack'
                 and e.occurred_at <= w.created_at + make_interval(mins => t.target))
           as auto_acked,
       t.target as response_target_minutes
from created w
left join same_contact d using (opportunity_id)
cross join lateral (
    select case w.intent when 'high' then %(response_minutes)s::int
                         when 'medium' then %(response_minutes_medium)s::int
                         when 'low' then %(response_minutes_low)s::int end as target) t;

-- name: follow_ups
-- Opportunities whose follow-up window (from their first assignment) closed in the week.
create temp table follow_ups on commit drop as
with first_assigned as (
    select e.opportunity_id, e.occurred_at as assigned_at,
           e.occurred_at + make_interval(hours => %(follow_up_hours)s) as deadline
    from revleak.opportunity_events e
    where e.event_type = 'assigned'
      and e.occurred_at >= %(window_start_at)s - make_interval(hours => %(follow_up_hours)s)
      and e.occurred_at < %(as_of_end)s - make_interval(hours => %(follow_up_hours)s)
      and not exists (select from revleak.opportunity_events p
                      where p.opportunity_id = e.opportunity_id and p.event_type = 'assigned'
                        and (p.occurred_at, p.event_id) < (e.occurred_at, e.event_id))
)
select a.*, o.channel, o.intent,
       (select count(*) from revleak.opportunity_events e
        where e.opportunity_id = a.opportunity_id
          and e.event_type in ('first_response', 'touch')
          and e.occurred_at between a.assigned_at and a.deadline) as touches,
       exists (select from revleak.opportunity_events e
               where e.opportunity_id = a.opportunity_id and e.event_type = 'next_step_set'
                 and e.occurred_at between a.assigned_at and a.deadline) as next_step_set,
       o.stage in ('closed_won', 'closed_lost')
       and (o.closed_at is null or o.closed_at <= a.deadline) as closed_by_deadline,
       o.stage in ('closed_won', 'closed_lost')
       and (o.closed_at is null or o.closed_at < %(as_of_end)s) as closed_by_week_end,
       n.next_step_due < %(as_of_end)s and not exists (
           select from revleak.opportunity_events e
           where e.opportunity_id = a.opportunity_id
             and e.event_type in ('first_response', 'touch')
             and e.occurred_at >= n.next_step_due and e.occurred_at < %(as_of_end)s)
           as next_step_overdue
from first_assigned a
join revleak.opportunities o using (opportunity_id)
left join lateral (
    select e.next_step_due from revleak.opportunity_events e
    where e.opportunity_id = a.opportunity_id and e.event_type = 'next_step_set'
      and e.occurred_at < %(as_of_end)s
    order by e.occurred_at desc, e.event_id desc limit 1) n on true;

-- name: open_opportunities
-- Opportunities open at the week's end: their last activity (auto-acks are no activity) and
-- whether a next step lies ahead. Stale = no activity in the last stale_days days.
create temp table open_opportunities on commit drop as
select o.opportunity_id, o.customer_id, o.channel, o.intent, o.created_at, o.owner, o.stage,
       o.amount, o.currency, o.expected_close_date,
       coalesce(a.team, o.team) as owner_team,
       greatest(o.created_at, a.last_activity_at) as last_activity_at,
       (greatest(o.created_at, a.last_activity_at) at time zone %(timezone)s)::date
           as last_activity_on,
       (greatest(o.created_at, a.last_activity_at) at time zone %(timezone)s)::date
           <= %(as_of)s - %(stale_days)s as stale,
       exists (select from revleak.opportunity_events e
               where e.opportunity_id = o.opportunity_id and e.event_type = 'next_step_set'
                 and e.occurred_at < %(as_of_end)s
                 and (e.next_step_due at time zone %(timezone)s)::date >= %(as_of)s)
           as next_step_ahead,
       o.stage not in ('new', 'closed_won', 'closed_lost') or exists (
           select from revleak.opportunity_events e
           where e.opportunity_id = o.opportunity_id and e.event_type = 'stage_changed'
             and e.stage_to not in ('new', 'closed_lost') and e.occurred_at < %(as_of_end)s)
           as qualified
from revleak.opportunities o
cross join lateral (
    select max(e.occurred_at) filter (where e.event_type <> 'auto_ack') as last_activity_at,
           (array_agg(e.team order by e.occurred_at desc, e.event_id desc)
                filter (where e.event_type in ('assigned', 'reassigned')
                          and e.team is not null))[1] as team
    from revleak.opportunity_events e
    where e.opportunity_id = o.opportunity_id and e.occurred_at < %(as_of_end)s) a
where o.created_at < %(as_of_end)s
  and not (o.stage in ('closed_won', 'closed_lost')
           and (o.closed_at is null or o.closed_at < %(as_of_end)s));

-- name: measured
-- One row per item of a zone's population: the moment its clock started (which sets its
-- time-of-day band), and the zone's leak states it is in (none = no problem).
create temp table measured on commit drop as
with items as (
    select 'intake' as zone, signal_id as id, channel, intent, received_at as clock_at,
           array_remove(array[
               case when captured_on is null then 'never_captured' end,
               case when not same_day and business_days_late <= 1 and captured_on is not null
                    then 'captured_within_a_business_day' end,
               case when not same_day and business_days_late > 1
                    then 'captured_over_a_business_day_late' end,
               case when missed_call_no_callback then 'missed_call_no_callback' end
           ], null) as states
    from week_signals
    union all
    select 'routing', opportunity_id, channel, intent, created_at,
           array_remove(array[
               case when assigned_at is null
                         or assigned_at > created_at + make_interval(hours => %(routing_hours)s)
                    then 'unassigned_past_limit' end,
               case when reassigned_without_note then 'reassigned_without_note' end,
               case when duplicate_of is not null then 'duplicate' end,
               case when ownerless then 'ownerless' end
           ], null)
    from week_opportunities
    union all
    select 'response', opportunity_id, channel, intent, created_at,
           array_remove(array[
               case when not answered_in_time then 'response_past_target' end,
               case when not answered_in_time and auto_acked then 'auto_ack_only' end
           ], null)
    from week_opportunities where response_target_minutes is not null
    union all
    select 'follow_up', opportunity_id, channel, intent, assigned_at,
           array_remove(array[
               case when touches < 2 and not closed_by_deadline then 'no_second_touch' end,
               case when not next_step_set and not closed_by_deadline then 'no_next_step' end,
               case when next_step_overdue and not closed_by_week_end
                    then 'next_step_overdue' end
           ], null)
    from follow_ups
    union all
    select 'close', opportunity_id, channel, intent, created_at,
           array_remove(array[
               case when expected_close_date < %(as_of)s and not next_step_ahead
                    then 'past_expected_close' end,
               case when stale then 'silent_drop_off' end
           ], null)
    from open_opportunities
)
select i.*, cardinality(i.states) > 0 as problem,
       case when extract(isodow from i.clock_at at time zone %(timezone)s) >= 6 then 'weekend'
            when extract(hour from i.clock_at at time zone %(timezone)s)
                 between %(business_hours_start)s and %(business_hours_end)s - 1
                 then 'business_hours'
            else 'evening' end as band
from items i;

-- name: keep_rate
-- The week's share with a problem per zone, for the trend.
insert into trend_rates
select %(as_of)s, zone, round(100.0 * count(*) filter (where problem) / count(*), 2)
from measured group by zone;

-- name: history
-- What the CRM's own history says about winning: the opportunities closed in the history
-- window (the history_days days to the as-of date) per channel, intent and lead source (the
-- opportunity's, else its signal's) — closed, won, won revenue in base currency at the as-of
-- date's rates (a deal in a currency without a rate adds none) and the won deals' days from
-- creation to close.
create temp table history on commit drop as
select o.channel, o.intent, coalesce(nullif(o.source, ''), s.source, 'unknown') as source,
       count(*) as closed, count(*) filter (where o.stage = 'closed_won') as won,
       count(fx.rate) filter (where o.stage = 'closed_won') as won_valued,
       coalesce(sum(o.amount * fx.rate) filter (where o.stage = 'closed_won'), 0) as won_base,
       sum(extract(epoch from o.closed_at - o.created_at) / 86400)
           filter (where o.stage = 'closed_won') as won_cycle_days
from revleak.opportunities o
left join revleak.inbound_signals s using (signal_id)
left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx on fx.currency = o.currency
where o.stage in ('closed_won', 'closed_lost')
  and o.closed_at >= ((%(as_of)s::date - %(history_days)s + 1)::timestamp
                      at time zone %(timezone)s)
  and o.closed_at < %(as_of_end)s
group by 1, 2, 3;

-- name: expected_values
-- What an opportunity of a channel and intent is expected to bring: average won amount × win
-- rate (= won revenue ÷ opportunities closed) over the history window, rounded to the cent.
-- A channel × intent with fewer than value_min_closed closed opportunities takes the
-- company-wide figure. One row per channel × intent the week's leaks and stale deals need.
create temp table expected_values on commit drop as
with cells as (
    select channel, intent, sum(closed) as closed, sum(won) as won,
           sum(won_base) as won_base, sum(won_valued) as won_valued
    from history group by grouping sets ((channel, intent), ())
),
needed as (
    select distinct channel, intent from measured where problem
    union
    select channel, intent from open_opportunities where stale
)
select n.channel, n.intent, coalesce(c.closed, 0) as cell_closed,
       case when coalesce(c.closed, 0) >= %(value_min_closed)s then 'channel_intent'
            else 'company' end as basis,
       b.closed, b.won, round(b.won_base, 2) as won_base,
       round(100.0 * b.won / nullif(b.closed, 0), 2) as win_rate_pct,
       round(b.won_base / nullif(b.won_valued, 0), 2) as average_won_base,
       coalesce(round(b.won_base / nullif(b.closed, 0), 2), 0) as ev_base
from needed n
left join cells c on c.channel = n.channel and c.intent = n.intent
cross join lateral (
    select coalesce(sum(x.closed), 0) as closed, coalesce(sum(x.won), 0) as won,
           coalesce(sum(x.won_base), 0) as won_base,
           coalesce(sum(x.won_valued), 0) as won_valued
    from cells x
    where case when coalesce(c.closed, 0) >= %(value_min_closed)s then x.channel = n.channel
                                                                     and x.intent = n.intent
               else x.channel is null end) b;

-- name: week_outcomes
-- How the opportunities closed in the week ended: won, or lost and why.
create temp table week_outcomes on commit drop as
select case when o.stage = 'closed_won' then 'won'
            else coalesce(o.close_reason, 'unrecorded') end as outcome,
       count(*) as n
from revleak.opportunities o
where o.stage in ('closed_won', 'closed_lost')
  and o.closed_at >= %(window_start_at)s and o.closed_at < %(as_of_end)s
group by 1;

-- name: zones
-- Each zone's rate against its limit, its leak states, the channel × intent × time-of-day
-- cells past the limit (at least cell_min_population items each), its trend over the last
-- trend_weeks weeks (trend_rates) and what the items it lost this week were worth.
create temp table zones on commit drop as
with limits (zone, limit_pct, phrase) as (
    values ('intake', 100 - %(intake_min_pct)s::numeric, 'not captured the same day'),
           ('routing', %(routing_max_pct)s::numeric, 'not routed cleanly'),
           ('response', %(response_max_pct)s::numeric, 'missed the target'),
           ('follow_up', %(follow_up_max_pct)s::numeric, 'not followed up in time'),
           ('close', %(close_max_pct)s::numeric, 'stalled before close')
),
nouns (channel, noun) as (
    values ('phone', 'phone calls'), ('web_form', 'web forms'), ('chat', 'chats'),
           ('whatsapp', 'WhatsApp messages'), ('email', 'emails'),
           ('marketplace', 'marketplace leads'), ('referral', 'referrals'),
           ('walk_in', 'walk-ins'), ('outbound', 'outbound opportunities')
),
totals as (
    select m.zone, count(*) as population, count(*) filter (where m.problem) as problems,
           r.problem_pct, (array_agg(m.id order by m.id) filter (where m.problem))[1:200] as sample
    from measured m
    join trend_rates r on r.zone = m.zone and r.as_of = %(as_of)s
    group by m.zone, r.problem_pct
),
states as (
    select zone, jsonb_object_agg(state, jsonb_build_object('count', n, 'ids', to_jsonb(ids)))
               as states
    from (select m.zone, x.state, count(*) as n, (array_agg(m.id order by m.id))[1:200] as ids
          from measured m cross join unnest(m.states) x(state)
          group by m.zone, x.state) s
    group by zone
),
cells as (
    select m.zone, m.channel, m.intent, m.band, count(*) as population,
           count(*) filter (where m.problem) as problems,
           round(100.0 * count(*) filter (where m.problem) / count(*), 2) as problem_pct,
           (array_agg(m.id order by m.id) filter (where m.problem))[1:50] as ids
    from measured m group by m.zone, m.channel, m.intent, m.band
),
past_limit as (
    select c.*,
           c.intent || '-intent ' || n.noun || ' '
           || case c.band when 'business_hours' then 'in business hours'
                          when 'evening' then 'on evenings' else 'on weekends' end
           || ': ' || trim_scale(round(c.problem_pct, 1))::text || '%% '
           || case when c.zone <> 'response' then l.phrase
                   when mod(r.minutes, 60) = 0
                       then 'missed the ' || r.minutes / 60 || '-hour target'
                   else 'missed the ' || r.minutes || '-minute target' end
           || ' (' || c.problems || ' of ' || c.population || '; limit '
           || trim_scale(l.limit_pct)::text || '%%): ' || array_to_string(c.ids[1:5], ', ')
           || case when c.problems > 5 then ' and ' || c.problems - 5 || ' more' else '' end
               as sentence
    from cells c
    join limits l using (zone)
    join nouns n using (channel)
    cross join lateral (
        select case c.intent when 'high' then %(response_minutes)s::int
                             when 'medium' then %(response_minutes_medium)s::int
                             else %(response_minutes_low)s::int end as minutes) r
    where c.population >= %(cell_min_population)s and c.problem_pct > l.limit_pct
),
cell_evidence as (
    select zone,
           jsonb_agg(sentence order by problem_pct desc, problems desc, channel, intent, band)
               as sentences,
           jsonb_agg(jsonb_build_object(
               'channel', channel, 'intent', intent, 'band', band, 'population', population,
               'problems', problems, 'problem_pct', problem_pct, 'ids', to_jsonb(ids))
               order by problem_pct desc, problems desc, channel, intent, band) as cells
    from past_limit group by zone
),
trend as (  -- this week and the trend_weeks - 1 weeks before it, oldest first
    select t.zone,
           jsonb_agg(jsonb_build_object('as_of', w.as_of, 'problem_pct', w.problem_pct)
                     order by w.as_of) as weeks,
           count(*) = %(trend_weeks)s and count(*) filter (where w.worse) = count(*) - 1
               as worsening,
           string_agg(trim_scale(w.problem_pct)::text || '%%', ' → ' order by w.as_of)
               as figures
    from totals t
    cross join lateral (
        select r.as_of, r.problem_pct,
               r.problem_pct > lag(r.problem_pct) over (order by r.as_of) as worse
        from trend_rates r where r.zone = t.zone) w
    group by t.zone
),
lost as (  -- what the week's leaked items were worth, each at its channel × intent's value
    select l.zone, sum(l.n * e.ev_base) as value_base,
           jsonb_agg(jsonb_build_object(
               'channel', e.channel, 'intent', e.intent, 'leaked', l.n,
               'expected_value_base', e.ev_base, 'value_base', l.n * e.ev_base,
               'basis', e.basis, 'closed', e.closed, 'won', e.won,
               'win_rate_pct', e.win_rate_pct, 'average_won_base', e.average_won_base)
               order by l.n * e.ev_base desc, e.channel, e.intent) as by_channel_intent
    from (select zone, channel, intent, count(*) as n from measured where problem
          group by zone, channel, intent) l
    join expected_values e using (channel, intent)
    group by l.zone
)
select t.zone, t.population, t.problems, t.problem_pct, l.limit_pct, t.sample,
       case when t.zone = 'intake' then 100 - t.problem_pct else t.problem_pct end as rate_pct,
       case when t.zone = 'intake' then 100 - l.limit_pct else l.limit_pct end as rule_pct,
       coalesce(s.states, '{}') as states,
       coalesce(c.sentences, '[]') as cells_past_limit, coalesce(c.cells, '[]') as cells,
       tr.weeks as trend, tr.worsening, tr.figures as trend_figures,
       coalesce(round(v.value_base, 2), 0) as value_base,
       coalesce(v.by_channel_intent, '[]') as value_by_channel_intent,
       t.problem_pct > l.limit_pct as over_limit,
       t.problem_pct > l.limit_pct or c.zone is not null or tr.worsening as leaking
from totals t
join limits l using (zone)
join trend tr using (zone)
left join states s using (zone)
left join cell_evidence c using (zone)
left join lost v using (zone);

-- name: stages
-- Stage conversion and time in stage, over the opportunities created in the history window:
-- per stage, how many reached it (an opportunity that skipped a stage passed it; its CRM
-- stage counts unless it closed after the week's end) and its completed stays (entered by
-- creation for `new`, else by a stage change up to the week's end; left at the next one).
create temp table stages on commit drop as
with ranks (stage, next_stage, rank) as (
    values ('new', 'qualified', 1), ('qualified', 'meeting', 2), ('meeting', 'proposal', 3),
           ('proposal', 'negotiation', 4), ('negotiation', 'closed_won', 5),
           ('closed_won', null, 6), ('closed_lost', null, 0)
),
entered as (
    select o.opportunity_id, 'new' as stage, o.created_at as entered_at, true as created,
           k.rank as known_rank
    from revleak.opportunities o
    left join ranks k
      on k.stage = o.stage
     and not (o.stage in ('closed_won', 'closed_lost') and o.closed_at >= %(as_of_end)s)
    where o.created_at >= ((%(as_of)s::date - %(history_days)s + 1)::timestamp
                           at time zone %(timezone)s)
      and o.created_at < %(as_of_end)s
    union all
    select e.opportunity_id, e.stage_to, e.occurred_at, false, null
    from revleak.opportunity_events e
    join revleak.opportunities o using (opportunity_id)
    where e.event_type = 'stage_changed' and e.stage_to is not null
      and e.occurred_at < %(as_of_end)s
      and o.created_at >= ((%(as_of)s::date - %(history_days)s + 1)::timestamp
                           at time zone %(timezone)s)
      and o.created_at < %(as_of_end)s
),
stays as (  -- one sort: each stay's end and the furthest stage its opportunity reached
    select x.stage, x.created, x.entered_at,
           lead(x.entered_at) over (partition by x.opportunity_id
                                    order by x.entered_at, r.rank) as left_at,
           greatest(max(r.rank) over whole, max(x.known_rank) over whole) as reached
    from entered x join ranks r using (stage)
    window whole as (partition by x.opportunity_id)
),
summary as (
    select stage, created, reached, count(*) as n, count(left_at) as stays,
           sum(extract(epoch from left_at - entered_at)) / 86400 as days
    from stays group by stage, created, reached
)
select r.stage, r.next_stage, r.rank,
       (select coalesce(sum(n), 0) from summary where created and reached >= r.rank)
           as reached,
       (select coalesce(sum(n), 0) from summary where created and reached > r.rank)
           as converted,
       (select coalesce(sum(stays), 0) from summary s where s.stage = r.stage) as stays,
       (select sum(days) from summary s where s.stage = r.stage) as days
from ranks r
where r.next_stage is not null;

-- name: findings
-- A finding per leaking zone (its value in base currency as the gap, its rate as gap_pct)
-- and one per stale deal (its expected value: amount × win rate of its channel and intent).
create temp table run_findings on commit drop as
with zone_findings as (
    select revleak.fingerprint(%(check_id)s, 'zone', z.zone) as fingerprint,
           z.zone as category, 'zone' as entity_type, z.zone as entity_id,
           null::text as customer_id, %(base_currency)s::text as currency,
           null::numeric as expected_amount, null::numeric as actual_amount,
           z.value_base as gap_amount, z.value_base as gap_amount_base,
           z.rate_pct as gap_pct, %(as_of)s - %(window_start)s + 1 as days_outstanding,
           jsonb_build_object(
               'value_pct', z.rate_pct, 'limit_pct', z.rule_pct,
               'problem_pct', z.problem_pct, 'problems', z.problems,
               'population', z.population,
               'rule', case z.zone
                   when 'intake' then 'inbound signals not captured the same day (or missed'
                                      ' calls not called back in time)'
                   when 'routing' then 'new opportunities unassigned past the limit,'
                                       ' reassigned without a note, duplicated or ownerless'
                   when 'response' then 'new opportunities without a first response within'
                                        ' their intent''s target (auto-acks do not count)'
                   when 'follow_up' then 'assigned opportunities without a second touch or a'
                                         ' next step in time, or with an overdue next step'
                   else 'open opportunities past their expected close date with no next'
                        ' step ahead, or silent for ' || %(stale_days)s || ' days' end,
               'triggers', to_jsonb(array_remove(array[
                   case when z.over_limit then 'rate' end,
                   case when z.cells_past_limit <> '[]' then 'cells' end,
                   case when z.worsening then 'trend' end], null)),
               'states', z.states,
               'cells_past_limit', z.cells_past_limit, 'cells', z.cells,
               'cell_min_population', %(cell_min_population)s,
               'bands', jsonb_build_object(
                   'timezone', %(timezone)s::text,
                   'business_hours', 'Monday to Friday ' || lpad(%(business_hours_start)s::text,
                       2, '0') || ':00–' || lpad(%(business_hours_end)s::text, 2, '0') || ':00',
                   'evening', 'Monday to Friday outside business hours',
                   'weekend', 'Saturday and Sunday'),
               'trend', jsonb_build_object(
                   'weeks', z.trend, 'worsening', z.worsening,
                   'sentence', case when z.worsening then 'worse ' || %(trend_weeks)s
                       || ' weeks in a row (share with a problem): ' || z.trend_figures end),
               'value', jsonb_build_object(
                   'amount_base', z.value_base, 'currency', %(base_currency)s::text,
                   'method', 'each of the ' || z.problems || ' leaked items at the expected'
                       || ' value of an opportunity of its channel and intent: won revenue ÷'
                       || ' opportunities closed (average won amount × win rate) from '
                       || (%(as_of)s::date - %(history_days)s + 1) || ' to ' || %(as_of)s
                       || ', in ' || %(base_currency)s || ' at the as-of date''s rates; a'
                       || ' channel and intent with fewer than ' || %(value_min_closed)s
                       || ' closed opportunities takes the company-wide figure',
                   'by_channel_intent', z.value_by_channel_intent),
               'outcomes', case when z.zone = 'close' then (
                   select coalesce(jsonb_object_agg(outcome, n), '{}') from week_outcomes) end,
               'window_start', %(window_start)s,
               'sample', to_jsonb(z.sample)) as evidence
    from zones z
    where z.leaking
),
stale_findings as (
    select revleak.fingerprint(%(check_id)s, 'stale_deal', 'opportunity', o.opportunity_id)
               as fingerprint,
           'stale_deal' as category, 'opportunity' as entity_type,
           o.opportunity_id as entity_id, o.customer_id,
           case when o.amount is null then %(base_currency)s::text else o.currency end
               as currency,
           v.value, v.value * fx.rate as value_base,
           %(as_of)s - (o.last_activity_on + %(stale_days)s) as days_outstanding,
           jsonb_build_object(
               'team', o.owner_team, 'crm_owner', o.owner, 'stage', o.stage,
               'channel', o.channel, 'intent', o.intent, 'amount', o.amount,
               'created_at', o.created_at, 'expected_close_date', o.expected_close_date,
               'last_activity_at', o.last_activity_at,
               'days_without_activity', %(as_of)s - o.last_activity_on,
               'stale_days', %(stale_days)s,
               'value', jsonb_build_object(
                   'basis', e.basis, 'closed', e.closed, 'won', e.won,
                   'win_rate_pct', e.win_rate_pct, 'expected_value_base', e.ev_base,
                   'method', case when o.amount is null
                       then 'no amount: the expected value of an opportunity of its channel'
                            || ' and intent (won revenue ÷ opportunities closed)'
                       else 'its amount × the win rate of its channel and intent ('
                            || e.won || ' won of ' || e.closed || ' closed)' end)) as evidence
    from open_opportunities o
    join expected_values e using (channel, intent)
    cross join lateral (
        select case when o.amount is null then e.ev_base
                    -- no closed deal in the history window: a win rate of 0
                    else coalesce(o.amount * e.won / nullif(e.closed, 0), 0) end as value) v
    left join revleak.fx_rates_on(%(as_of)s, %(base_currency)s) fx
      on fx.currency = case when o.amount is null then %(base_currency)s::text
                            else o.currency end
    where o.stale
)
select * from zone_findings
union all
select s.fingerprint, s.category, s.entity_type, s.entity_id, s.customer_id, s.currency,
       round(coalesce(s.value, 0), 2), 0, round(coalesce(s.value, 0), 2),
       round(s.value_base, 2), case when s.value > 0 then 100 end, s.days_outstanding,
       s.evidence
from stale_findings s;

-- name: metrics
-- The week's figures, kept per as-of date: each zone's rate and lost value, and the
-- pipeline's health over the history window.
with won as (
    select sum(won) as won, sum(closed) as closed,
           sum(won_base) / nullif(sum(won_valued), 0) as average_deal_base,
           sum(won_cycle_days) / nullif(sum(won), 0) as cycle_days
    from history
),
pipeline as (select count(*) filter (where qualified) as qualified from open_opportunities)
select z.zone || '_problem_pct' as metric, z.problem_pct as value,
       jsonb_build_object('problems', z.problems, 'population', z.population,
                          'limit_pct', z.limit_pct, 'rate_pct', z.rate_pct,
                          'leaking', z.leaking, 'over_limit', z.over_limit,
                          'worsening', z.worsening, 'value_base', z.value_base,
                          'cells_past_limit', jsonb_array_length(z.cells_past_limit),
                          'states', (select coalesce(jsonb_object_agg(k, v -> 'count'), '{}')
                                     from jsonb_each(z.states) x(k, v))) as detail
from zones z
union all
select z.zone || '_lost_value_base', z.value_base,
       jsonb_build_object('problems', z.problems, 'currency', %(base_currency)s::text)
from zones z
union all
select 'conversion_' || s.stage || '_to_' || s.next_stage || '_pct',
       round(100.0 * s.converted / nullif(s.reached, 0), 2),
       jsonb_build_object('entered', s.reached, 'converted', s.converted)
from stages s
union all
select 'time_in_' || s.stage || '_days', round(s.days / nullif(s.stays, 0), 2),
       jsonb_build_object('stays', s.stays)
from stages s
union all
select 'win_rate_pct', round(100.0 * w.won / nullif(w.closed, 0), 2),
       jsonb_build_object('won', w.won, 'closed', w.closed) from won w
union all
select 'average_deal_base', round(w.average_deal_base, 2),
       jsonb_build_object('won', w.won, 'currency', %(base_currency)s::text) from won w
union all
select 'sales_cycle_days', round(w.cycle_days, 2), jsonb_build_object('won', w.won) from won w
union all
select 'qualified_pipeline', p.qualified, '{}'::jsonb from pipeline p
union all
select 'pipeline_velocity_base_per_day',  -- qualified × average deal × win rate ÷ cycle length
       round(p.qualified * w.average_deal_base * w.won / nullif(w.closed, 0)
             / nullif(w.cycle_days, 0), 2),
       jsonb_build_object('qualified', p.qualified,
                          'average_deal_base', round(w.average_deal_base, 2),
                          'win_rate_pct', round(100.0 * w.won / nullif(w.closed, 0), 2),
                          'cycle_days', round(w.cycle_days, 2),
                          'currency', %(base_currency)s::text)
from won w cross join pipeline p
union all
select 'stale_deals', count(*),
       jsonb_build_object('value_base', coalesce(sum(gap_amount_base), 0),
                          'stale_days', %(stale_days)s)
from run_findings where category = 'stale_deal'
union all
select 'lead_source_quality', round(coalesce(sum(q.won_base), 0), 2),
       jsonb_build_object('sources', coalesce(jsonb_agg(jsonb_build_object(
           'source', q.source, 'channel', q.channel, 'closed', q.closed, 'won', q.won,
           'win_rate_pct', round(100.0 * q.won / q.closed, 2),
           'won_revenue_base', round(q.won_base, 2))
           order by q.won_base desc, q.source, q.channel), '[]'))
from (select source, channel, sum(closed) as closed, sum(won) as won,
             sum(won_base) as won_base
      from history group by source, channel) q
union all
select 'close_outcomes', coalesce(sum(n), 0), coalesce(jsonb_object_agg(outcome, n), '{}')
from week_outcomes;

-- name: forget_week
-- Between the earlier weeks of a trend: drop one week's tables before measuring the next.
drop table week_signals, week_opportunities, follow_ups, open_opportunities, measured;
