-- The rate of one currency on one day (contract §2: the latest rate_date on or before it), the
-- base currency at 1; NULL when no rate is known. For the few cross-currency rows a check
-- converts one by one; whole runs join revleak.fx_rates_on once instead.
create function revleak.fx_rate(currency text, on_date date, base_currency text)
returns numeric
language sql stable parallel safe
return case when currency = base_currency then 1 else (
    select f.rate_to_base from revleak.fx_rates f
    where f.currency = fx_rate.currency and f.rate_date <= on_date
    order by f.rate_date desc limit 1) end;
