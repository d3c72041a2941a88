-- Crash-safe ticket delivery, rate limits and pacing shared by every relay worker.

-- An attempt is recorded (committed) before its first request leaves. If the relay dies
-- mid-delivery the record stays, and the next attempt knows the ticket system may already
-- have the ticket or comment: it looks for the event's marker before writing again.
alter table revleak.ticket_outbox
    add column attempt_started_at timestamptz, -- an attempt is under way (cleared with its outcome)
    add column in_doubt_since     timestamptz, -- an earlier attempt may have written: look first
    add column notice             text;        -- delivered, with something to fix (e.g. an owner
                                               -- the ticket system cannot assign)

-- One row per ticket system (provider and URL, never credentials).
create table revleak.ticket_destinations (
    destination   text primary key,
    paused_until  timestamptz,                -- rate-limited: no worker sends before this
    pause_reason  text,
    pause_streak  integer not null default 0, -- rate limits in a row that named no wait
    next_write_at timestamptz                 -- pacing: the next free write slot
);

-- The relay's claim reads pending events in order: keep that cheap however many were delivered.
create index ticket_outbox_pending on revleak.ticket_outbox (event_id) where status = 'pending';
