"""Every DAG file imports cleanly, without touching a database or the network, and carries
what an Airflow engineer expects: docs, tags, an owner, retries, an explicit timetable,
typed Params and serialized writes."""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import psycopg
import pytest

from revleak.config import CHECK_IDS

DAGS = Path(__file__).resolve().parents[2] / "dags"
ON_CHANGE = "pricing_drift_on_change"


class Forbidden(RuntimeError):
    pass


@pytest.fixture(scope="module")
def dagbag():
    def refuse(*args, **kwargs):
        raise Forbidden("database or network access at DAG import time")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(psycopg, "connect", refuse)
    mp.delenv("AIRFLOW_CONN_REVLEAK_WAREHOUSE", raising=False)
    try:
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(DAGS))
    finally:
        mp.undo()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags


def test_dag_ids_are_the_contract_ids_and_files_are_named_by_them(dagbag):
    assert set(dagbag.dag_ids) == set(CHECK_IDS)
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", CHECK_IDS)
def test_each_dag_is_well_kept(dagbag, dag_id):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import CronTriggerTimetable

    dag = dagbag.dags[dag_id]
    assert dag.tags and "revleak" in dag.tags
    assert dag.doc_md and dag.dag_id in dag.doc_md
    if dag_id != ON_CHANGE:  # scheduled on Assets: test_the_change_check_runs_on_price_assets
        assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.max_active_runs == 1
    assert not dag.catchup
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow"
        assert task.retries >= 2
        notifiers = task.on_failure_callback
        notifiers = notifiers if isinstance(notifiers, list) else [notifiers]
        assert any(isinstance(n, SmtpNotifier) and n.smtp_conn_id == "revleak_alerts"
                   for n in notifiers)
    for name, param in dag.params.items():
        assert param.schema.get("type"), f"{dag.dag_id}.{name} needs a JSON-schema type"


def test_params_accept_defaults_and_reject_a_bad_value(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags["booked_vs_billed_daily"].params)
    assert params.validate()["dry_run"] is False
    params["tolerance_pct"] = 2.5
    for bad in (500, "lots", -1):
        with pytest.raises(ParamValidationError):
            params["tolerance_pct"] = bad


@pytest.mark.parametrize(("dag_id", "fires", "as_of"), [
    ("booked_vs_billed_daily", "2026-10-02T06:00:00+00:00", "2026-10-01"),
    ("billed_vs_collected_weekly", "2026-10-05T06:00:00+00:00", "2026-10-04"),
    ("funnel_leak_weekly", "2026-10-05T06:00:00+00:00", "2026-10-04"),
    ("recognized_vs_collected_quarterly", "2026-10-01T06:00:00+00:00", "2026-09-30"),
    ("pricing_drift_quarterly", "2026-10-01T06:00:00+00:00", "2026-09-30"),
])
def test_a_scheduled_run_checks_the_period_before_the_day_it_fires(dagbag, dag_id, fires,
                                                                    as_of):
    """The logical date of a run is the day it fires (as Airflow's scheduler and backfills
    compute it from the serialized DAG), so its window is the contract's."""
    from datetime import date, datetime, timedelta

    from airflow.serialization.serialized_objects import DagSerialization

    from revleak import pipeline

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
    moment = datetime.fromisoformat(fires)
    infos = list(serialized.iter_dagrun_infos_between(moment - timedelta(hours=1), moment))
    assert [i.run_after for i in infos] == [moment]
    assert infos[0].logical_date == moment
    assert pipeline.check_run(dag_id, infos[0].logical_date, {}).as_of == date.fromisoformat(as_of)


def test_each_run_publishes_its_report_once_its_tickets_had_their_chance(dagbag):
    """publish_report follows record_findings and relay_tickets, and also runs after a dry run
    (relay skipped) or a failed delivery, so every recorded run gets its report."""
    for dag in dagbag.dags.values():
        report = dag.get_task("publish_report")
        assert report.trigger_rule == "all_done"
        assert "relay_tickets" in report.upstream_task_ids
        assert "record_findings" in dag.get_task("relay_tickets").upstream_task_ids
        assert not report.downstream_task_ids


def test_the_change_check_runs_on_price_assets_and_leaves_tickets_to_the_quarterly(dagbag):
    """pricing_drift_on_change is scheduled on any change of the three price tables (the URIs
    `revleak load` announces), checks the quarter so far as of the day before it runs
    whatever started it, and sends price signals like the quarterly audit, which alone opens
    tickets."""
    from datetime import date, datetime

    from airflow.sdk import Asset, AssetAny
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    from revleak import assets, pipeline

    dag = dagbag.dags[ON_CHANGE]
    assert isinstance(dag.timetable, AssetTriggeredTimetable)
    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {a.uri for a in condition.objects if isinstance(a, Asset)} == {
        "revleak://warehouse/rate_cards", "revleak://warehouse/promotions",
        "revleak://warehouse/discount_approvals"} == {assets.uri(t) for t in assets.WATCHED}
    for moment, as_of in (("2026-11-25T14:30:00+00:00", "2026-11-24"),
                          ("2026-10-01T00:10:00+00:00", "2026-09-30")):
        run = pipeline.check_run(ON_CHANGE, datetime.fromisoformat(moment), {})
        assert run.as_of == date.fromisoformat(as_of)
        assert run.params["window_start"] == date(run.as_of.year, 3 * ((run.as_of.month - 1)
                                                                       // 3) + 1, 1)
    for dag_id in (ON_CHANGE, "pricing_drift_quarterly"):
        signals = dagbag.dags[dag_id].get_task("send_price_signals")
        assert "record_findings" in signals.upstream_task_ids
    assert "send_price_signals" not in dagbag.dags["booked_vs_billed_daily"].task_ids
