-- The shared revenue model (contract §2): one table per canonical input.
-- Money is numeric, never float; timestamps carry their zone.

create schema if not exists revleak;

create table revleak.customers (
    customer_id text primary key,
    name        text not null,
    segment     text check (segment in ('smb', 'mid', 'enterprise')),
    region      text,
    currency    char(3) not null check (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz not null
);

create table revleak.inbound_signals (
    signal_id   text primary key,
    received_at timestamptz not null,
    channel     text not null check (channel in ('phone', 'web_form', 'chat', 'whatsapp', 'email',
                                                 'marketplace', 'referral', 'walk_in', 'outbound')),
    intent      text not null check (intent in ('high', 'medium', 'low')),
    contact_key text not null,
    source      text,
    answered    boolean
);

create table revleak.opportunities (
    opportunity_id      text primary key,
    customer_id         text references revleak.customers,
    signal_id           text references revleak.inbound_signals,
    created_at          timestamptz not null,
    channel             text not null check (channel in ('phone', 'web_form', 'chat', 'whatsapp', 'email',
                                                         'marketplace', 'referral', 'walk_in', 'outbound')),
    intent              text not null check (intent in ('high', 'medium', 'low')),
    team                text,
    owner               text,
    stage               text not null check (stage in ('new', 'qualified', 'meeting', 'proposal',
                                                       'negotiation', 'closed_won', 'closed_lost')),
    amount              numeric(18, 4),
    currency            char(3) check (currency ~ '^[A-Z]{3}$'),
    expected_close_date date,
    closed_at           timestamptz,
    close_reason        text check (close_reason in ('won', 'lost_to_competitor', 'no_decision',
                                                     'no_budget', 'unresponsive', 'other')),
    contract_start      date,
    contract_end        date,
    billing_frequency   text check (billing_frequency in ('one_time', 'monthly', 'quarterly', 'annual')),
    auto_renew          boolean,
    renewal_of          text references revleak.opportunities,
    source              text,
    constraint closed_won_has_terms check (
        stage <> 'closed_won' or (amount is not null and currency is not null
            and contract_start is not null and contract_end is not null
            and billing_frequency is not null)),
    constraint contract_ends_after_start check (contract_end >= contract_start)
);
create index on revleak.opportunities (renewal_of);
create index on revleak.opportunities (customer_id);

create table revleak.invoices (
    invoice_id     text primary key,
    customer_id    text not null references revleak.customers,
    opportunity_id text references revleak.opportunities,
    issue_date     date not null,
    due_date       date not null,
    currency       char(3) not null check (currency ~ '^[A-Z]{3}$'),
    status         text not null check (status in ('draft', 'open', 'paid', 'void', 'uncollectible')),
    period_start   date,
    period_end     date,
    kind           text not null default 'invoice' check (kind in ('invoice', 'credit_note'))
);
create index on revleak.invoices (opportunity_id);
create index on revleak.invoices (issue_date);

create table revleak.invoice_lines (
    invoice_id   text not null references revleak.invoices,
    line_no      integer not null,
    sku          text not null,
    quantity     numeric(18, 6) not null,
    unit_price   numeric(18, 4) not null,
    discount_pct numeric(7, 4) check (discount_pct between 0 and 100),
    promo_code   text,
    amount       numeric(18, 4) not null,
    primary key (invoice_id, line_no)
);

create table revleak.payments (
    payment_id   text primary key,
    invoice_id   text references revleak.invoices,
    customer_id  text not null references revleak.customers,
    amount       numeric(18, 4) not null,
    currency     char(3) not null check (currency ~ '^[A-Z]{3}$'),
    attempted_at timestamptz not null,
    status       text not null check (status in ('succeeded', 'failed', 'pending', 'refunded', 'disputed')),
    failure_code text,
    method       text check (method in ('card', 'ach', 'wire', 'other'))
);
create index on revleak.payments (invoice_id);

create table revleak.bank_transactions (
    txn_id       text primary key,
    booked_date  date not null,
    amount       numeric(18, 4) not null,
    currency     char(3) not null check (currency ~ '^[A-Z]{3}$'),
    reference    text,
    counterparty text
);
create index on revleak.bank_transactions (reference);

create table revleak.gl_entries (
    entry_id    text primary key,
    posted_date date not null,
    account     text not null check (account in ('revenue', 'deferred_revenue', 'accounts_receivable',
                                                 'cash', 'other')),
    customer_id text references revleak.customers,
    invoice_id  text references revleak.invoices,
    amount      numeric(18, 4) not null,
    currency    char(3) not null check (currency ~ '^[A-Z]{3}$')
);

create table revleak.rate_cards (
    sku            text not null,
    currency       char(3) not null check (currency ~ '^[A-Z]{3}$'),
    list_price     numeric(18, 4) not null,
    effective_from date not null,
    effective_to   date,
    primary key (sku, currency, effective_from),
    constraint rate_period_ordered check (effective_to is null or effective_to >= effective_from)
);

create table revleak.promotions (
    promo_code   text primary key,
    discount_pct numeric(7, 4) not null check (discount_pct between 0 and 100),
    valid_from   date not null,
    valid_to     date not null,
    stackable    boolean not null
);

create table revleak.discount_approvals (
    approval_id      text primary key,
    customer_id      text not null references revleak.customers,
    sku              text,
    max_discount_pct numeric(7, 4) not null check (max_discount_pct between 0 and 100),
    approved_by      text not null,
    valid_from       date not null,
    valid_to         date
);

create table revleak.fx_rates (
    currency     char(3) not null check (currency ~ '^[A-Z]{3}$'),
    rate_date    date not null,
    rate_to_base numeric(24, 10) not null check (rate_to_base > 0),
    primary key (currency, rate_date)
);

create table revleak.opportunity_events (
    event_id       text primary key,
    opportunity_id text not null references revleak.opportunities,
    occurred_at    timestamptz not null,
    event_type     text not null check (event_type in ('assigned', 'reassigned', 'auto_ack',
                                                       'first_response', 'touch', 'next_step_set',
                                                       'stage_changed', 'note')),
    actor          text,
    team           text,
    next_step_due  timestamptz,
    stage_to       text check (stage_to in ('new', 'qualified', 'meeting', 'proposal',
                                            'negotiation', 'closed_won', 'closed_lost')),
    has_note       boolean
);
create index on revleak.opportunity_events (opportunity_id, occurred_at);
