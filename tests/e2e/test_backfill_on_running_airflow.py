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

from revleak import connections, demo, loader, pipeline
from tests.e2e.airflow_cluster import RunningAirflow
from tests.ticket_fakes import WebhookServer

pytestmark = pytest.mark.slow
CHECK = "booked_vs_billed_daily"
RUNS = {"booked_vs_billed_daily": 14, "billed_vs_collected_weekly": 2,  # runs in the span
        "recognized_vs_collected_quarterly": 1, "pricing_drift_quarterly": 1,
        "funnel_leak_weekly": 2}
FIRST, DAYS = date(2026, 9, 18), 14


def history(uri):
    with psycopg.connect(uri) as conn:
        return conn.execute(
            "select check_id, fingerprint, as_of, status, category, gap_amount,"
            " gap_amount_base, days_outstanding, time_weighted_loss"
            " from revleak.finding_history order by 1, 2, 3").fetchall()


@pytest.fixture
def cluster(pg_server, warehouse_uri, tmp_path):
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists airflow_e2e with (force)")
        admin.execute("create database airflow_e2e")
    socket = connections.parse(pg_server.get_uri(), "x").extra["host"]
    books = tmp_path / "demo"
    demo.generate(books, seed=7, scale="small")
    with psycopg.connect(warehouse_uri) as conn:
        loader.load(conn, books)
    with WebhookServer(secret="e2e-signing") as hook:
        home = tmp_path / "airflow"
        home.mkdir()
        airflow = RunningAirflow(home, f"postgresql+psycopg2://postgres@/airflow_e2e?host={socket}",
                                 {"AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri,
                                  "AIRFLOW_CONN_REVLEAK_TICKETS": hook.destination().base_url
                                  .replace("http://", "http://x:e2e-signing@", 1)
                                  + "?provider=webhook"})
        airflow.start()
        try:
            yield airflow, hook, books
        finally:
            airflow.stop()


def test_backfill_from_the_api_matches_one_by_one_runs(cluster, pg_server, warehouse_uri):
    airflow, hook, books = cluster
    for check in RUNS:
        airflow.wait_for(lambda c=check: airflow.api("GET", f"/dags/{c}").ok, 180,
                         f"{check} to parse")
        assert airflow.api("PATCH", f"/dags/{check}", json={"is_paused": False}).ok
    airflow.wait_for(lambda: airflow.scheduled_runs_created(RUNS), 180,
                     "the scheduler's latest runs")

    def scheduled_runs_done() -> bool:
        return all(r["state"] in ("success", "failed") for c in RUNS for r in airflow.api(
            "GET", f"/dags/{c}/dagRuns", params={"limit": 100}).json()["dag_runs"])

    airflow.wait_for(scheduled_runs_done, 300, "the latest scheduled runs to finish")

    # Params are validated when a run is triggered from the API (the trigger form's call)
    bad = airflow.api("POST", f"/dags/{CHECK}/dagRuns", json={
        "logical_date": "2026-10-01T06:00:00Z", "conf": {"tolerance_pct": 500}})
    assert bad.status_code == 400 and "tolerance_pct" in bad.text

    for check in RUNS:
        body = {"dag_id": check, "from_date": f"{FIRST}T00:00:00Z",
                "to_date": f"{FIRST + timedelta(days=DAYS - 1)}T23:59:59Z",
                "reprocess_behavior": "completed", "max_active_runs": 1}
        created = airflow.api("POST", "/backfills", json=body)
        assert created.status_code == 200, created.text

    def in_span(run) -> bool:  # unpausing also schedules the latest date: that run may
        day = date.fromisoformat(run["logical_date"][:10])  # be in the span (the quarterlies)
        return FIRST <= day <= FIRST + timedelta(days=DAYS - 1)  # or after it

    def finished():
        done = True
        for check, expected in RUNS.items():
            runs = airflow.api("GET", f"/dags/{check}/dagRuns", params={"limit": 100}).json()
            states = [r["state"] for r in runs["dag_runs"] if in_span(r)]
            assert "failed" not in states, runs
            done &= len(states) == expected and set(states) == {"success"}
        return done

    airflow.wait_for(finished, 800, "the backfills")
    assert airflow.stopped() is None  # no component died, the scheduler included
    backfilled = history(warehouse_uri)
    with psycopg.connect(warehouse_uri) as conn:
        checked = conn.execute(
            "select check_id, as_of from revleak.check_runs where status = 'succeeded'"
            " order by 1, 2").fetchall()
    span = [(c, d) for c, d in checked if d <= FIRST + timedelta(days=DAYS - 2)]  # D−1 at most
    daily = [d for c, d in span if c == CHECK]
    assert len(daily) == DAYS and daily[-1] - daily[0] == timedelta(days=DAYS - 1)
    assert [d.isoweekday() for c, d in span if c.endswith("weekly")] == [7] * 4  # Sundays
    assert [d for c, d in span if c.endswith("quarterly")] == [date(2026, 9, 30)] * 2

    # the same books, checked one date at a time outside Airflow
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists one_by_one with (force)")
        admin.execute("create database one_by_one template revleak_template")
    one_uri = pg_server.get_uri("one_by_one")
    with psycopg.connect(one_uri) as conn:
        loader.load(conn, books)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_REVLEAK_WAREHOUSE", one_uri)
    try:
        for check, as_of in checked:
            pipeline.run_check(check, as_of)
    finally:
        mp.undo()
    assert backfilled and backfilled == history(one_uri)

    # one ticket per episode of a leak (its generation), whatever order the dates ran in
    opens = Counter(d["payload"]["fingerprint"] for d in hook.deliveries
                    if d["payload"]["action"] == "open" and not d["duplicate"])
    with psycopg.connect(warehouse_uri) as conn:
        episodes = Counter(r[0] for r in conn.execute(
            "select fingerprint from revleak.finding_generations"))
        still_open = {r[0] for r in conn.execute(
            "select fingerprint from revleak.findings where status = 'open'")}
    assert opens and opens == episodes
    assert still_open <= set(opens)
