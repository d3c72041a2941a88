-- Ticket events the recorded findings call for, written in the same transaction as the
-- findings (after sql/findings/record.sql, whose temp tables `touched` and `neighbours` it
-- reads). State-based per episode (ticket generation), so a rerun, a backfill, a dry run or
-- another order of the same dates never duplicates one:
-- open     an episode with no open event yet (also one a backfill found already ended)
-- escalate a checked date of the episode lies past its deadline (once)
-- update   news: a run of the latest date checked finds the current episode's gap moved by
--          more than the configured share since the ticket last heard
-- resolve  the episode ended (a later checked date no longer finds the leak)
-- Events of one episode are written in that order; the relay delivers them in order.
-- An event not yet attempted that the state no longer calls for (a backfill split an episode,
-- so it was not overdue after all) is withdrawn; one that may have reached the ticket system
-- (attempted, under way or in doubt) never is.

-- name: withdraw
delete from revleak.ticket_outbox o
using revleak.finding_generations g, touched t
where o.fingerprint = t.fingerprint and g.fingerprint = o.fingerprint
  and g.generation = o.generation and o.status = 'pending' and o.attempts = 0
  and o.attempt_started_at is null and o.in_doubt_since is null
  and ((o.action = 'escalate' and g.escalated_as_of is null)
       or (o.action = 'resolve' and g.resolved_as_of is null));

-- name: events
with episodes as (
    select g.*, f.check_id as check, f.ticket_generation as current_generation,
           f.gap_amount as current_gap, f.notified_gap, h.category, h.entity_type, h.entity_id,
           h.customer_id, h.expected_amount, h.actual_amount, h.gap_amount, h.currency,
           h.gap_amount_base, h.gap_pct, h.days_outstanding, h.time_weighted_loss, h.evidence
    from revleak.finding_generations g
    join touched t using (fingerprint)
    join revleak.findings f using (fingerprint)
    join revleak.finding_history h
      on h.fingerprint = g.fingerprint and h.as_of = g.last_seen_as_of
),
sent as (
    select o.fingerprint, o.generation, o.action
    from revleak.ticket_outbox o join touched t using (fingerprint)
),
due as (
    select e.*, 'open' as action, 1 as step, e.last_seen_as_of as event_as_of,
           null::date as stamp
    from episodes e
    where (e.fingerprint, e.generation, 'open') not in (select * from sent)
    union all
    select e.*, 'escalate', 2, e.escalated_as_of, null
    from episodes e
    where e.escalated_as_of is not null
      and (e.fingerprint, e.generation, 'escalate') not in (select * from sent)
    union all
    select e.*, 'update', 3, %(as_of)s, %(as_of)s
    from episodes e, neighbours n
    where e.generation = e.current_generation and e.resolved_as_of is null
      and %(as_of)s = n.latest_as_of
      and (e.fingerprint, e.generation, 'open') in (select * from sent)
      and abs(e.current_gap - e.notified_gap) > %(update_share)s * abs(e.notified_gap)
    union all
    select e.*, 'resolve', 4, e.resolved_as_of, null
    from episodes e
    where e.resolved_as_of is not null
      and (e.fingerprint, e.generation, 'resolve') not in (select * from sent)
),
events as (
    insert into revleak.ticket_outbox (fingerprint, generation, action, as_of, idempotency_key,
                                       payload)
    select d.fingerprint, d.generation, d.action, d.event_as_of,
           encode(sha256(convert_to(concat_ws(':', d.fingerprint, d.generation, d.action,
                                              d.stamp), 'UTF8')), 'hex'),
           jsonb_build_object(
               'action', d.action, 'fingerprint', d.fingerprint, 'check', d.check,
               'category', d.category, 'entity_type', d.entity_type, 'entity_id', d.entity_id,
               'customer_id', d.customer_id, 'as_of', d.event_as_of, 'owner', d.owner,
               'due_date', d.due_date, 'gap_amount', d.gap_amount,
               'gap_amount_base', d.gap_amount_base, 'currency', d.currency,
               'gap_pct', d.gap_pct, 'days_outstanding', d.days_outstanding,
               'time_weighted_loss', d.time_weighted_loss,
               'expected_amount', d.expected_amount, 'actual_amount', d.actual_amount,
               'first_seen_as_of', d.first_seen_as_of, 'resolved_as_of', d.resolved_as_of,
               'escalation_owner', d.escalation_owner, 'routed', d.routed,
               'generation', d.generation,
               'previous_ticket_key', (select t.ticket_key from revleak.tickets t
                                       where t.fingerprint = d.fingerprint
                                         and t.generation = d.generation - 1),
               'priority', case when abs(coalesce(d.gap_amount_base, d.gap_amount)) >= 100000
                                then 'highest'
                                when abs(coalesce(d.gap_amount_base, d.gap_amount)) >= 10000
                                then 'high'
                                when abs(coalesce(d.gap_amount_base, d.gap_amount)) >= 1000
                                then 'medium' else 'low' end,
               'title', case when d.entity_type = 'zone'
                   then format('[revleak] %%s: %%s %%s — %%s%%%% (limit %%s%%%%), lost %%s %%s',
                               d.category, d.entity_type, d.entity_id, trim_scale(d.gap_pct),
                               d.evidence ->> 'limit_pct', round(coalesce(d.gap_amount, 0), 2),
                               d.currency)
                   else format('[revleak] %%s: %%s %%s — gap %%s %%s', d.category,
                               d.entity_type, d.entity_id, round(d.gap_amount, 2),
                               d.currency) end,
               'evidence', d.evidence)
    from due d
    order by d.fingerprint, d.generation, d.step
    on conflict (idempotency_key) do nothing
    returning fingerprint, generation, action
)
update revleak.findings f
set notified_gap = f.gap_amount
from events e
where f.fingerprint = e.fingerprint and f.ticket_generation = e.generation
  and e.action in ('open', 'update')
