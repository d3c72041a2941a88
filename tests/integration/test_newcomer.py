"""The newcomer's path as a stranger walks it, on a home of its own (REVLEAK_HOME, the
embedded PostgreSQL inside it): the demo twice (exit 0 both times, the same findings), the
Airflow UI from one command (URL and login printed, DAGs unpaused, a backfill from the API
runs at once, Ctrl-C stops every process it started), the embedded server started once
however many relay threads ask for it and stopped by one command, `--fresh` starting over,
and a malformed connection never showing its password in a task's log."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
import requests

from revleak import showcase, warehouse
from revleak.config import CHECK_IDS
from revleak.errors import RevleakError
from revleak.registry import CHECKS
from tests.e2e.airflow_cluster import free_port
from tests.ticket_fakes import WebhookServer

pytestmark = pytest.mark.slow
PASSWORD = "Corr3ct-H0rse-B4ttery"
OUTSIDE = ("AIRFLOW_CONN_REVLEAK_WAREHOUSE", "AIRFLOW_CONN_REVLEAK_TICKETS", "AIRFLOW_HOME",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__DAGS_FOLDER")


def newcomer_env(home: Path, **extra: str) -> dict[str, str]:
    """A shell with nothing configured: the embedded default in ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    return {**env, "REVLEAK_HOME": str(home), **extra}


def revleak(home: Path, *args: str, timeout: float = 900, **extra: str):
    return subprocess.run([sys.executable, "-m", "revleak.cli", *args], capture_output=True,
                          text=True, env=newcomer_env(home, **extra), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def found(home: Path) -> str:
    result = revleak(home, "findings", "--format", "json", "--status", "all")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("newcomer") / ".revleak"
    first = revleak(home, "demo")
    try:
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        yield home, first
    finally:
        revleak(home, "stop")


def test_the_demo_runs_twice_with_the_same_findings(demo_home):
    home, first = demo_home
    before, outbox = found(home), revleak(home, "tickets").stdout.splitlines()[0]
    assert len(before.splitlines()) >= 40  # the demo's seeded leaks
    second = revleak(home, "demo")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert found(home) == before
    assert revleak(home, "tickets").stdout.splitlines()[0] == outbox  # no duplicate events

    def what_was_found(out: str) -> str:
        return out[out.index("4/4"):]

    assert what_was_found(second.stdout) == what_was_found(first.stdout)

    # `revleak findings ... | head -1`: the pipe closes, revleak ends without a word
    proc = subprocess.Popen([sys.executable, "-m", "revleak.cli", "findings", "--format",
                             "json", "--evidence", "--status", "all"], env=newcomer_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["fingerprint"]
    proc.stdout.close()
    assert proc.wait(120) == 141 and proc.stderr.read() == ""


def cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:  # it ended meanwhile (a finished task, a parser)
        return []


def read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def test_the_ui_runs_a_backfill_at_once_and_stops_on_ctrl_c(demo_home):
    home, _ = demo_home
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "revleak.cli", "ui", "--port", str(port)],
                          env=newcomer_env(home), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(ui.stdout, lines), daemon=True).start()
    said, started = "", []
    try:
        while "login:" not in said:
            said += lines.get(timeout=600)
        url = re.search(r"Airflow UI:\s+(\S+)", said).group(1)
        user, password = re.search(r"login:\s+(\S+) / (\S+)", said).groups()
        assert url == f"http://127.0.0.1:{port}" and user == "admin"
        assert json.loads((home / "airflow" / "passwords.json").read_text()) == {
            "admin": password}
        token = requests.post(f"{url}/auth/token", timeout=30, json={
            "username": user, "password": password}).json()["access_token"]

        def api(method: str, path: str, **kw) -> requests.Response:
            return requests.request(method, f"{url}/api/v2{path}", timeout=30,
                                    headers={"Authorization": f"Bearer {token}"}, **kw)

        now = datetime.now(UTC)
        for dag_id in CHECK_IDS:  # unpaused, and the scheduler made the latest runs first
            dag = api("GET", f"/dags/{dag_id}").json()
            assert dag["is_paused"] is False, dag
            if CHECKS[dag_id].cadence != "on_change":  # a change check waits for its Assets
                assert datetime.fromisoformat(dag["next_dagrun_run_after"]) > now, dag

        # a backfill from the UI's dialog (this API call) runs at once
        created = api("POST", "/backfills", json={
            "dag_id": "booked_vs_billed_daily", "from_date": "2026-09-30T00:00:00Z",
            "to_date": "2026-09-30T23:59:59Z", "max_active_runs": 1})
        assert created.status_code == 200, created.text
        deadline = time.monotonic() + 600
        state = None
        while state != "success" and time.monotonic() < deadline:
            runs = [r for r in api("GET", "/dags/booked_vs_billed_daily/dagRuns").json()[
                "dag_runs"] if r["run_type"] == "backfill"]
            state = runs[0]["state"] if runs else None
            assert state != "failed", runs
            time.sleep(3)
        assert state == "success", runs

        assert len(psutil.Process(ui.pid).children()) == 3  # api-server, scheduler, processor
        started = psutil.Process(ui.pid).children(recursive=True)  # and what they started
    finally:
        ui.send_signal(signal.SIGINT)  # Ctrl-C
        code = ui.wait(120)
    assert code == 0
    while not lines.empty():
        said += lines.get()
    assert "Airflow stopped" in said
    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], [(p.pid, cmdline(p)) for p in alive]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/v2/version", timeout=5)
    assert not (home / "ui.pid").exists()


@pytest.mark.parametrize(("variable", "value", "task", "says"), [
    ("AIRFLOW_CONN_REVLEAK_WAREHOUSE", f"postgresql:/postgres:{PASSWORD}@db.internal:5432/db",
     "check_sources", "is not a connection URI"),
    ("AIRFLOW_CONN_REVLEAK_TICKETS", json.dumps({
        "conn_type": "https", "host": "acme.atlassian.net", "password": PASSWORD,
        "extra": {"provider": "jira", "project": "REV", "timeout": "abc"}}),
     "relay_tickets", "extra.timeout must be a number of seconds"),
])
def test_a_malformed_connection_never_shows_its_password_in_a_task_run(
        demo_home, monkeypatch, variable, value, task, says):
    home, _ = demo_home
    for name in OUTSIDE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REVLEAK_HOME", str(home))
    env = {**showcase.airflow_env(home), variable: value}
    result = subprocess.run([showcase.airflow_exe(), "tasks", "test", "booked_vs_billed_daily",
                             task, "2026-10-02T06:00:00+00:00"], env=env, capture_output=True,
                            text=True, timeout=600, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert says in output, output[-3000:]  # the task failed on the connection, as it should
    assert PASSWORD not in output
    logs = Path(env["AIRFLOW_HOME"]) / "logs"
    leaked = [p for p in logs.rglob("*") if p.is_file() and PASSWORD in p.read_text(
        errors="replace")]
    assert leaked == []


def test_the_embedded_server_starts_once_for_all_relay_threads_and_stops(tmp_path):
    home = tmp_path / ".revleak"
    assert revleak(home, "migrate").returncode == 0
    script = ("import threading\nfrom revleak import warehouse\nfailed = []\n"
              "def go():\n    try:\n        warehouse.connect().close()\n"
              "    except BaseException as e:\n        failed.append(repr(e))\n"
              "threads = [threading.Thread(target=go) for _ in range(6)]\n"
              "[t.start() for t in threads]\n[t.join() for t in threads]\nprint(failed)\n")
    with WebhookServer(secret="newcomer") as hook:
        tickets = hook.url.replace("http://", "http://x:newcomer@", 1) + "?provider=webhook"
        for _ in range(2):  # each time the server is down and several threads start it
            assert "stopped the embedded PostgreSQL" in revleak(home, "stop").stdout
            threads = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                     text=True, env=newcomer_env(home), timeout=300)
            assert threads.stdout.strip() == "[]", threads.stdout + threads.stderr
            assert "stopped the embedded PostgreSQL" in revleak(home, "stop").stdout
            relayed = revleak(home, "tickets", "--relay",
                              AIRFLOW_CONN_REVLEAK_TICKETS=tickets)
            assert relayed.returncode == 0 and "Traceback" not in relayed.stderr, relayed
    assert "stopped the embedded PostgreSQL" in revleak(home, "stop").stdout
    assert "is not running" in revleak(home, "stop").stdout


def test_fresh_starts_over(tmp_path, monkeypatch):
    home = tmp_path / ".revleak"
    assert revleak(home, "migrate").returncode == 0  # the embedded server runs
    for made in ("demo", "airflow", "logs", "reports"):
        (home / made).mkdir()
        (home / made / "file").write_text("x")
    monkeypatch.setenv("REVLEAK_HOME", str(home))
    (home / "ui.pid").write_text(str(os.getpid()))  # a UI is running on this data
    with pytest.raises(RevleakError, match="the Airflow UI is running"):
        showcase.start_over(home, say=lambda _: None)
    (home / "ui.pid").unlink()
    pid = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
    showcase.start_over(home, say=lambda _: None)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not home.exists() and not warehouse.stop_embedded()

    elsewhere = tmp_path / "documents"  # REVLEAK_HOME set to a folder that is not revleak's
    elsewhere.mkdir()
    (elsewhere / "thesis.txt").write_text("mine")
    with pytest.raises(RevleakError, match="does not look like revleak's home"):
        showcase.start_over(elsewhere, say=lambda _: None)
    assert (elsewhere / "thesis.txt").read_text() == "mine"
