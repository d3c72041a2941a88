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
    assert set(dagbag.dag_ids) <= set(CHECK_IDS)
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_each_dag_is_well_kept(dagbag):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import CronTriggerTimetable

    for dag in dagbag.dags.values():
        assert dag.tags and "revleak" in dag.tags
        assert dag.doc_md and dag.dag_id in dag.doc_md
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
