"""revleak.periods_by counts what revleak.billing_periods generates (schema 0019): every start
day of a leap year and the next, every cadence, terms of 1 to 40 months or of odd day counts,
and dates around each month's end."""


def test_counted_periods_are_the_generated_ones(conn):
    differences = conn.execute("""
        with contracts as (
            select s::date as contract_start, f as billing_frequency,
                   (s + t)::date - 1 as contract_end
            from generate_series('2024-01-01'::date, '2025-12-31', '1 day') s,
                 unnest(array['monthly', 'quarterly', 'annual', 'one_time']) f,
                 unnest(array[interval '1 month', interval '3 months', interval '12 months',
                              interval '40 months', interval '45 days', interval '400 days']) t
        ),
        dates as (  -- month ends, the day before and the day after, over the terms
            select g::date as d from generate_series('2023-12-30'::date, '2029-06-01', '1 day') g
            where extract(day from g::date + 1) in (1, 2)
               or extract(day from g::date) in (1, 15, 28, 29)
        ),
        sampled as (
            select c.*, d.d from contracts c
            join dates d on d.d between c.contract_start - 3 and c.contract_end + 40
            where (extract(doy from c.contract_start)::int + extract(doy from d.d)::int) % 7 = 0
        )
        select s.contract_start, s.billing_frequency, s.contract_end, s.d,
               revleak.periods_by(s.contract_start, s.billing_frequency, s.d) as counted,
               (select count(*) from revleak.billing_periods(s.contract_start, s.contract_end,
                                                              s.billing_frequency, false, s.d) p
                where p.period_start <= s.d) as generated,
               (select max(p.periods_per_term) from revleak.billing_periods(
                    s.contract_start, s.contract_end, s.billing_frequency, false, s.d) p)
                   as per_term
        from sampled s
    """).fetchall()
    assert len(differences) > 100_000  # the grid is really walked
    wrong = [r for r in differences if min(r[4], r[6]) != r[5]]
    assert not wrong, wrong[:5]
