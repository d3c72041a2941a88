"""
### funnel_leak_weekly — where did sales opportunities leak last week?

**Owner:** Sales Ops. **Runs** every Monday; a run on day D checks the ISO week before D's
week (scheduled, manual and backfill runs of one date check the same week).

One rate per leak zone, each a finding when past its limit:
`intake` — same-day capture of inbound signals below 95%; `routing` — more than 10% of new
opportunities without an owner within 4 hours; `response` — more than 30% of high-intent
opportunities without a first response within 1 hour (auto-acks do not count); `follow_up` —
more than 40% of assigned opportunities without a second touch within 48 hours; `close` —
more than 20% of open opportunities past their expected close date with no next step ahead.
Evidence lists the population, the problems and a sample of opportunity or signal ids.

**Params:** `dry_run`.
"""

from pathlib import Path

from revleak.airflow_dags import check_dag

dag = check_dag(Path(__file__).stem, __doc__)

if __name__ == "__main__":
    dag.test()
