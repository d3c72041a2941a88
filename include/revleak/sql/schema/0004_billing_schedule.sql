-- The billing periods a closed-won contract expects (contract §3):
-- periods start at contract_start and step by billing_frequency (computed from the start,
-- so Jan 31 + 1 month = Feb 28 and + 2 months = Mar 31) while the start is on or before
-- contract_end; one_time is one period. Auto-renewing contracts repeat the term (same
-- length, same schedule) for every term that starts on or before `through`.
create function revleak.billing_periods(
    contract_start date, contract_end date, billing_frequency text, auto_renew boolean,
    through date)
returns table (term integer, period_no integer, period_start date, periods_per_term integer)
language sql immutable parallel safe
as $$
    with terms as (
        select step,
               -- a whole-month term renews by months, any other term by its length in days
               case when contract_start + make_interval(months => span) = contract_end + 1
                    then span end as term_months,
               contract_end - contract_start + 1 as term_days,
               case when step is null then 1
                    else (select count(*)::int from generate_series(0, span / step + 1) k
                          where contract_start + make_interval(months => k * step) <= contract_end)
               end as n
        from (select case billing_frequency when 'monthly' then 1 when 'quarterly' then 3
                                            when 'annual' then 12 end as step,
                     (extract(year from age(contract_end + 1, contract_start)) * 12
                      + extract(month from age(contract_end + 1, contract_start)))::int as span
             ) s
    ),
    starts as (
        select j as term, n, step,
               case when term_months is not null
                    then (contract_start + make_interval(months => j * term_months))::date
                    else contract_start + j * term_days end as term_start
        from terms,
             generate_series(0, case when coalesce(auto_renew, false)
                                     then greatest(through - contract_start, 0) / term_days + 2
                                     else 0 end) j
    )
    select term, k, (term_start + make_interval(months => k * coalesce(step, 0)))::date, n
    from starts, generate_series(0, n - 1) k
    where term = 0 or term_start <= through
$$;
