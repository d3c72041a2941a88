"""
### pricing_drift_on_change — prices checked the day they change

**Owner:** Finance. **Runs** whenever a price table changes: an Airflow Asset event for
`rate_cards`, `promotions` or `discount_approvals` (`revleak://warehouse/<table>`), posted by
`revleak load` when a load really changed rows of one, or by a billing system's own
price-change webhook through Airflow's REST API (README). A run on day D — asset-triggered or
manual — checks the invoice lines issued from the first day of D − 1's quarter through D − 1,
with the SQL and rules of `pricing_drift_quarterly`: the same drift categories, and
`subscription_drift` (an active recurring contract's price per period more than 5% from the
rate card, docs/pricing.md).

Findings are recorded under this DAG's id. It **opens no tickets** — the quarterly audit owns
them, so a drift is never ticketed twice — but its subscription drifts raise price signals at
once (`send_price_signals`, connection `revleak_price_signals`): one per drift and price,
shared with the quarterly audit. The run refuses to judge without invoices or a rate card.

**Params:** `dry_run`, and overrides of the tolerance for this run.
"""

from pathlib import Path

from revleak.airflow_dags import check_dag

dag = check_dag(Path(__file__).stem, __doc__)

if __name__ == "__main__":
    dag.test()
