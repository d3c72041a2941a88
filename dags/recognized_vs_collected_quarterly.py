"""
### recognized_vs_collected_quarterly — did recognized revenue turn into cash in the bank?

**Owner:** Accounting. **Runs** on the first day of each quarter; a run on day D checks the
quarter before D's quarter, with the books as they stood on its last day (scheduled, manual
and backfill runs of one date check the same books).

Revenue the general ledger recognized more than 90 days before the as-of date and still not
collected (succeeded payments of the invoice) becomes `recognized_not_collected`; succeeded
payments with no bank deposit (a bank transaction referencing the payment or its invoice)
within 5 days become `payment_not_deposited`. The run refuses to judge when the ledger or
the bank export is missing (`data_missing`).

**Params:** `dry_run`, and overrides of the tolerance for this run.
"""

from pathlib import Path

from revleak.airflow_dags import check_dag

dag = check_dag(Path(__file__).stem, __doc__)

if __name__ == "__main__":
    dag.test()
