-- Who changed what (issue 15): manual actions that change state — failed ticket events queued
-- again, a run with overridden rules, a load that replaced stored rows — with who, when, what.
create table revleak.audit_log (
    audit_id  bigserial primary key,
    at        timestamptz not null default now(),
    actor     text not null,   -- the Airflow user who triggered the run, else the OS user
    via       text not null check (via in ('airflow', 'cli')),
    action    text not null,   -- tickets.retry_failed, check.rules_overridden, load.rows_replaced
    subject   text not null,   -- what it changed: a check and date, a table, the ticket outbox
    detail    jsonb not null default '{}'
);
create index audit_log_at on revleak.audit_log (at desc);
