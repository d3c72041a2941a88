"""A running Airflow for end-to-end tests: API server, scheduler and DAG processor with the
LocalExecutor, a throwaway metadata database on the test PostgreSQL, this project's DAGs and
the simple auth manager with a known admin password."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "revleak-e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningAirflow:
    def __init__(self, home: Path, metadata_uri: str, extra_env: dict[str, str],
                 components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")):
        self.components = components
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({"admin": PASSWORD}))
        self.env = {
            **os.environ, **extra_env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_uri,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }
        self.procs: list[subprocess.Popen] = []
        self.token: str | None = None

    def airflow(self, *args: str) -> None:
        exe = Path(sys.executable).with_name("airflow")
        subprocess.run([str(exe), *args], env=self.env, check=True, capture_output=True,
                       timeout=300, stdin=subprocess.DEVNULL)

    def start(self) -> RunningAirflow:
        self.airflow("db", "migrate")
        exe = str(Path(sys.executable).with_name("airflow"))
        for name in self.components:
            component = [name, "--port", str(self.port)] if name == "api-server" else [name]
            log = open(self.home / f"{component[0]}.log", "w")  # noqa: SIM115
            self.procs.append(subprocess.Popen([exe, *component], env=self.env, stdout=log,
                                               stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))
        self.wait_for(lambda: requests.get(f"{self.url}/api/v2/version", timeout=2).ok, 120,
                   "the API server")
        self.token = requests.post(f"{self.url}/auth/token", timeout=10, json={
            "username": "admin", "password": PASSWORD}).json()["access_token"]
        return self

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, f"{self.url}/api/v2{path}", headers=headers,
                                timeout=30, **kw)

    def wait_for(self, ready, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(1)
        logs = {p.name: p.read_text()[-2000:] for p in self.home.glob("*.log")}
        raise AssertionError(f"{what} not ready after {seconds}s: {logs}")

