-- Recording one check run (check_id, as_of) as findings. Run in order, in one transaction.
--
-- The rule that makes results independent of the order dates are run in: the history (what
-- each checked date saw) is the only truth, and everything else is derived from it.
-- * A leak's *episode* is a run of consecutive checked dates on which it was found; a checked
--   date without it ends the episode (resolved on that date).
-- * Its deadline counts from the episode's first date (first_seen_as_of) + the owner's SLA.
-- * It is escalated when a checked date of the episode lies past that deadline.
-- * Each episode is one ticket generation, known by an anchor date inside it, so a ticket
--   keeps its episode when a backfill adds dates before, between or after.
-- A backfill may therefore extend an episode (an earlier first_seen and deadline), split one
-- (a date without the leak inside it), or find one that already ended: every order of the same
-- dates ends with the same episodes, deadlines, escalations and resolutions.

-- name: mark_checked
update revleak.check_runs set status = 'succeeded', finished_at = now()
where check_id = %(check_id)s and as_of = %(as_of)s;

-- name: neighbours
-- The checked dates around this one: only leaks seen on these can change state.
create temp table neighbours on commit drop as
select (select max(as_of) from revleak.check_runs where check_id = %(check_id)s
          and status = 'succeeded' and as_of < %(as_of)s) as prev_as_of,
       (select min(as_of) from revleak.check_runs where check_id = %(check_id)s
          and status = 'succeeded' and as_of > %(as_of)s) as next_as_of,
       (select max(as_of) from revleak.check_runs where check_id = %(check_id)s
          and status = 'succeeded') as latest_as_of;

-- name: touched
create temp table touched on commit drop as
select h.fingerprint from revleak.finding_history h, neighbours n
where h.check_id = %(check_id)s and h.status = 'open'
  and h.as_of in (n.prev_as_of, %(as_of)s, n.next_as_of)
union
select fingerprint from revleak.check_results where check_id = %(check_id)s and as_of = %(as_of)s;

-- name: history_clear
-- What this date saw replaces what a previous run of it saw.
delete from revleak.finding_history where check_id = %(check_id)s and as_of = %(as_of)s;

-- name: history
insert into revleak.finding_history (fingerprint, as_of, check_id, status, category,
    entity_type, entity_id, customer_id, expected_amount, actual_amount, gap_amount, currency,
    gap_amount_base, gap_pct, days_outstanding, time_weighted_loss, evidence)
select fingerprint, as_of, check_id, 'open', category, entity_type, entity_id, customer_id,
       expected_amount, actual_amount, gap_amount, currency, gap_amount_base, gap_pct,
       days_outstanding, time_weighted_loss, evidence
from revleak.check_results where check_id = %(check_id)s and as_of = %(as_of)s;

-- name: resolved_clear
-- A leak open on the checked date before D and gone on D is resolved on D (also recomputed
-- for the next checked date, whose previous date may now be this one).
delete from revleak.finding_history h using neighbours n
where h.check_id = %(check_id)s and h.status = 'resolved'
  and h.as_of in (%(as_of)s, n.next_as_of);

-- name: resolved_rows
insert into revleak.finding_history (fingerprint, as_of, check_id, status, category,
    entity_type, entity_id, customer_id, expected_amount, actual_amount, gap_amount, currency,
    gap_amount_base, gap_pct, days_outstanding, time_weighted_loss, evidence)
select p.fingerprint, x.as_of, p.check_id, 'resolved', p.category, p.entity_type, p.entity_id,
       p.customer_id, p.expected_amount, p.actual_amount, p.gap_amount, p.currency,
       p.gap_amount_base, p.gap_pct, p.days_outstanding, p.time_weighted_loss, p.evidence
from (select %(as_of)s::date as as_of, prev_as_of as prev from neighbours
      union all
      select next_as_of, %(as_of)s from neighbours where next_as_of is not null) x
join revleak.finding_history p
  on p.check_id = %(check_id)s and p.as_of = x.prev and p.status = 'open'
where not exists (select from revleak.finding_history h
                  where h.fingerprint = p.fingerprint and h.as_of = x.as_of);

-- name: episodes
-- Gaps and islands: consecutive checked dates on which a touched leak was found.
create temp table episodes on commit drop as
with checked as (
    select as_of, row_number() over (order by as_of) as k
    from revleak.check_runs where check_id = %(check_id)s and status = 'succeeded'
),
seen as (
    select h.fingerprint, h.as_of, c.k,
           c.k - row_number() over (partition by h.fingerprint order by h.as_of) as island
    from revleak.finding_history h
    join touched t using (fingerprint)
    join checked c using (as_of)
    where h.check_id = %(check_id)s and h.status = 'open'
),
islands as (
    select fingerprint, min(as_of) as first_seen_as_of, max(as_of) as last_seen_as_of,
           max(k) as last_k, array_agg(as_of order by as_of) as dates
    from seen group by fingerprint, island
)
select i.fingerprint, i.first_seen_as_of, i.last_seen_as_of, i.dates,
       c.as_of as resolved_as_of
from islands i left join checked c on c.k = i.last_k + 1;

-- name: routed
-- Each episode's owner, deadline and escalation, routed on its latest figures.
create temp table routed on commit drop as
select e.*, h.category, h.entity_type, h.entity_id, h.customer_id, h.expected_amount,
       h.actual_amount, h.gap_amount, h.currency, h.gap_amount_base, h.gap_pct,
       h.days_outstanding, h.time_weighted_loss, h.evidence,
       r.owner, r.escalation, r.routed,
       revleak.add_business_days(e.first_seen_as_of, r.sla) as due_date
from episodes e
join revleak.finding_history h
  on h.fingerprint = e.fingerprint and h.as_of = e.last_seen_as_of
left join revleak.customers c on c.customer_id = h.customer_id
cross join lateral (
    select t.owner, t.escalation, t.sla, t.routed from routes t
    where (t.checks is null or %(check_id)s = any(t.checks))
      and (t.categories is null or h.category = any(t.categories))
      and (t.segments is null or c.segment = any(t.segments))
      and (t.regions is null or c.region = any(t.regions))
      and (t.teams is null or h.evidence ->> 'team' = any(t.teams))
      and (t.min_gap is null or coalesce(h.gap_amount_base, h.gap_amount) >= t.min_gap)
      and (t.max_gap is null or coalesce(h.gap_amount_base, h.gap_amount) < t.max_gap)
    order by t.rule_no limit 1) r;

-- name: generations_kept
-- Episodes keep the generation whose anchor lies inside them; a new episode gets the next one.
-- An anchor that lies in no episode any more (a rerun of its date no longer finds the leak)
-- ends its generation on that date.
update revleak.finding_generations g
set first_seen_as_of = r.first_seen_as_of, last_seen_as_of = r.last_seen_as_of,
    resolved_as_of = r.resolved_as_of, due_date = r.due_date,
    escalated_as_of = (select min(d) from unnest(r.dates) d where d > r.due_date),
    owner = r.owner, escalation_owner = r.escalation, routed = r.routed
from routed r
where g.fingerprint = r.fingerprint
  and g.anchor_as_of between r.first_seen_as_of and r.last_seen_as_of;

-- name: generations_ended
update revleak.finding_generations g
set resolved_as_of = coalesce(g.resolved_as_of, %(as_of)s)
where g.fingerprint in (select fingerprint from touched)
  and not exists (select from routed r where r.fingerprint = g.fingerprint
                  and g.anchor_as_of between r.first_seen_as_of and r.last_seen_as_of);

-- name: generations_new
insert into revleak.finding_generations (fingerprint, generation, check_id, anchor_as_of,
    first_seen_as_of, last_seen_as_of, resolved_as_of, due_date, escalated_as_of, owner,
    escalation_owner, routed)
select r.fingerprint,
       coalesce((select max(generation) from revleak.finding_generations g
                 where g.fingerprint = r.fingerprint), 0)
           + row_number() over (partition by r.fingerprint order by r.first_seen_as_of),
       %(check_id)s, r.last_seen_as_of, r.first_seen_as_of, r.last_seen_as_of, r.resolved_as_of,
       r.due_date, (select min(d) from unnest(r.dates) d where d > r.due_date), r.owner,
       r.escalation, r.routed
from routed r
where not exists (select from revleak.finding_generations g
                  where g.fingerprint = r.fingerprint
                    and g.anchor_as_of between r.first_seen_as_of and r.last_seen_as_of);

-- name: current
-- The current state of each touched leak: its latest episode.
insert into revleak.findings as f (fingerprint, check_id, as_of, first_seen_as_of,
    resolved_as_of, status, owner, escalation_owner, routed, due_date, escalated_as_of,
    ticket_generation, ticket_key, category, entity_type, entity_id, customer_id, expected_amount,
    actual_amount, gap_amount, currency, gap_amount_base, gap_pct, days_outstanding,
    time_weighted_loss, evidence)
select distinct on (r.fingerprint)
       r.fingerprint, %(check_id)s, coalesce(r.resolved_as_of, r.last_seen_as_of),
       r.first_seen_as_of, r.resolved_as_of,
       case when r.resolved_as_of is null then 'open' else 'resolved' end,
       r.owner, r.escalation, r.routed, r.due_date, g.escalated_as_of, g.generation,
       (select t.ticket_key from revleak.tickets t
        where t.fingerprint = r.fingerprint and t.generation = g.generation),
       r.category, r.entity_type, r.entity_id, r.customer_id, r.expected_amount,
       r.actual_amount, r.gap_amount, r.currency, r.gap_amount_base, r.gap_pct,
       r.days_outstanding, r.time_weighted_loss, r.evidence
from routed r
join revleak.finding_generations g
  on g.fingerprint = r.fingerprint
 and g.anchor_as_of between r.first_seen_as_of and r.last_seen_as_of
order by r.fingerprint, r.last_seen_as_of desc
on conflict (fingerprint) do update set
    as_of = excluded.as_of, first_seen_as_of = excluded.first_seen_as_of,
    resolved_as_of = excluded.resolved_as_of, status = excluded.status,
    owner = excluded.owner, escalation_owner = excluded.escalation_owner,
    routed = excluded.routed, due_date = excluded.due_date,
    escalated_as_of = excluded.escalated_as_of,
    ticket_generation = excluded.ticket_generation,
    notified_gap = case when f.ticket_generation = excluded.ticket_generation
                        then f.notified_gap end,
    ticket_key = excluded.ticket_key,
    category = excluded.category, entity_type = excluded.entity_type,
    entity_id = excluded.entity_id, customer_id = excluded.customer_id,
    expected_amount = excluded.expected_amount, actual_amount = excluded.actual_amount,
    gap_amount = excluded.gap_amount, currency = excluded.currency,
    gap_amount_base = excluded.gap_amount_base, gap_pct = excluded.gap_pct,
    days_outstanding = excluded.days_outstanding,
    time_weighted_loss = excluded.time_weighted_loss, evidence = excluded.evidence,
    updated_at = now();

-- name: current_gone
-- a leak no episode is left of (its only dates were rerun without it) is resolved
update revleak.findings f
set status = 'resolved', resolved_as_of = coalesce(f.resolved_as_of, %(as_of)s),
    as_of = coalesce(f.resolved_as_of, %(as_of)s), updated_at = now()
where f.fingerprint in (select fingerprint from touched)
  and not exists (select from episodes e where e.fingerprint = f.fingerprint);
