-- Each episode of a leak (consecutive checked dates on which it was found) is one ticket
-- generation, known by an anchor date inside it (see sql/findings/record.sql).
create table revleak.finding_generations (
    fingerprint      text not null references revleak.findings deferrable initially deferred,
    generation       integer not null,
    check_id         text not null,
    anchor_as_of     date not null,
    first_seen_as_of date not null,
    last_seen_as_of  date not null,
    resolved_as_of   date,
    due_date         date,
    escalated_as_of  date,
    owner            jsonb not null default '{}',
    escalation_owner jsonb not null default '{}',
    routed           boolean not null default true,
    primary key (fingerprint, generation)
);
create index on revleak.finding_generations (check_id);

-- findings recorded before episodes existed: their current generation, anchored at its date
insert into revleak.finding_generations (fingerprint, generation, check_id, anchor_as_of,
    first_seen_as_of, last_seen_as_of, resolved_as_of, due_date, escalated_as_of, owner,
    escalation_owner, routed)
select fingerprint, ticket_generation, check_id, first_seen_as_of, first_seen_as_of,
       coalesce(resolved_as_of, as_of), resolved_as_of, due_date, escalated_as_of, owner,
       escalation_owner, routed
from revleak.findings;
