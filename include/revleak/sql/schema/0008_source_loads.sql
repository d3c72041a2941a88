-- When each input table was last loaded (contract §3 clarification: freshness is judged from
-- loads, not from business activity). `revleak load` writes one row per table it loads, in the
-- same transaction as the rows; a check refuses to judge a source loaded before the end of its
-- as-of date (less the source's configured limit).
create table revleak.source_loads (
    table_name       text primary key,
    loaded_at        timestamptz not null,
    load_id          bigint references revleak.loads,
    source_file      text,
    checksum         text,            -- sha256 of the file's bytes
    rows_read        bigint not null default 0,
    rows_loaded      bigint not null default 0,
    rows_quarantined bigint not null default 0
);
