"""A running Airflow for end-to-end tests: the launcher `revleak ui` uses (API server,
scheduler and DAG processor with the LocalExecutor) on a throwaway metadata database on the
test PostgreSQL, this project's DAGs and the simple auth manager with known users (the admin
by default; all with one password). Without a DAG processor the DAGs are parsed into the
metadata database before the API server starts, so its auth manager knows them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from revleak.errors import RevleakError
from revleak.showcase import COMPONENTS, LocalAirflow, airflow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "revleak-e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningAirflow(LocalAirflow):
    def __init__(self, home: Path, metadata_uri: str, extra_env: dict[str, str],
                 components: tuple[str, ...] = COMPONENTS,
                 users: dict[str, str] | None = None):
        """``users``: name → role, or role:team in multi-team mode (``[core] multi_team``
        in ``extra_env``, the teams named by the DAG bundles of ``dag_bundle_config_list``)."""
        self.home = home
        users = users or {"admin": "admin"}
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps(dict.fromkeys(users, PASSWORD)))
        super().__init__({
            **os.environ, **extra_env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_uri,
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:{role}" for name, role in users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }, home, free_port(), components=components)

    def start(self) -> RunningAirflow:
        if "dag-processor" not in self.components:
            airflow(self.env, self.logs / "airflow-db-migrate.log", "db", "migrate")
            if self.env.get("AIRFLOW__CORE__MULTI_TEAM") == "True":  # the bundles' teams
                airflow(self.env, self.logs / "airflow-teams-sync.log", "teams", "sync")
            airflow(self.env, self.logs / "airflow-dags-reserialize.log", "dags", "reserialize")
        super().start()
        self.login(PASSWORD, 120)
        return self

    def wait_for(self, ready, seconds: float, what: str) -> None:
        """As the launcher's, with the tail of every component's log when it gives up."""
        try:
            super().wait_for(ready, seconds, what)
        except RevleakError as e:
            logs = {p.name: p.read_text()[-2000:] for p in self.home.glob("*.log")}
            raise AssertionError(f"{e}: {logs}") from None
