-- What a check's reconcile step found for one as-of date, before it is recorded as findings
-- (lets reconcile and record run as separate, retryable tasks).
create table revleak.check_results (
    check_id           text not null,
    as_of              date not null,
    fingerprint        text not null,
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
    evidence           jsonb not null default '{}',
    primary key (check_id, as_of, fingerprint)
);
