-- How many billing periods of a schedule that does not renew have started by a date, counted
-- instead of generated: the periods start at contract_start + k × the frequency's months
-- (k = 0, 1, …; one_time: a single period). PostgreSQL's month arithmetic clamps to the
-- month's end (Jan 31 + 1 month = Feb 28) and keeps the order of k, so the periods started by
-- d are those with k × step ≤ M, M being the most whole months start + M months ≤ d allows:
-- the month difference, or one less. Same periods as revleak.billing_periods, no rows
-- generated. (billing_periods, in the applied migration 0013, keeps its own copy of the
-- frequency's step; tests/integration/test_periods_by.py holds the two together.)
create function revleak.billing_step(billing_frequency text) returns integer
language sql immutable parallel safe
return case billing_frequency when 'monthly' then 1 when 'quarterly' then 3
                              when 'annual' then 12 end;

create function revleak.periods_by(contract_start date, billing_frequency text, d date)
returns integer
language sql immutable parallel safe
return case
    when d < contract_start then 0
    when revleak.billing_step(billing_frequency) is null then 1
    else (((extract(year from d) - extract(year from contract_start)) * 12
           + extract(month from d) - extract(month from contract_start))::integer
          - case when contract_start + make_interval(months => (
                        (extract(year from d) - extract(year from contract_start)) * 12
                        + extract(month from d) - extract(month from contract_start))::integer)
                      > d then 1 else 0 end) / revleak.billing_step(billing_frequency) + 1
end;
