-- The canonical tables' references are checked by the loader, set-based, once per file: a row
-- whose parent is missing is quarantined with its file, line and reason (loader.py). The
-- foreign keys checked the same again row by row (a trigger call per row: 40% of a first load),
-- so they go; the parent keys stay primary keys and their lookups stay indexed.
do $$
declare
    c record;
begin
    for c in select conrelid::regclass as tab, conname from pg_constraint
             where contype = 'f' and connamespace = 'revleak'::regnamespace
               and conrelid::regclass::text in (
                   'revleak.customers', 'revleak.inbound_signals', 'revleak.opportunities',
                   'revleak.invoices', 'revleak.invoice_lines', 'revleak.payments',
                   'revleak.bank_transactions', 'revleak.gl_entries', 'revleak.rate_cards',
                   'revleak.promotions', 'revleak.discount_approvals', 'revleak.fx_rates',
                   'revleak.opportunity_events') loop
        execute format('alter table %s drop constraint %I', c.tab, c.conname);
    end loop;
end $$;
