"""The demo company through Airflow (`airflow dags test`, i.e. dag.test()): every seeded
booked-vs-billed leak in manifest.json is found with its category, gap to the cent and days
outstanding; no decoy is flagged; Params are validated; a dry run sends no ticket events."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from revleak import connections, demo, findings, loader
from tests.contract import CATEGORIES, OWNING_TEAMS

ROOT = Path(__file__).resolve().parents[2]
CHECK = "booked_vs_billed_daily"


@pytest.fixture(scope="session")
def airflow_env(pg_server, tmp_path_factory):
    """A throwaway Airflow home whose metadata database lives on the test PostgreSQL."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists airflow_meta with (force)")
        admin.execute("create database airflow_meta")
    socket = connections.parse(pg_server.get_uri(), "x").extra["host"]
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow")),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
               f"postgresql+psycopg2://postgres@/airflow_meta?host={socket}"}
    airflow(env, "db", "migrate")
    return env


def airflow(env, *args, check=True):
    exe = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def demo_books(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, demo.generate(out, seed=7, scale="small")


@pytest.fixture
def loaded(conn, demo_books, airflow_env, warehouse_uri):
    out, manifest = demo_books
    _, results = loader.load(conn, out)
    assert sum(r.quarantined for r in results) == 0
    return out, manifest, {**airflow_env, "AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri}


def fx_on(out: Path, as_of: date) -> dict[str, Decimal]:
    rates: dict[str, tuple[date, Decimal]] = {}
    with open(out / "fx_rates.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["rate_date"])
            if day <= as_of and (row["currency"] not in rates or day > rates[row["currency"]][0]):
                rates[row["currency"]] = (day, Decimal(row["rate_to_base"]))
    return {c: r for c, (_, r) in rates.items()}




@pytest.mark.parametrize("check", sorted(CATEGORIES))
def test_seeded_leaks_found_and_decoys_spared(conn, loaded, check):
    out, manifest, env = loaded
    run = manifest["runs"][check]
    airflow(env, "dags", "test", check, run["logical_date"])
    as_of = date.fromisoformat(run["as_of"])
    got = {(f["entity_id"], f["category"]): f for f in findings.query(conn, check, as_of)
           if f["entity_type"] != "portfolio"}
    expected = {(leak["entity_id"], leak["category"]): leak for leak in manifest["leaks"]
                if leak["check"] == check}
    assert {c for _, c in expected} == CATEGORIES[check]
    assert set(got) == set(expected)
    for key, leak in expected.items():
        f = got[key]
        assert f["owner"]["team"] == OWNING_TEAMS[check]
        if leak["gap_amount"] is None:  # a funnel zone: a rate, not an amount
            assert f["evidence"]["value_pct"] == float(leak["value_pct"]), key
            assert f["evidence"]["problems"] == leak["problems"], key
            assert f["evidence"]["population"] == leak["population"], key
            continue
        assert f["gap_amount"] == Decimal(leak["gap_amount"]), key
        assert f["expected_amount"] == Decimal(leak["expected_amount"]), key
        assert f["actual_amount"] == Decimal(leak["actual_amount"]), key
        assert f["currency"] == leak["currency"], key
        assert f["days_outstanding"] == leak["days_outstanding"], key
        assert f["due_date"] > as_of
    decoys = {d["entity_id"] for d in manifest["decoys"] if d["check"] == check}
    assert bool(decoys) == (check != "funnel_leak_weekly")
    assert not decoys & {entity for entity, _ in got}
    if check != CHECK:
        return
    # the realization metric's total due equals the manifest's, converted on the as-of date
    rates = fx_on(out, as_of)
    due = sum(Decimal(v) * rates.get(c, Decimal(1))
              for c, v in manifest["totals"][CHECK]["due"].items())
    detail = conn.execute("select detail from revleak.metrics where check_id = %s and as_of = %s"
                          " and metric = 'realization_rate'", (CHECK, as_of)).fetchone()[0]
    assert abs(Decimal(str(detail["due_base"])) - due) < Decimal("0.05")


def test_params_are_validated(loaded):
    _, manifest, env = loaded
    result = airflow(env, "dags", "test", CHECK, manifest["runs"][CHECK]["logical_date"],
                     "--conf", json.dumps({"tolerance_pct": 500}), check=False)
    assert result.returncode != 0
    assert "tolerance_pct" in result.stdout + result.stderr


def test_dry_run_writes_findings_but_no_ticket_events(conn, loaded):
    _, manifest, env = loaded
    airflow(env, "dags", "test", CHECK, manifest["runs"][CHECK]["logical_date"],
            "--conf", json.dumps({"dry_run": True}))
    assert conn.execute("select count(*) from revleak.findings").fetchone()[0] > 0
    assert conn.execute("select count(*) from revleak.ticket_outbox").fetchone()[0] == 0
