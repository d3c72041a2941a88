-- revleak's own tables: what a load rejected, what each check run saw,
-- the findings (current state and per-as-of history), metrics, and the ticket outbox.

create table revleak.loads (
    load_id     bigserial primary key,
    source      text not null,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    summary     jsonb not null default '{}'
);

-- A bad row never stops a load and never vanishes: it lands here with file, line and reason.
create table revleak.quarantine (
    source_file    text not null,
    line_no        bigint not null,
    table_name     text not null,
    reason         text not null,
    raw            jsonb not null,
    load_id        bigint not null references revleak.loads,
    quarantined_at timestamptz not null default now(),
    primary key (source_file, line_no)
);
create index on revleak.quarantine (load_id);

create table revleak.check_runs (
    check_id     text not null,
    as_of        date not null,
    logical_date timestamptz,
    run_id       text,
    status       text not null check (status in ('running', 'succeeded', 'failed', 'data_missing')),
    params       jsonb not null default '{}',
    rule_version text not null,
    summary      jsonb not null default '{}',
    attempts     integer not null default 1,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    primary key (check_id, as_of)
);

-- Current state of every leak, keyed by a fingerprint that is stable across dates.
create table revleak.findings (
    fingerprint        text primary key,
    check_id           text not null,
    category           text not null,
    entity_type        text not null,
    entity_id          text not null,
    customer_id        text,
    as_of              date not null,
    first_seen_as_of   date not null,
    expected_amount    numeric(18, 4),
    actual_amount      numeric(18, 4),
    gap_amount         numeric(18, 4),
    currency           char(3),
    gap_amount_base    numeric(18, 4),
    gap_pct            numeric(12, 4),
    days_outstanding   integer,
    time_weighted_loss numeric(22, 4),
    owner              jsonb not null default '{}',
    due_date           date,
    status             text not null check (status in ('open', 'resolved')),
    resolved_as_of     date,
    ticket_key         text,
    evidence           jsonb not null default '{}',
    updated_at         timestamptz not null default now()
);
create index on revleak.findings (check_id, status);

-- What each as-of date saw: one row per fingerprint and date (open, or resolved on that date).
create table revleak.finding_history (
    fingerprint        text not null,
    as_of              date not null,
    check_id           text not null,
    category           text not null,
    entity_type        text not null,
    entity_id          text not null,
    customer_id        text,
    expected_amount    numeric(18, 4),
    actual_amount      numeric(18, 4),
    gap_amount         numeric(18, 4),
    currency           char(3),
    gap_amount_base    numeric(18, 4),
    gap_pct            numeric(12, 4),
    days_outstanding   integer,
    time_weighted_loss numeric(22, 4),
    status             text not null check (status in ('open', 'resolved')),
    evidence           jsonb not null default '{}',
    primary key (fingerprint, as_of)
);
create index on revleak.finding_history (check_id, as_of);

-- Run-level figures (realization rate, zone rates), one value per check, date and metric.
create table revleak.metrics (
    check_id text not null,
    as_of    date not null,
    metric   text not null,
    value    numeric(24, 6),
    detail   jsonb not null default '{}',
    primary key (check_id, as_of, metric)
);

-- Ticket events written in the same transaction as the findings that cause them.
create table revleak.ticket_outbox (
    event_id        bigserial primary key,
    fingerprint     text not null references revleak.findings,
    action          text not null check (action in ('open', 'update', 'resolve', 'escalate')),
    as_of           date not null,
    idempotency_key text not null unique,
    payload         jsonb not null,
    status          text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    last_error      text,
    next_attempt_at timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    delivered_at    timestamptz,
    ticket_key      text
);
create index on revleak.ticket_outbox (status, next_attempt_at);
