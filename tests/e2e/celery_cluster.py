"""A production-shaped Airflow on one machine for end-to-end tests: the running Airflow of
tests/e2e/airflow_cluster.py with the CeleryExecutor, Debian's ``redis-server`` as its broker
and ``airflow celery worker`` processes started, and killed, one by one; its metadata on the
PostgreSQL server it is given (a server of its own, never the warehouse's). Each worker
reports the name it was given as the hostname of the task instances it runs, as separate
machines would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil

from revleak.showcase import airflow_exe
from tests.airflow_cli import ROOT
from tests.e2e.airflow_cluster import RunningAirflow, free_port

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


class CeleryAirflow(RunningAirflow):
    """Only the runs a test asks for (backfills, triggers; no scheduled run of today), on
    ``workers``: one ``airflow celery worker`` per name on the default queue."""

    def __init__(self, pg_server, home: Path, database: str, extra_env: dict[str, str],
                 workers: tuple[str, ...], concurrency: int = 4):
        self.workers, self.concurrency = workers, concurrency
        self.broker_port = free_port()
        super().__init__(pg_server, home, database, {
            **TIMEOUTS,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.broker_port}/0",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            **extra_env})
        self.env["AIRFLOW__CELERY__RESULT_BACKEND"] = \
            "db+" + self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        (home / "config").mkdir(exist_ok=True)
        (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)

    def start(self) -> CeleryAirflow:
        """The broker (nothing persisted), the components, then the workers; ready when every
        worker answers a Celery ping through the broker."""
        self._spawn("redis", ["redis-server", "--port", str(self.broker_port), "--bind",
                              "127.0.0.1", "--save", "", "--appendonly", "no",
                              "--dir", str(self.logs)], self.env)
        self.wait_for(self.broker_answers, 30, "redis-server")
        super().start()
        for name in self.workers:
            self._spawn(name, [airflow_exe(), "celery", "worker", "-H", name, "-q", "default",
                               "-c", str(self.concurrency), "--pid",
                               str(self.logs / f"{name}.pid")],
                        {**self.env, WORKER_ENV: name,
                         "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                         "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})
        for name in self.workers:
            self.wait_for(lambda n=name: self.worker_answers(n), 180, f"celery worker {name}")
        return self

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with open(self.logs / f"{name}.log", "w") as log:
            self.procs[name] = subprocess.Popen(argv, env=env, stdout=log,
                                                stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def broker_answers(self) -> bool:
        import redis

        try:
            with redis.Redis(port=self.broker_port) as client:
                return client.ping()
        except redis.ConnectionError:
            return False

    def worker_answers(self, name: str) -> bool:
        from celery import Celery

        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"])
        try:
            return bool(app.control.ping(destination=[f"celery@{name}"], timeout=1.0))
        finally:
            app.close()

    def kill_worker(self, name: str) -> None:
        kill_tree(self.procs.pop(name))

    def stop(self, grace: float = 30) -> None:
        for name in self.workers:
            if name in self.procs:
                self.kill_worker(name)
        super().stop(grace)
