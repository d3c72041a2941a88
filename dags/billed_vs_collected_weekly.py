"""
### billed_vs_collected_weekly — was every invoice collected, and is all cash applied?

**Owner:** Finance. **Runs** every Monday; a run on day D checks the ISO week before D's
week, with the books as they stood on its Sunday (scheduled, manual and backfill runs of one
date check the same books).

Every invoice past its due date whose outstanding balance (net billed minus payments that
succeeded; refunded, disputed and failed payments are not collected) is above tolerance
becomes a finding: `disputed`, `payment_failed`, `short_paid` or `unpaid`. Succeeded
payments applied to no invoice are `unapplied_cash`. The realization rate (collected /
billed of past-due invoices) is recorded every run and raises a portfolio finding below 95%.
The run refuses to judge when the payments export is missing or stale (`data_missing`).

**Params:** `dry_run`, and overrides of the tolerance for this run.
"""

from pathlib import Path

from revleak.airflow_dags import check_dag

dag = check_dag(Path(__file__).stem, __doc__)

if __name__ == "__main__":
    dag.test()
