"""Scaling out, proven on one machine (issue 16): the CeleryExecutor on Debian's redis-server
with two workers, the Airflow metadata on its own PostgreSQL server and the warehouse on
another. Backfills of every DAG created through the REST API v2 spread their tasks over both
workers; one worker is SIGKILLed (with the tasks it runs) mid-backfill, and still every run
ends done, the findings equal one-by-one runs of the same dates, and the webhook receiver got
exactly one `open` per fingerprint.

    .venv/bin/python -m pytest -m celery -p no:cacheprovider
"""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import psycopg
import pytest

from revleak import demo, loader
from tests.e2e.backfills import (
    assert_same_as_one_by_one,
    opened,
    succeeded_checks,
    tickets_connection,
)
from tests.e2e.celery_cluster import RETRY_DELAY_SECONDS, CeleryAirflow
from tests.ticket_fakes import WebhookServer

pytestmark = [pytest.mark.slow, pytest.mark.celery]
FIRST, DAYS = date(2026, 9, 28), 4  # a Monday to a quarter's first day
RUNS = {"booked_vs_billed_daily": 4, "billed_vs_collected_weekly": 1, "funnel_leak_weekly": 1,
        "recognized_vs_collected_quarterly": 1, "pricing_drift_quarterly": 1}
WORKERS = ("w1", "w2")


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
    yield srv
    srv.cleanup()


@pytest.fixture
def cluster(metadata_server, warehouse_uri, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    books = tmp_path / "demo"

    def load_books() -> None:
        demo.generate(books, seed=7, scale="small")
        with psycopg.connect(warehouse_uri) as conn:
            loader.load(conn, books)

    with WebhookServer(secret="celery-signing") as hook, ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_books)  # while Airflow starts
        with CeleryAirflow(metadata_server, tmp_path / "airflow", "airflow", {
                "AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri,
                "AIRFLOW_CONN_REVLEAK_TICKETS": tickets_connection(hook)}, WORKERS) as airflow:
            loading.result()
            yield airflow, hook, books


def test_backfill_on_two_celery_workers_survives_losing_one(cluster, pg_server, warehouse_uri):
    airflow, hook, books = cluster
    assert data_directory(airflow.metadata_uri) != data_directory(warehouse_uri)
    airflow.unpause(RUNS)
    tasks = airflow.api("GET", "/dags/booked_vs_billed_daily/tasks").json()["tasks"]
    assert {t["retry_delay"]["seconds"] for t in tasks} == {RETRY_DELAY_SECONDS}  # the policy

    airflow.backfill(RUNS, FIRST, FIRST + timedelta(days=DAYS - 1))

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

    airflow.wait_for_runs(RUNS, 420)

    ran_on = {host for (host,) in airflow.metadata(
        "select distinct hostname from task_instance where state = 'success'")}
    assert ran_on == set(WORKERS)
    for dag_id, run_id, task_id in interrupted:  # failed by heartbeat, retried on w1
        (host, tries), = airflow.metadata(
            "select hostname, try_number from task_instance where dag_id = %s and run_id = %s"
            " and task_id = %s and state = 'success'", (dag_id, run_id, task_id))
        assert host == "w1" and tries >= 2, (dag_id, run_id, task_id, host, tries)

    checked = succeeded_checks(warehouse_uri)
    assert Counter(c for c, _ in checked) == RUNS
    daily = [d for c, d in checked if c == "booked_vs_billed_daily"]
    assert daily == [FIRST - timedelta(days=1 - n) for n in range(DAYS)]
    assert [d for c, d in checked if c.endswith("weekly")] == [date(2026, 9, 27)] * 2  # Sunday
    assert [d for c, d in checked if c.endswith("quarterly")] == [date(2026, 9, 30)] * 2

    # the same books, checked one date at a time outside Airflow
    assert_same_as_one_by_one(pg_server, warehouse_uri, books, checked)

    opens = opened(hook)
    with psycopg.connect(warehouse_uri) as conn:
        fingerprints = {r[0] for r in conn.execute(
            "select fingerprint from revleak.findings where status = 'open'")}
    assert set(opens) == fingerprints and set(opens.values()) == {1}
