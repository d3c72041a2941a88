"""A price change checked the day it is loaded, on a running Airflow (API server, scheduler,
DAG processor): `revleak load` of a corrected rate card tells Airflow (an Asset event through
its REST API), `pricing_drift_on_change` runs, records the subscription drifts it makes and
sends exactly one signed price signal per drift to a receiver on 127.0.0.1. A reload of the
same file tells nothing (no asset event, no run). Without the Airflow connection the load says
so in one line; with Airflow unreachable the load stays committed, exits 2 with one line and
the change goes out with the next load — whose run finds the same drifts: no new signal. The
README's curl (a billing system's own webhook) starts a run as well."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from revleak import assets
from tests.books import Books
from tests.e2e.airflow_cluster import PASSWORD, RunningAirflow, free_port
from tests.integration.test_subscription_drift import billed, card
from tests.ticket_fakes.price_signals import PriceSignalReceiver

pytestmark = pytest.mark.slow
DAG = "pricing_drift_on_change"
TERM = ("2020-01-01", "2030-12-31")  # 132 monthly periods


def revleak_load(directory: Path, airflow_api: str | None) -> subprocess.CompletedProcess:
    """`revleak load DIR` as a user runs it, with or without the Airflow connection."""
    env = {k: v for k, v in os.environ.items() if k != assets.ENV_VAR}
    if airflow_api:
        env[assets.ENV_VAR] = airflow_api
    return subprocess.run([sys.executable, "-m", "revleak.cli", "load", str(directory)],
                          env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def books(list_price: str, yesterday: str) -> Books:
    """Two monthly contracts billing PLAN at 100.00 a month (K1 one seat, K2 two) on the day
    before the run, a rate card of PLAN at ``list_price`` and no promotion yet."""
    b = Books()
    card(b, "PLAN", list_price, start="2020-01-01")
    b.contract("K1", "13200.00", *TERM)
    billed(b, "K1-1", "K1", yesterday, ("PLAN", "1", "100.00", ""))
    b.contract("K2", "26400.00", *TERM)
    billed(b, "K2-1", "K2", yesterday, ("PLAN", "2", "100.00", ""))
    return b


@pytest.fixture
def cluster(pg_server, warehouse_uri, tmp_path):
    with PriceSignalReceiver() as receiver, RunningAirflow(
            pg_server, tmp_path / "airflow", "airflow_price_e2e",
            {"AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri,
             "AIRFLOW_CONN_REVLEAK_PRICE_SIGNALS": receiver.connection_uri()}) as airflow:
        yield airflow, receiver


def test_a_rate_card_change_loaded_runs_the_change_check_and_signals_each_drift_once(
        cluster, warehouse_uri, tmp_path):
    airflow, receiver = cluster
    api = airflow.url.replace("http://", f"http://admin:{PASSWORD}@", 1)
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

    # the books before the change: no drift; no Airflow connection, so only one line says so
    loaded = revleak_load(books("100.00", yesterday).write(tmp_path / "books"), None)
    assert loaded.returncode == 0, loaded.stderr
    untold = [line for line in loaded.stderr.splitlines() if "Airflow was not told" in line]
    assert untold == [f"warning: rate_cards changed and loaded, but Airflow was not told (no "
                      f"connection revleak_airflow_api): set {assets.ENV_VAR}='"
                      f"{assets.EXAMPLE}' so {DAG} runs on such changes"]

    airflow.unpause([DAG])
    rate_cards = _asset_id(airflow, "rate_cards")

    # Finance corrects PLAN's list price to 120.00: the load tells Airflow, the DAG runs
    change = books("120.00", yesterday).write(tmp_path / "change")
    for other in change.glob("*.csv"):
        if other.name != "rate_cards.csv":
            other.unlink()
    loaded = revleak_load(change, api)
    assert loaded.returncode == 0, loaded.stderr
    assert "Airflow" not in loaded.stderr
    runs = _wait_for_runs(airflow, 1)
    assert runs[0]["run_type"] == "asset_triggered"
    events = _events(airflow, rate_cards)
    assert [(e["extra"]["table"], e["extra"]["rows_changed"], e["extra"]["rows_updated"])
            for e in events] == [("rate_cards", 1, 1)]

    # drift = (100 − 120) / 120 = −16.6667%: K1 billed 100 vs 120, K2 200 vs 240
    with psycopg.connect(warehouse_uri) as conn:
        found = conn.execute(
            "select entity_id, expected_amount, actual_amount, as_of from revleak.findings"
            " where check_id = %s and category = 'subscription_drift' order by entity_id",
            (DAG,)).fetchall()
        assert [(e, str(x), str(a), str(d)) for e, x, a, d in found] == [
            ("K1:PLAN", "120.0000", "100.0000", yesterday),
            ("K2:PLAN", "240.0000", "200.0000", yesterday)]
        assert conn.execute("select count(*) from revleak.ticket_outbox").fetchone()[0] == 0
    assert sorted((s["payload"]["opportunity_id"], s["payload"]["billed_price"],
                   s["payload"]["rate_card_price"], s["payload"]["drift_pct"],
                   s["payload"]["annualized_impact"], s["payload"]["check"])
                  for s in receiver.signals) == [
        ("K1", 100.0, 120.0, -16.6667, 240.0, DAG), ("K2", 200.0, 240.0, -16.6667, 480.0, DAG)]
    assert len(receiver.deliveries) == 2  # each signal once, signed (the receiver checks)

    # the same file again: nothing changed, nothing told, no new run
    for force in ((), ("--force",)):
        again = subprocess.run([sys.executable, "-m", "revleak.cli", "load", str(change),
                                *force], env={**os.environ, assets.ENV_VAR: api},
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "Airflow" not in again.stderr, again.stderr
    assert len(_events(airflow, rate_cards)) == 1
    time.sleep(10)  # the scheduler heartbeats every second: a run would have been made by now
    assert len(airflow.runs(DAG)) == 1

    # a promotion added while Airflow is unreachable: committed, exit 2, one line; the next
    # load tells Airflow, and its run finds the same drifts — no new signal
    promo = tmp_path / "promo"
    promo.mkdir()
    (promo / "promotions.csv").write_text(
        "promo_code,discount_pct,valid_from,valid_to,stackable\n"
        "SPRING,10,2026-03-01,2026-05-31,false\n")
    down = revleak_load(promo, f"http://admin:{PASSWORD}@127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert down.stderr.count("\n") == 1 and down.stderr.startswith(
        "revleak: promotions changed and loaded, but Airflow was not told: Airflow POST "
        "/auth/token: connection failed"), down.stderr
    assert PASSWORD not in down.stderr + down.stdout
    with psycopg.connect(warehouse_uri) as conn:
        assert conn.execute("select count(*) from revleak.promotions").fetchone()[0] == 1
    told = revleak_load(promo, api)  # unchanged file: only the waiting change goes out
    assert told.returncode == 0, told.stderr
    _wait_for_runs(airflow, 2)
    assert [e["extra"]["table"] for e in _events(airflow, _asset_id(airflow, "promotions"))] \
        == ["promotions"]
    assert len(receiver.signals) == 2 and len(receiver.deliveries) == 2

    # a billing system's webhook posts the event itself: the README's curl, as written
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    script = next(block for block in readme.split("```bash\n")[1:]
                  if "/api/v2/assets/events" in block.split("```")[0]).split("```")[0]
    assert script.startswith("AIRFLOW=https://airflow.example.com ")
    posted = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script.replace(
            "AIRFLOW=https://airflow.example.com", f"AIRFLOW={airflow.url}", 1)],
        env={**os.environ, "AIRFLOW_USER": "admin", "AIRFLOW_PASSWORD": PASSWORD},
        capture_output=True, text=True, timeout=60)
    assert posted.returncode == 0, posted.stderr
    _wait_for_runs(airflow, 3)
    assert [e["extra"].get("source") for e in _events(airflow, rate_cards)] == [
        "revleak load", "billing webhook"]
    assert len(receiver.signals) == 2 and len(receiver.deliveries) == 2


def _asset_id(airflow: RunningAirflow, table: str) -> int:
    found = airflow.api("GET", "/assets", params={"uri_pattern": assets.uri(table)}).json()
    return next(a["id"] for a in found["assets"] if a["uri"] == assets.uri(table))


def _events(airflow: RunningAirflow, asset_id: int) -> list[dict]:
    """The asset's events. Read once the runs they triggered have finished: Airflow 3.3.2's
    GET /assets/events answers 500 while a run an event created has no start_date yet (its
    response model requires one)."""
    reply = airflow.api("GET", "/assets/events", params={"asset_id": asset_id})
    reply.raise_for_status()
    return reply.json()["asset_events"]


def _wait_for_runs(airflow: RunningAirflow, n: int) -> list[dict]:
    """The DAG's first ``n`` runs, once all of them succeeded (one failing fails the test)."""
    airflow.wait_for_runs({DAG: n}, 300)
    return sorted(airflow.runs(DAG), key=lambda r: r["run_after"])
