"""
### booked_vs_billed_daily — was every closed-won contract billed what its terms say?

**Owner:** RevOps. **Runs** daily; a run on day D checks the books as of the end of D−1
(scheduled, manual and backfill runs of one date check the same books).

For every closed-won contract, the periods its terms expect (contract start, billing
frequency, auto-renewal) that are past the billing lag are compared with what was billed
(non-draft, non-void invoice lines; credit notes subtract). Gaps above tolerance become
findings: `unbilled`, `under_billed`, `over_billed`, `renewal_miss`, and a portfolio
finding when total billing falls short; each carries its evidence (periods, invoices,
tolerance and lag used). The run refuses to judge when the billing export is missing or
stale (`data_missing`).

**Params:** `dry_run`, and overrides of the tolerance and billing lag for this run.
"""

from pathlib import Path

from revleak.airflow_dags import check_dag

dag = check_dag(Path(__file__).stem, __doc__)

if __name__ == "__main__":
    dag.test()
