"""A running Airflow for end-to-end tests: the launcher `revleak ui` uses (API server,
scheduler and DAG processor with the LocalExecutor) on a fresh metadata database of a test
PostgreSQL, this project's DAGs and the simple auth manager with known users (the admin by
default; all with one password). Without a DAG processor the DAGs are parsed into the
metadata database before the API server starts, so its auth manager knows them. The
CeleryExecutor's cluster (tests/e2e/celery_cluster.py) is this one with a broker and workers.

    with RunningAirflow(pg_server, tmp_path / "airflow", "airflow_e2e", env) as airflow: ...
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import psycopg

from revleak.errors import RevleakError
from revleak.showcase import COMPONENTS, LocalAirflow, airflow
from tests.airflow_cli import ROOT, home_env

PASSWORD = "revleak-e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningAirflow(LocalAirflow):
    def __init__(self, pg_server, home: Path, database: str, extra_env: dict[str, str],
                 components: tuple[str, ...] = COMPONENTS,
                 users: dict[str, str] | None = None):
        """``database``: the metadata database, made afresh on ``pg_server``. ``users``: name →
        role, or role:team in multi-team mode (``[core] multi_team`` in ``extra_env``, the
        teams named by the DAG bundles of ``dag_bundle_config_list``)."""
        env = home_env(pg_server, home, database)
        self.metadata_uri = pg_server.get_uri(database)
        users = users or {"admin": "admin"}
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps(dict.fromkeys(users, PASSWORD)))
        super().__init__({
            **env,
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:{role}" for name, role in users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            **extra_env,
        }, home, free_port(), components=components)

    def start(self) -> RunningAirflow:
        if "dag-processor" not in self.components:
            airflow(self.env, self.logs / "airflow-db-migrate.log", "db", "migrate")
            if self.env.get("AIRFLOW__CORE__MULTI_TEAM") == "True":  # the bundles' teams
                airflow(self.env, self.logs / "airflow-teams-sync.log", "teams", "sync")
            airflow(self.env, self.logs / "airflow-dags-reserialize.log", "dags", "reserialize")
        super().start()
        self.login(PASSWORD)
        return self

    def __enter__(self) -> RunningAirflow:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_for(self, ready, seconds: float, what: str) -> None:
        """As the launcher's, with the tail of every component's log when it gives up."""
        try:
            super().wait_for(ready, seconds, what)
        except RevleakError as e:
            logs = {p.name: p.read_text(errors="replace")[-2000:]
                    for p in sorted(self.logs.glob("*.log"))}
            raise AssertionError(f"{e}: {logs}") from None

    def metadata(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows from the Airflow metadata database."""
        with psycopg.connect(self.metadata_uri) as conn:
            return conn.execute(sql, params).fetchall()

    def unpause(self, dag_ids: Iterable[str]) -> None:
        """Each DAG, once the DAG processor has parsed it, unpaused (as the demo leaves them)."""
        for dag_id in dag_ids:
            self.wait_for(lambda d=dag_id: self.api("GET", f"/dags/{d}").ok, 180,
                          f"{dag_id} to parse")
            assert self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).ok

    def backfill(self, dag_ids: Iterable[str], first: date, last: date) -> None:
        """A backfill of each DAG from ``first`` to ``last`` through the REST API v2 (the call
        the UI's backfill dialog makes), completed runs reprocessed, one run at a time."""
        for dag_id in dag_ids:
            created = self.api("POST", "/backfills", json={
                "dag_id": dag_id, "from_date": f"{first}T00:00:00Z",
                "to_date": f"{last}T23:59:59Z", "reprocess_behavior": "completed",
                "max_active_runs": 1})
            assert created.status_code == 200, created.text

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}).json()[
            "dag_runs"]

    def wait_for_runs(self, expected: dict[str, int], seconds: float,
                      counted: Callable[[dict], bool] = lambda run: True) -> None:
        """Until each DAG has exactly its ``expected`` number of runs (of those ``counted``),
        every one successful; a failed one fails the test with its tasks' states."""

        def finished() -> bool:
            done = True
            for dag_id, n in expected.items():
                runs = [r for r in self.runs(dag_id) if counted(r)]
                failed = [r for r in runs if r["state"] == "failed"]
                assert not failed, self.task_states(dag_id, failed)
                done &= len(runs) == n and all(r["state"] == "success" for r in runs)
            return done

        self.wait_for(finished, seconds, f"the runs {expected}")

    def task_states(self, dag_id: str, runs: list[dict]) -> dict:
        return {r["dag_run_id"]: {t["task_id"]: t["state"] for t in self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{r['dag_run_id']}/taskInstances").json()[
            "task_instances"]} for r in runs}
