-- What `revleak load` needs to skip a file delivered again unchanged (same sha256 as the table's
-- last load): it may be skipped only while neither the table nor a table it references (its
-- rows are checked against them) has changed since the file was staged.
alter table revleak.source_loads
    add column staged_at  timestamptz,  -- when this checksum's rows were last checked and upserted
    add column changed_at timestamptz;  -- when the table's rows last changed (a load or any writer)

-- A write to a canonical table by anything but the loader (which sets revleak.loading and
-- records its own changes) marks the table changed, so its next load stages the file again.
create function revleak.mark_source_changed() returns trigger
    language plpgsql as $$
begin
    if coalesce(current_setting('revleak.loading', true), '') <> 'on' then
        update revleak.source_loads set changed_at = clock_timestamp()
         where table_name = tg_table_name;
    end if;
    return null;
end $$;

do $$
declare
    t text;
begin
    foreach t in array array['customers', 'inbound_signals', 'opportunities', 'invoices',
                             'invoice_lines', 'payments', 'bank_transactions', 'gl_entries',
                             'rate_cards', 'promotions', 'discount_approvals', 'fx_rates',
                             'opportunity_events'] loop
        execute format('create trigger source_changed after insert or update or delete or truncate'
                       ' on revleak.%I for each statement execute function'
                       ' revleak.mark_source_changed()', t);
    end loop;
end $$;

-- The loader's date and timestamp tests, faster with the same meaning as in 0003 (PostgreSQL
-- 16+; older servers keep 0003's): is_date was declared immutable over a stable test, so it was
-- never inlined (a function call per value); is_ts tries the usual shapes before its pattern.
do $$
begin
    if current_setting('server_version_num')::int >= 160000 then
        create or replace function revleak.is_date(v text) returns boolean
            language sql stable parallel safe
            return translate(v, '0123456789', '0000000000') = '0000-00-00'
                and pg_input_is_valid(v, 'date');
        create or replace function revleak.is_ts(v text) returns boolean
            language sql stable parallel safe
            return case when translate(v, '0123456789', '0000000000') in (
                            '0000-00-00T00:00:00+00:00', '0000-00-00T00:00:00-00:00',
                            '0000-00-00T00:00:00Z', '0000-00-00 00:00:00+00:00',
                            '0000-00-00 00:00:00-00:00') then true
                        else v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$'
                   end
                and pg_input_is_valid(v, 'timestamptz');
    end if;
end $$;
