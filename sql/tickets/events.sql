-- Ticket events a check's findings call for, written in the same transaction as the findings.
-- State-based, so a rerun, a backfill or a dry run never duplicates one:
-- open     an open finding whose generation has no open event yet
-- update   its gap moved by more than the configured share since the last event
-- escalate its deadline passed while open (once per generation)
-- resolve  the finding resolved after its ticket was opened

-- name: events
with opened as (
    select fingerprint, generation from revleak.ticket_outbox where action = 'open'
),
due as (
    select f.*, 'open' as action, null::date as stamp from revleak.findings f
    where f.check_id = %(check_id)s and f.status = 'open'
      and (f.fingerprint, f.ticket_generation) not in (select * from opened)
    union all
    select f.*, 'update', %(as_of)s from revleak.findings f
    where f.check_id = %(check_id)s and f.status = 'open'
      and (f.fingerprint, f.ticket_generation) in (select * from opened)
      and abs(f.gap_amount - f.notified_gap) > %(update_share)s * abs(f.notified_gap)
    union all
    select f.*, 'escalate', null from revleak.findings f
    where f.check_id = %(check_id)s and f.status = 'open' and f.due_date < %(as_of)s
      and f.escalated_as_of is null
      and (f.fingerprint, f.ticket_generation) in (select * from opened)
    union all
    select f.*, 'resolve', null from revleak.findings f
    where f.check_id = %(check_id)s and f.status = 'resolved'
      and (f.fingerprint, f.ticket_generation) in (select * from opened)
),
events as (
    insert into revleak.ticket_outbox (fingerprint, generation, action, as_of, idempotency_key,
                                       payload)
    select d.fingerprint, d.ticket_generation, d.action, %(as_of)s,
           encode(sha256(convert_to(concat_ws(':', d.fingerprint, d.ticket_generation, d.action,
                                              d.stamp), 'UTF8')), 'hex'),
           jsonb_build_object(
               'action', d.action, 'fingerprint', d.fingerprint, 'check', d.check_id,
               'category', d.category, 'entity_type', d.entity_type, 'entity_id', d.entity_id,
               'customer_id', d.customer_id, 'as_of', %(as_of)s, 'owner', d.owner,
               'due_date', d.due_date, 'gap_amount', d.gap_amount,
               'gap_amount_base', d.gap_amount_base, 'currency', d.currency,
               'gap_pct', d.gap_pct, 'days_outstanding', d.days_outstanding,
               'time_weighted_loss', d.time_weighted_loss,
               'expected_amount', d.expected_amount, 'actual_amount', d.actual_amount,
               'first_seen_as_of', d.first_seen_as_of, 'resolved_as_of', d.resolved_as_of,
               'escalation_owner', d.escalation_owner, 'routed', d.routed,
               'generation', d.ticket_generation,
               'previous_ticket_key', (select t.ticket_key from revleak.tickets t
                                       where t.fingerprint = d.fingerprint
                                         and t.generation = d.ticket_generation - 1),
               'priority', case when abs(coalesce(d.gap_amount_base, d.gap_amount)) >= 100000
                                then 'highest'
                                when abs(coalesce(d.gap_amount_base, d.gap_amount)) >= 10000
                                then 'high'
                                when abs(coalesce(d.gap_amount_base, d.gap_amount)) >= 1000
                                then 'medium' else 'low' end,
               'title', case when d.gap_amount is null
                   then format('[revleak] %%s: %%s %%s — %%s%%%% (limit %%s%%%%)', d.category,
                               d.entity_type, d.entity_id, d.gap_pct,
                               d.evidence ->> 'limit_pct')
                   else format('[revleak] %%s: %%s %%s — gap %%s %%s', d.category,
                               d.entity_type, d.entity_id, round(d.gap_amount, 2),
                               d.currency) end,
               'evidence', d.evidence)
    from due d
    on conflict (idempotency_key) do nothing
    returning fingerprint, action
)
update revleak.findings f
set notified_gap = case when e.action in ('open', 'update') then f.gap_amount
                        else f.notified_gap end,
    escalated_as_of = case when e.action = 'escalate' then %(as_of)s else f.escalated_as_of end
from events e
where f.fingerprint = e.fingerprint
