-- The rate of every currency on a date (contract §2: the latest rate_date on or before it),
-- with the base currency at 1. Called once per check run and joined, not once per row.
create function revleak.fx_rates_on(on_date date, base_currency text)
returns table (currency text, rate numeric)
language sql stable parallel safe
as $$
    (select distinct on (f.currency) f.currency::text, f.rate_to_base
     from revleak.fx_rates f
     where f.rate_date <= on_date and f.currency <> base_currency
     order by f.currency, f.rate_date desc)
    union all
    select base_currency, 1
$$;
