-- How many billing periods of a schedule that does not renew have started by a date, counted
-- instead of generated: the periods start at contract_start + k × step months (k = 0, 1, …;
-- step null = one_time, a single period). PostgreSQL's month arithmetic clamps to the month's
-- end (Jan 31 + 1 month = Feb 28) and keeps the order of k, so the periods started by d are
-- those with k × step ≤ M, M being the most whole months start + M months ≤ d allows: the
-- month difference, or one less. Same periods as revleak.billing_periods, no rows generated.
create function revleak.periods_by(contract_start date, step integer, d date)
returns integer
language sql immutable parallel safe
return case
    when d < contract_start then 0
    when step is null then 1
    else (((extract(year from d) - extract(year from contract_start)) * 12
           + extract(month from d) - extract(month from contract_start))::integer
          - case when contract_start + make_interval(months => (
                        (extract(year from d) - extract(year from contract_start)) * 12
                        + extract(month from d) - extract(month from contract_start))::integer)
                      > d then 1 else 0 end) / step + 1
end;
