"""RevOps and engineers live in the Airflow UI: backfills created through the REST API v2
(the call the UI's backfill dialog makes) over 14 days of every DAG, with reprocessing of
completed runs, give the same findings as one-by-one runs, and the webhook receiver gets
exactly one `open` per episode of a leak. A triggered run's Params are validated.

The DAGs are unpaused first (as the demo leaves them) and the backfills are created once the
scheduler has made and finished each DAG's latest scheduled run (`revleak ui` waits for the
same): the quarterlies' latest run (2026-10-01) falls inside the span, so the backfill must
find it rather than race it for that logical date (`UniqueViolation
dag_run_dag_id_logical_date_key` in the scheduler, which then exits). Airflow so checks the
latest date first and the span after it; the one-by-one runs go in date order, and the
findings' history must not care."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import psycopg
import pytest

from revleak import demo, loader
from tests.e2e.airflow_cluster import RunningAirflow
from tests.e2e.backfills import (
    assert_same_as_one_by_one,
    opened,
    succeeded_checks,
    tickets_connection,
)
from tests.ticket_fakes import WebhookServer

pytestmark = pytest.mark.slow
CHECK = "booked_vs_billed_daily"
RUNS = {"booked_vs_billed_daily": 14, "billed_vs_collected_weekly": 2,  # runs in the span
        "recognized_vs_collected_quarterly": 1, "pricing_drift_quarterly": 1,
        "funnel_leak_weekly": 2}
FIRST, DAYS = date(2026, 9, 18), 14
LAST = FIRST + timedelta(days=DAYS - 1)


@pytest.fixture
def cluster(pg_server, warehouse_uri, tmp_path):
    books = tmp_path / "demo"
    demo.generate(books, seed=7, scale="small")
    with psycopg.connect(warehouse_uri) as conn:
        loader.load(conn, books)
    with WebhookServer(secret="e2e-signing") as hook, RunningAirflow(
            pg_server, tmp_path / "airflow", "airflow_e2e",
            {"AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri,
             "AIRFLOW_CONN_REVLEAK_TICKETS": tickets_connection(hook)}) as airflow:
        yield airflow, hook, books


def test_backfill_from_the_api_matches_one_by_one_runs(cluster, pg_server, warehouse_uri):
    airflow, hook, books = cluster
    airflow.unpause(RUNS)
    airflow.wait_for(lambda: airflow.scheduled_runs_created(RUNS), 180,
                     "the scheduler's latest runs")

    def scheduled_runs_done() -> bool:
        return all(r["state"] in ("success", "failed") for c in RUNS for r in airflow.runs(c))

    airflow.wait_for(scheduled_runs_done, 300, "the latest scheduled runs to finish")

    # Params are validated when a run is triggered from the API (the trigger form's call)
    bad = airflow.api("POST", f"/dags/{CHECK}/dagRuns", json={
        "logical_date": "2026-10-01T06:00:00Z", "conf": {"tolerance_pct": 500}})
    assert bad.status_code == 400 and "tolerance_pct" in bad.text

    airflow.backfill(RUNS, FIRST, LAST)

    def in_span(run) -> bool:  # unpausing also schedules the latest date: that run may
        day = date.fromisoformat(run["logical_date"][:10])  # be in the span (the quarterlies)
        return FIRST <= day <= LAST  # or after it

    airflow.wait_for_runs(RUNS, 800, counted=in_span)
    assert airflow.stopped() is None  # no component died, the scheduler included
    checked = succeeded_checks(warehouse_uri)
    span = [(c, d) for c, d in checked if d <= FIRST + timedelta(days=DAYS - 2)]  # D−1 at most
    daily = [d for c, d in span if c == CHECK]
    assert len(daily) == DAYS and daily[-1] - daily[0] == timedelta(days=DAYS - 1)
    assert [d.isoweekday() for c, d in span if c.endswith("weekly")] == [7] * 4  # Sundays
    assert [d for c, d in span if c.endswith("quarterly")] == [date(2026, 9, 30)] * 2

    # the same books, checked one date at a time outside Airflow
    assert_same_as_one_by_one(pg_server, warehouse_uri, books, checked)

    # one ticket per episode of a leak (its generation), whatever order the dates ran in
    opens = opened(hook)
    with psycopg.connect(warehouse_uri) as conn:
        episodes = Counter(r[0] for r in conn.execute(
            "select fingerprint from revleak.finding_generations"))
        still_open = {r[0] for r in conn.execute(
            "select fingerprint from revleak.findings where status = 'open'")}
    assert opens and opens == episodes
    assert still_open <= set(opens)
