-- Settled contracts and invoices: what a run need not reconcile again.
--
-- A closed-won contract is settled once nothing can change its verdict: its term is over and
-- never renews by itself (not auto_renew, or one_time), it is billed exactly its amount, in its
-- own currency (no fx rate can move it), and, unless it is one_time, it has been renewed. From
-- the date all of that is true (its last period is due, its last invoice issued, its renewal
-- created, its close recorded) every run finds it due = started = billed = amount: no finding,
-- and only its amount in the portfolio's totals. booked_vs_billed_daily.sql reads such a
-- contract from here (date conditions applied per run, as the billing lag is a run's rule) and
-- reconciles only the others: the daily cost follows the active contracts, not the history.
-- Likewise an invoice collected in full (succeeded payments at least what it billed) is no
-- finding of billed_vs_collected_weekly once its last payment is in: it counts with what it
-- billed in the realization rate and is not reconciled again.
--
-- Any write to the books a settlement depends on marks the contracts and invoices it touches
-- unsettled, in the same statement (triggers below, whoever writes); revleak.settle()
-- re-derives those before a check runs, and a run treats anything still marked as active. So a
-- settled row is never stale: at worst a contract or invoice is reconciled in full.

create table revleak.settled_contracts (
    opportunity_id    text primary key,
    currency          char(3) not null,
    amount            numeric(18, 4) not null,
    closed_at         timestamptz,
    last_period_start date not null,   -- due from last_period_start + billing lag
    last_issue_date   date,            -- its last invoice (null: an amount of 0, never billed)
    renewed_at        timestamptz      -- its renewal's creation (null: one_time, none needed)
);

create table revleak.settled_invoices (
    invoice_id        text primary key,
    currency          char(3) not null,
    billed            numeric not null,
    issue_date        date not null,
    due_date          date not null,
    last_attempted_at timestamptz      -- its last payment attempt (null: none, nothing billed)
);

create table revleak.unsettled (  -- contracts and invoices to settle again: their books changed
    kind text not null check (kind in ('contract', 'invoice')),
    id   text not null,
    primary key (kind, id)
);

-- Re-derive the marked contracts (serialized: one settler at a time; the marks are consumed in
-- the same transaction, so a write that lands meanwhile marks its contract again).
create function revleak.settle() returns void
    language plpgsql as $$
begin
    perform pg_advisory_xact_lock(hashtext('revleak.settle'));
    create temp table settling on commit drop as  -- '*' stands for every one of its kind
        with taken as (delete from revleak.unsettled returning kind, id)
        select kind, id from taken
        union
        select 'contract', opportunity_id from revleak.opportunities
        where exists (select from taken where kind = 'contract' and id = '*')
        union
        select 'invoice', invoice_id from revleak.invoices
        where exists (select from taken where kind = 'invoice' and id = '*');
    analyze settling;  -- a few marks or all of them: the plans below depend on how many
    delete from revleak.settled_contracts s using settling x
     where x.kind = 'contract' and s.opportunity_id = x.id;
    delete from revleak.settled_contracts
     where exists (select from settling where kind = 'contract' and id = '*');
    delete from revleak.settled_invoices s using settling x
     where x.kind = 'invoice' and s.invoice_id = x.id;
    delete from revleak.settled_invoices
     where exists (select from settling where kind = 'invoice' and id = '*');
    insert into revleak.settled_contracts
    select o.opportunity_id, o.currency, o.amount, o.closed_at, t.last_period_start,
           b.last_issue_date, r.renewed_at
    from settling x
    join revleak.opportunities o on x.kind = 'contract' and o.opportunity_id = x.id
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
    insert into revleak.settled_invoices
    select i.invoice_id, i.currency, b.billed, i.issue_date, i.due_date, p.last_attempted_at
    from settling x
    join revleak.invoices i on x.kind = 'invoice' and i.invoice_id = x.id
    join (  -- an invoice without lines is no past-due invoice at all: never settled
        select l.invoice_id, sum(l.amount) as billed
        from settling x join revleak.invoice_lines l on x.kind = 'invoice' and l.invoice_id = x.id
        group by l.invoice_id) b using (invoice_id)
    left join (
        select p.invoice_id, sum(p.amount) filter (where p.status = 'succeeded') as collected,
               max(p.attempted_at) as last_attempted_at
        from settling x join revleak.payments p on x.kind = 'invoice' and p.invoice_id = x.id
        group by p.invoice_id) p using (invoice_id)
    where i.kind = 'invoice' and i.status not in ('draft', 'void')
      and coalesce(p.collected, 0) >= b.billed;
    drop table settling;
end $$;

-- The marks. A statement's changed rows arrive as transition tables (one trigger per event:
-- PostgreSQL allows transition tables on single-event triggers only). A statement that changes
-- more than 10,000 rows (a first load, a whole export replaced) marks every contract and
-- invoice at once ('*'): one mark instead of one per entity.
create function revleak.mark_unsettled() returns trigger
    language plpgsql as $$
begin
    if tg_op = 'TRUNCATE' then
        delete from revleak.settled_contracts;
        delete from revleak.settled_invoices;
        return null;
    end if;
    if (select count(*) > 10000 from changed_rows) then
        insert into revleak.unsettled
        select kind, '*' from unnest(case tg_table_name when 'opportunities' then '{contract}'
                                                        when 'payments' then '{invoice}'
                                                        else '{contract,invoice}' end::text[])
                              as kind
        on conflict do nothing;
        return null;
    end if;
    if tg_table_name = 'opportunities' then
        insert into revleak.unsettled
        select distinct 'contract', id from (
            select opportunity_id as id from changed_rows union all
            select renewal_of from changed_rows where renewal_of is not null) c
        on conflict do nothing;
    elsif tg_table_name = 'invoices' then
        insert into revleak.unsettled
        select distinct 'contract', opportunity_id from changed_rows
        where opportunity_id is not null
        union select 'invoice', invoice_id from changed_rows
        on conflict do nothing;
    elsif tg_table_name = 'invoice_lines' then
        insert into revleak.unsettled
        select distinct 'contract', i.opportunity_id from changed_rows c
        join revleak.invoices i using (invoice_id) where i.opportunity_id is not null
        union select 'invoice', invoice_id from changed_rows
        on conflict do nothing;
    else  -- payments
        insert into revleak.unsettled
        select distinct 'invoice', invoice_id from changed_rows where invoice_id is not null
        on conflict do nothing;
    end if;
    return null;
end $$;

do $$
declare
    t text;
begin
    foreach t in array array['opportunities', 'invoices', 'invoice_lines', 'payments'] loop
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

-- Books loaded before this migration: settled on the first run.
insert into revleak.unsettled values ('contract', '*'), ('invoice', '*');
