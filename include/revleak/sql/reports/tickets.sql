-- Tickets link to the report that holds their finding.

-- name: link
-- Give the pending ticket events of the run (%(check)s as of %(as_of)s) a report_url: the
-- report %(report_url)s at the finding's row.
update revleak.ticket_outbox e
set payload = e.payload
              || jsonb_build_object('report_url', %(report_url)s || '#f-' || e.fingerprint)
from revleak.findings f
where f.fingerprint = e.fingerprint and f.check_id = %(check)s
  and e.as_of = %(as_of)s and e.status = 'pending';
