"""Scaling out, proven on one machine (issue 16): the CeleryExecutor on Debian's redis-server
with two workers, the Airflow metadata on its own PostgreSQL server and the warehouse on
another. Backfills of every DAG created through the REST API v2 spread their tasks over both
workers; one worker is SIGKILLed (with the tasks it runs) mid-backfill, and still every run
ends done, the findings equal one-by-one runs of the same dates, and the webhook receiver got
exactly one `open` per fingerprint.

    .venv/bin/python -m pytest -m celery -p no:cacheprovider
"""

from __future__ import annotations

import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import psycopg
import pytest

from revleak import demo, loader, pipeline
from tests.e2e.celery_cluster import RETRY_DELAY_SECONDS, CeleryAirflow, Redis
from tests.ticket_fakes import WebhookServer

pytestmark = [pytest.mark.slow, pytest.mark.celery]
FIRST, DAYS = date(2026, 9, 28), 4  # a Monday to a quarter's first day
RUNS = {"booked_vs_billed_daily": 4, "billed_vs_collected_weekly": 1, "funnel_leak_weekly": 1,
        "recognized_vs_collected_quarterly": 1, "pricing_drift_quarterly": 1}
WORKERS = ("w1", "w2")


def history(uri: str) -> list[tuple]:
    with psycopg.connect(uri) as conn:
        return conn.execute(
            "select check_id, fingerprint, as_of, status, category, gap_amount,"
            " gap_amount_base, days_outstanding, time_weighted_loss"
            " from revleak.finding_history order by 1, 2, 3").fetchall()


def data_directory(uri: str) -> str:
    with psycopg.connect(uri) as conn:
        return conn.execute("show data_directory").fetchone()[0]


@pytest.fixture
def metadata_server(tmp_path):
    """A PostgreSQL server for Airflow's metadata only (the warehouse has its own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        srv = pgserver.get_server(tmp_path / "metadata-pg", cleanup_mode="delete")
    with psycopg.connect(srv.get_uri(), autocommit=True) as admin:
        admin.execute("create database airflow")
    yield srv.get_uri("airflow")
    srv.cleanup()


@pytest.fixture
def cluster(metadata_server, warehouse_uri, tmp_path):
    if not Redis.available():
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    books = tmp_path / "demo"

    def load_books() -> None:
        demo.generate(books, seed=7, scale="small")
        with psycopg.connect(warehouse_uri) as conn:
            loader.load(conn, books)

    home = tmp_path / "airflow"
    home.mkdir()
    with Redis(tmp_path) as redis, WebhookServer(secret="celery-signing") as hook, \
            ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_books)  # while Airflow starts
        tickets = (hook.destination().base_url.replace("http://", "http://x:celery-signing@", 1)
                   + "?provider=webhook")
        airflow = CeleryAirflow(home, metadata_server, redis.url, {
            "AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri,
            "AIRFLOW_CONN_REVLEAK_TICKETS": tickets})
        try:
            airflow.start(WORKERS)
            loading.result()
            yield airflow, hook, books
        finally:
            airflow.stop()


def test_backfill_on_two_celery_workers_survives_losing_one(cluster, pg_server, warehouse_uri):
    airflow, hook, books = cluster
    assert data_directory(airflow.metadata_uri) != data_directory(warehouse_uri)
    for check in RUNS:
        airflow.wait_for(lambda c=check: airflow.api("GET", f"/dags/{c}").ok, 180,
                         f"{check} to parse")
        assert airflow.api("PATCH", f"/dags/{check}", json={"is_paused": False}).ok
    tasks = airflow.api("GET", "/dags/booked_vs_billed_daily/tasks").json()["tasks"]
    assert {t["retry_delay"]["seconds"] for t in tasks} == {RETRY_DELAY_SECONDS}  # the policy

    for check in RUNS:
        created = airflow.api("POST", "/backfills", json={
            "dag_id": check, "from_date": f"{FIRST}T00:00:00Z",
            "to_date": f"{FIRST + timedelta(days=DAYS - 1)}T23:59:59Z",
            "reprocess_behavior": "completed", "max_active_runs": 1})
        assert created.status_code == 200, created.text

    def on(worker: str, state: str) -> set[tuple]:
        return set(airflow.metadata(
            "select dag_id, run_id, task_id from task_instance where hostname = %s"
            " and state = %s", (worker, state)))

    # mid-backfill: w2 has finished work and is running more; the machine under it dies
    airflow.wait_for(lambda: on("w2", "success") and on("w2", "running"), 240,
                     "a task running on w2 after others succeeded there")
    airflow.kill_worker("w2")
    interrupted = on("w2", "running")  # no worker will ever report on these again
    assert interrupted, "every task on w2 finished before the kill; nothing was interrupted"

    def finished() -> bool:
        done = True
        for check, expected in RUNS.items():
            runs = airflow.api("GET", f"/dags/{check}/dagRuns", params={"limit": 100}).json()
            states = [r["state"] for r in runs["dag_runs"]]
            assert "failed" not in states, runs
            done &= len(states) == expected and set(states) == {"success"}
        return done

    airflow.wait_for(finished, 420, "the backfills")

    ran_on = {host for (host,) in airflow.metadata(
        "select distinct hostname from task_instance where state = 'success'")}
    assert ran_on == set(WORKERS)
    for dag_id, run_id, task_id in interrupted:  # failed by heartbeat, retried on w1
        (host, tries), = airflow.metadata(
            "select hostname, try_number from task_instance where dag_id = %s and run_id = %s"
            " and task_id = %s and state = 'success'", (dag_id, run_id, task_id))
        assert host == "w1" and tries >= 2, (dag_id, run_id, task_id, host, tries)

    with psycopg.connect(warehouse_uri) as conn:
        checked = conn.execute(
            "select check_id, as_of from revleak.check_runs where status = 'succeeded'"
            " order by 1, 2").fetchall()
    assert Counter(c for c, _ in checked) == RUNS
    daily = [d for c, d in checked if c == "booked_vs_billed_daily"]
    assert daily == [FIRST - timedelta(days=1 - n) for n in range(DAYS)]
    assert [d for c, d in checked if c.endswith("weekly")] == [date(2026, 9, 27)] * 2  # Sunday
    assert [d for c, d in checked if c.endswith("quarterly")] == [date(2026, 9, 30)] * 2

    # the same books, checked one date at a time outside Airflow
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists celery_one_by_one with (force)")
        admin.execute("create database celery_one_by_one template revleak_template")
    one_uri = pg_server.get_uri("celery_one_by_one")
    with psycopg.connect(one_uri) as conn:
        loader.load(conn, books)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_REVLEAK_WAREHOUSE", one_uri)
    try:
        for check, as_of in checked:
            pipeline.run_check(check, as_of)
    finally:
        mp.undo()
    backfilled = history(warehouse_uri)
    assert backfilled and backfilled == history(one_uri)

    opens = Counter(d["payload"]["fingerprint"] for d in hook.deliveries
                    if d["payload"]["action"] == "open" and not d["duplicate"])
    with psycopg.connect(warehouse_uri) as conn:
        fingerprints = {r[0] for r in conn.execute(
            "select fingerprint from revleak.findings where status = 'open'")}
    assert set(opens) == fingerprints and set(opens.values()) == {1}
