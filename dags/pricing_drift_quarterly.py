"""
### pricing_drift_quarterly — was every invoice line priced as agreed?

**Owner:** Finance. **Runs** on the first day of each quarter; a run on day D checks the
invoice lines issued in the quarter before D's quarter (scheduled, manual and backfill runs
of one date check the same lines).

Each line is compared with the rate card effective on its issue date, its promotion and the
customer's discount approvals: `grandfathered_rate` (an old list price after a price
change), `price_mismatch` (a price on no rate card), `expired_promo` (a promotion used
outside its validity), `stacked_discount` (a non-stackable promotion combined with another
discount) and `unapproved_discount` (above 15% without an approval). Findings are per
customer and SKU with the amount the lines should have come to; drift above 5% is flagged as
subscription drift. The run refuses to judge without invoices or a rate card.

**Params:** `dry_run`, and overrides of the tolerance for this run.
"""

from pathlib import Path

from revleak.airflow_dags import check_dag

dag = check_dag(Path(__file__).stem, __doc__)

if __name__ == "__main__":
    dag.test()
