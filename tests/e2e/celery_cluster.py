"""A production-shaped Airflow on one machine for end-to-end tests: Debian's ``redis-server``
as the Celery broker, a metadata PostgreSQL server of its own (never the warehouse's), the API
server, scheduler and DAG processor with the CeleryExecutor, and ``airflow celery worker``
processes started, and killed, one by one. Each worker reports the name it was given as the
hostname of the task instances it runs, as separate machines would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PASSWORD = "revleak-celery-e2e"
WORKER_ENV = "REVLEAK_E2E_WORKER"
# Short enough that losing a worker costs seconds, not the production minutes: a task whose
# worker died is failed after the heartbeat timeout and retried after the retry delay; a task
# the dead worker had taken off the queue but not started is queued again after the timeout.
TIMEOUTS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
}
RETRY_DELAY_SECONDS = 5
# A cluster policy (Airflow's own hook for operators' rules) in $AIRFLOW_HOME/config: the DAGs
# keep their production retry delay of minutes; this cluster waits seconds.
LOCAL_SETTINGS = f'''from datetime import timedelta


def task_policy(task):
    task.retry_delay = timedelta(seconds={RETRY_DELAY_SECONDS})
'''


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a worker: the name the harness gave it."""
    return os.environ.get(WORKER_ENV) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and everything it started (Airflow puts each task in its own
    process group), as when the machine under it dies."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    proc.wait(30)


def wait_for(ready: Callable[[], bool], seconds: float, what: str, logs: Path,
             alive: Callable[[], bool] = lambda: True) -> None:
    """Poll ``ready`` until it is true; on time-out or a dead process, fail with the logs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive():
        try:
            if ready():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(1)
    tails = {p.name: p.read_text(errors="replace")[-3000:] for p in sorted(logs.glob("*.log"))}
    raise AssertionError(f"{what} not ready after {seconds:.0f}s: {tails}")


class Redis:
    """Debian's redis-server on a free loopback port, nothing persisted."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def __enter__(self) -> Redis:
        import redis

        log = open(self.home / "redis.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.home)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(client.ping, 30, "redis-server", self.home,
                 alive=lambda: self.proc.poll() is None)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class CeleryAirflow:
    """API server, scheduler and DAG processor with the CeleryExecutor on ``broker_url``,
    metadata in ``metadata_uri`` (``postgresql://``), and Celery workers by name."""

    def __init__(self, home: Path, metadata_uri: str, broker_url: str,
                 extra_env: dict[str, str]):
        self.home = home
        self.metadata_uri = metadata_uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
        sqlalchemy_uri = metadata_uri.replace("postgresql://", "postgresql+psycopg2://", 1)
        self.env = {
            **os.environ, **extra_env, **TIMEOUTS,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_uri,
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sqlalchemy_uri}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "celery-e2e-jwt-secret",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # only the runs a test asks for (backfills, triggers); no scheduled run of today
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.token: str | None = None

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115
        self.procs[name] = subprocess.Popen([AIRFLOW, *args], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def start(self, workers: tuple[str, ...], concurrency: int = 4) -> CeleryAirflow:
        """Migrate the metadata database, then start the components and one ``airflow celery
        worker`` per name (on the default queue, distinct hostnames) and wait until the API
        answers and every worker is ready for work."""
        migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True,
                                 text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        self._spawn("api-server", ["api-server", "--port", str(self.port)], self.env)
        self._spawn("scheduler", ["scheduler"], self.env)
        self._spawn("dag-processor", ["dag-processor"], self.env)
        for name in workers:
            env = {**self.env, WORKER_ENV: name,
                   "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                   "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            self._spawn(name, ["celery", "worker", "-H", name, "-q", "default", "-c",
                               str(concurrency), "--pid", str(self.home / f"{name}.pid")], env)
        self.wait_for(lambda: requests.get(f"{self.url}/api/v2/version", timeout=2).ok, 180,
                      "the API server")
        self.token = requests.post(f"{self.url}/auth/token", timeout=10, json={
            "username": "admin", "password": PASSWORD}).json()["access_token"]
        for name in workers:
            self.wait_for(lambda n=name: self.worker_answers(n), 180, f"celery worker {name}")
        return self

    def worker_answers(self, name: str) -> bool:
        """The worker answers a Celery ping through the broker."""
        from celery import Celery

        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"])
        try:
            return bool(app.control.ping(destination=[f"celery@{name}"], timeout=1.0))
        finally:
            app.close()

    def kill_worker(self, name: str) -> None:
        kill_tree(self.procs.pop(name))

    def stop(self) -> None:
        for name in [n for n in self.procs if n not in ("api-server", "scheduler",
                                                        "dag-processor")]:
            self.kill_worker(name)
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                kill_tree(p)

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, f"{self.url}/api/v2{path}", headers=headers,
                                timeout=30, **kw)

    def metadata(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows from the Airflow metadata database."""
        with psycopg.connect(self.metadata_uri) as conn:
            return conn.execute(sql, params).fetchall()

    def wait_for(self, ready: Callable[[], bool], seconds: float, what: str) -> None:
        wait_for(ready, seconds, what, self.home, self.alive)
