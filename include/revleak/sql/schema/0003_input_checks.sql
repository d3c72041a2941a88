-- Type tests the loader uses to quarantine a bad value instead of failing the load.
-- PostgreSQL 16+ tests with pg_input_is_valid; older servers fall back to a guarded cast.

do $$
begin
    if current_setting('server_version_num')::int >= 160000 then
        create function revleak.is_date(v text) returns boolean
            language sql immutable parallel safe
            return v ~ '^\d{4}-\d{2}-\d{2}$' and pg_input_is_valid(v, 'date');
        create function revleak.is_ts(v text) returns boolean
            language sql stable parallel safe
            return v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$'
                and pg_input_is_valid(v, 'timestamptz');
    else
        create function revleak.is_date(v text) returns boolean
            language plpgsql immutable parallel safe as $f$
            begin
                if v !~ '^\d{4}-\d{2}-\d{2}$' then return false; end if;
                perform v::date;
                return true;
            exception when others then return false;
            end $f$;
        create function revleak.is_ts(v text) returns boolean
            language plpgsql stable parallel safe as $f$
            begin
                if v !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$' then
                    return false;
                end if;
                perform v::timestamptz;
                return true;
            exception when others then return false;
            end $f$;
    end if;
end $$;
