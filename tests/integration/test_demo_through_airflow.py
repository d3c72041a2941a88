"""The demo company through Airflow (`airflow dags test`, i.e. dag.test()): every check's run of
the demo — the change check's a few days after the price rise included — finds exactly the
leaks manifest.json says were planted, each with the independent oracle's figures
(tests/oracle) and its owner; no decoy is flagged; each pricing DAG raises one price signal per
subscription drift it finds and the change check no ticket; Params are validated; a dry run
sends no ticket events."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from revleak import demo, findings, loader
from revleak.registry import CHECKS
from tests import demo_books
from tests.airflow_cli import airflow, airflow_home
from tests.demo_books import CATEGORIES, OWNING_TEAMS
from tests.property.test_checks_agree_with_oracle import differences, found

CHECK = "booked_vs_billed_daily"


@pytest.fixture(scope="session")
def airflow_env(pg_server, tmp_path_factory):
    """A throwaway Airflow home whose metadata database lives on the test PostgreSQL."""
    return airflow_home(pg_server, tmp_path_factory.mktemp("airflow"))


@pytest.fixture(scope="module")
def generated_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, demo.generate(out, seed=7, scale="small")


@pytest.fixture
def loaded(conn, generated_demo, airflow_env, warehouse_uri):
    out, manifest = generated_demo
    _, results = loader.load(conn, out)
    assert sum(r.quarantined for r in results) == 0
    return out, manifest, {**airflow_env, "AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri}


@pytest.mark.parametrize("check", sorted(CATEGORIES))
def test_planted_leaks_found_and_decoys_spared(conn, loaded, check):
    out, manifest, env = loaded
    run = manifest["runs"][check]
    airflow(env, "dags", "test", check, run["logical_date"])
    as_of = date.fromisoformat(run["as_of"])
    got = {(f["entity_id"], f["category"]): f for f in findings.query(conn, check, as_of)
           if f["entity_type"] != "portfolio"}
    planted = {(leak["entity_id"], leak["category"]) for leak in manifest["leaks"]
               if leak["check"] == check}
    spec = CHECKS[check]
    every = {"subscription_drift"} if spec.cadence == "on_change" else CATEGORIES[check]
    assert every <= {c for _, c in planted} <= CATEGORIES[check]
    assert set(got) == planted
    for key, f in got.items():
        assert f["owner"]["team"] == OWNING_TEAMS[check], key
        assert f["due_date"] > as_of, key
    rows = demo_books.read(out)
    assert not differences(found(conn, check, as_of),
                           demo_books.judged(rows, manifest, check))
    decoys = {d["entity_id"] for d in manifest["decoys"] if d["check"] == (spec.same_as or check)}
    assert bool(decoys) == (check != "funnel_leak_weekly")
    assert not decoys & {entity for entity, _ in got}
    signals = conn.execute(
        "select payload ->> 'opportunity_id', payload ->> 'sku', status, check_id"
        " from revleak.price_signals").fetchall()
    drifts = sorted(e for e, c in planted if c == "subscription_drift")
    assert sorted(f"{opp}:{sku}" for opp, sku, _, _ in signals) == drifts
    assert {(status, by) for _, _, status, by in signals} <= {("pending", check)}
    if not spec.tickets:
        assert conn.execute("select count(*) from revleak.ticket_outbox").fetchone()[0] == 0
    if check != CHECK:
        return
    # the realization metric's total due is the oracle's: at zero tolerance, every shortfall
    # opens the portfolio finding, whose expected amount is all that is due in base currency
    portfolio = next(f for f in demo_books.judged(rows, manifest, check, tolerance_pct=0,
                                                  tolerance_min=0)
                     if f.entity_type == "portfolio")
    detail = conn.execute("select detail from revleak.metrics where check_id = %s and as_of = %s"
                          " and metric = 'realization_rate'", (CHECK, as_of)).fetchone()[0]
    assert abs(Decimal(str(detail["due_base"])) - portfolio.expected) < Decimal("0.05")


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
