-- Price changes checked when they happen (issue 17, docs/pricing.md).

-- Price signals: one event per subscription drift for a pricing or recovery tool, sent to the
-- connection revleak_price_signals. Keyed by the drift and its prices (contract, SKU,
-- currency, billed price, rate-card price): a rerun, a backfill or the other pricing check
-- adds nothing, a changed price is a new signal. Written in the same transaction as the
-- findings that raised it (sql/signals/events.sql).
create table revleak.price_signals (
    signal_id    bigserial primary key,
    signal_key   text not null unique,
    fingerprint  text not null,   -- the finding that raised it first
    check_id     text not null,
    as_of        date not null,
    payload      jsonb not null,
    status       text not null default 'pending' check (status in ('pending', 'delivered')),
    attempts     integer not null default 0,
    last_error   text,
    created_at   timestamptz not null default now(),
    attempted_at timestamptz,
    delivered_at timestamptz
);
create index price_signals_pending on revleak.price_signals (signal_id) where status = 'pending';

-- Loads that really changed a price table (rows inserted or updated), written in the file's
-- load transaction; `revleak load` then tells Airflow (an Asset event each, revleak.assets).
-- pending: not told yet (Airflow unreachable: the next load tries again); told: the asset
-- event's id; not_told: no Airflow connection was configured.
create table revleak.asset_changes (
    change_id      bigserial primary key,
    table_name     text not null,
    load_id        bigint not null references revleak.loads,
    rows_inserted  integer not null,
    rows_updated   integer not null,
    status         text not null default 'pending'
                   check (status in ('pending', 'told', 'not_told')),
    asset_event_id bigint,
    attempts       integer not null default 0,
    last_error     text,
    created_at     timestamptz not null default now(),
    told_at        timestamptz
);
create index asset_changes_pending on revleak.asset_changes (change_id) where status = 'pending';
