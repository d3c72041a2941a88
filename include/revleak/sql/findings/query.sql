-- Findings as the contract's JSON objects (§4), biggest time-weighted loss first. Filters are
-- optional: a null check means every check, status 'all' every status.

-- name: current
-- Each leak's current state.
select f.fingerprint, f.check_id as check, f.category, f.entity_type, f.entity_id,
       f.customer_id, f.expected_amount, f.actual_amount, f.gap_amount, f.currency,
       f.gap_amount_base, f.gap_pct, f.days_outstanding, f.time_weighted_loss, f.as_of,
       f.owner, f.due_date, f.status, f.ticket_key, f.first_seen_as_of, f.resolved_as_of,
       f.evidence
from revleak.findings f
where (%(check)s::text is null or f.check_id = %(check)s)
  and (%(status)s = 'all' or f.status = %(status)s)
order by f.time_weighted_loss desc nulls last, f.fingerprint;

-- name: on_date
-- What one checked date saw, with each leak's owner, deadline and ticket.
select f.fingerprint, f.check_id as check, h.category, h.entity_type, h.entity_id,
       h.customer_id, h.expected_amount, h.actual_amount, h.gap_amount, h.currency,
       h.gap_amount_base, h.gap_pct, h.days_outstanding, h.time_weighted_loss, h.as_of,
       f.owner, f.due_date, h.status, f.ticket_key, f.first_seen_as_of, f.resolved_as_of,
       h.evidence
from revleak.finding_history h
join revleak.findings f using (fingerprint)
where h.as_of = %(as_of)s
  and (%(check)s::text is null or f.check_id = %(check)s)
  and (%(status)s = 'all' or h.status = %(status)s)
order by h.time_weighted_loss desc nulls last, f.fingerprint;
