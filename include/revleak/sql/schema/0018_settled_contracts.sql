-- Settled contracts: what a booked-vs-billed run need not reconcile again.
--
-- A closed-won contract is settled once nothing can change its verdict: its term is over and
-- never renews by itself (not auto_renew, or one_time), it is billed exactly its amount, in its
-- own currency (no fx rate can move it), and, unless it is one_time, it has been renewed. From
-- the date all of that is true (its last period is due, its last invoice issued, its renewal
-- created, its close recorded) every run finds it due = started = billed = amount: no finding,
-- and only its amount in the portfolio's totals. booked_vs_billed_daily.sql reads such a
-- contract from here (date conditions applied per run, as the billing lag is a run's rule) and
-- reconciles only the others: the daily cost follows the active contracts, not the history.
--
-- Any write to the books a settlement depends on marks the contracts it touches unsettled, in
-- the same statement (triggers below, whoever writes); revleak.settle() re-derives those before
-- a check runs, and a run treats a contract still marked as active. So a settled row is never
-- stale: at worst a contract is reconciled in full.

create table revleak.settled_contracts (
    opportunity_id    text primary key,
    currency          char(3) not null,
    amount            numeric(18, 4) not null,
    closed_at         timestamptz,
    last_period_start date not null,   -- due from last_period_start + billing lag
    last_issue_date   date,            -- its last invoice (null: an amount of 0, never billed)
    renewed_at        timestamptz      -- its renewal's creation (null: one_time, none needed)
);

create table revleak.unsettled (  -- contracts to settle again: their books changed
    opportunity_id text primary key
);

-- Re-derive the marked contracts (serialized: one settler at a time; the marks are consumed in
-- the same transaction, so a write that lands meanwhile marks its contract again).
create function revleak.settle() returns void
    language plpgsql as $$
begin
    perform pg_advisory_xact_lock(hashtext('revleak.settle'));
    create temp table settling on commit drop as
        with taken as (delete from revleak.unsettled returning opportunity_id)
        select distinct opportunity_id from taken;
    delete from revleak.settled_contracts s using settling x
     where s.opportunity_id = x.opportunity_id;
    insert into revleak.settled_contracts
    select o.opportunity_id, o.currency, o.amount, o.closed_at, t.last_period_start,
           b.last_issue_date, r.renewed_at
    from settling x
    join revleak.opportunities o using (opportunity_id)
    cross join lateral (
        select max(p.period_start) as last_period_start
        from revleak.billing_periods(o.contract_start, o.contract_end, o.billing_frequency,
                                     false, o.contract_end) p) t
    cross join lateral (
        select max(i.issue_date) as last_issue_date, bool_or(i.currency <> o.currency)
                   as converted,
               coalesce(sum(case when i.kind = 'credit_note' then -abs(l.amount)
                                 else l.amount end), 0) as billed
        from revleak.invoices i join revleak.invoice_lines l using (invoice_id)
        where i.opportunity_id = o.opportunity_id and i.status not in ('draft', 'void')) b
    left join lateral (
        select min(n.created_at) as renewed_at from revleak.opportunities n
        where n.renewal_of = o.opportunity_id) r on true
    where o.stage = 'closed_won'
      and (o.billing_frequency = 'one_time' or not coalesce(o.auto_renew, false))
      and (o.billing_frequency = 'one_time' or r.renewed_at is not null)
      and not coalesce(b.converted, false)
      and b.billed = o.amount;
    drop table settling;
end $$;

-- The marks. A statement's changed rows arrive as transition tables (one trigger per event:
-- PostgreSQL allows transition tables on single-event triggers only).
create function revleak.mark_unsettled() returns trigger
    language plpgsql as $$
begin
    if tg_op = 'TRUNCATE' then
        delete from revleak.settled_contracts;
        return null;
    end if;
    if tg_table_name = 'opportunities' then
        insert into revleak.unsettled
        select distinct id from (
            select opportunity_id as id from changed_rows union all
            select renewal_of from changed_rows where renewal_of is not null) c
        on conflict do nothing;
    elsif tg_table_name = 'invoices' then
        insert into revleak.unsettled
        select distinct opportunity_id from changed_rows where opportunity_id is not null
        on conflict do nothing;
    else  -- invoice_lines
        insert into revleak.unsettled
        select distinct i.opportunity_id from changed_rows c
        join revleak.invoices i using (invoice_id) where i.opportunity_id is not null
        on conflict do nothing;
    end if;
    return null;
end $$;

do $$
declare
    t text;
begin
    foreach t in array array['opportunities', 'invoices', 'invoice_lines'] loop
        execute format('create trigger unsettle_inserted after insert on revleak.%I'
                       ' referencing new table as changed_rows for each statement'
                       ' execute function revleak.mark_unsettled()', t);
        execute format('create trigger unsettle_updated_new after update on revleak.%I'
                       ' referencing new table as changed_rows for each statement'
                       ' execute function revleak.mark_unsettled()', t);
        execute format('create trigger unsettle_updated_old after update on revleak.%I'
                       ' referencing old table as changed_rows for each statement'
                       ' execute function revleak.mark_unsettled()', t);
        execute format('create trigger unsettle_deleted after delete on revleak.%I'
                       ' referencing old table as changed_rows for each statement'
                       ' execute function revleak.mark_unsettled()', t);
        execute format('create trigger unsettle_truncated after truncate on revleak.%I'
                       ' for each statement execute function revleak.mark_unsettled()', t);
    end loop;
end $$;

-- Books loaded before this migration: every contract is settled on the first run.
insert into revleak.unsettled select opportunity_id from revleak.opportunities
where stage = 'closed_won';
