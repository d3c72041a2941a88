-- Tickets: who owns each finding, the ticket generations it went through, and the outbox.

alter table revleak.findings
    add column routed             boolean not null default true,
    add column escalation_owner   jsonb not null default '{}',
    add column ticket_generation  integer not null default 1,
    add column notified_gap       numeric(18, 4),
    add column escalated_as_of    date;

-- One ticket per fingerprint and generation (a leak that comes back opens a new one).
create table revleak.tickets (
    fingerprint         text not null references revleak.findings,
    generation          integer not null,
    ticket_key          text not null,
    provider            text not null,
    previous_ticket_key text,
    opened_at           timestamptz not null default now(),
    resolved_at         timestamptz,
    escalated_at        timestamptz,
    primary key (fingerprint, generation)
);

alter table revleak.ticket_outbox add column generation integer not null default 1;
create index on revleak.ticket_outbox (fingerprint, generation, action);

-- `days` working days (Monday–Friday) after `start`.
create function revleak.add_business_days(start date, days integer) returns date
language sql immutable parallel safe
return case when days <= 0 then start else (
    select d::date from generate_series(start + 1, start + days * 2 + 7, interval '1 day') d
    where extract(isodow from d) < 6 order by d offset days - 1 limit 1) end;
