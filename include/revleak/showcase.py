"""The newcomer's path on the embedded default: the demo (demo company → load → every DAG run
through Airflow for the demo's dates → what was found and where it is), the Airflow UI on
the same embedded server, and starting over.

What the demo leaves behind: every DAG **unpaused** (``catchup=False``), so a backfill from
the UI runs at once. When the UI starts, the scheduler first creates each DAG's latest
scheduled run; ``revleak ui`` announces the URL only after that, so a backfill created from
the UI finds that run instead of racing it for the same logical date (the race ends in
``UniqueViolation dag_run_dag_id_logical_date_key`` inside the scheduler). The demo's own
runs use the scheduled logical dates (the DAG's hour), so they are those dates' runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path

import psycopg
import requests

from revleak import demo, findings, loader, pipeline, price_signals, warehouse
from revleak.config import CHECK_IDS, PROJECT_ROOT, load_config
from revleak.errors import RevleakError
from revleak.tickets import relay

DAGS_FOLDER = PROJECT_ROOT / "dags"
PLUGINS_FOLDER = PROJECT_ROOT / "plugins"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
ADMIN = "admin"
MARKS = ("pgdata", "demo", "airflow")  # a folder holding none of these is not revleak's home


def airflow_exe() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def passwords_file(home: Path) -> Path:
    """The simple auth manager's password file: one admin with a password made once."""
    path = home / "airflow" / "passwords.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({ADMIN: secrets.token_urlsafe(12)}))
        path.chmod(0o600)
    return path


def airflow_env(home: Path) -> dict[str, str]:
    """Environment for the local Airflow: its own home, this project's DAGs and plugin,
    examples off, one admin login, and a metadata database on the embedded PostgreSQL
    unless one is configured."""
    env = {**os.environ, "AIRFLOW_HOME": str(home / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "REVLEAK_HOME": str(home),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(home))}
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in os.environ:
        uri = warehouse.embedded_server().get_uri()
        with psycopg.connect(uri, autocommit=True) as admin, \
                contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a second demo: reuse
            admin.execute("create database airflow")
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
            f"postgresql+psycopg2://postgres@/airflow?host={warehouse.socket_dir()}")
    return env


def airflow(env: dict, log: Path, *args: str) -> None:
    """Run an ``airflow`` command, its (long) log to a file; fail with a pointer to it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        code = subprocess.call([airflow_exe(), *args], env=env, stdout=fh,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RevleakError(f"`airflow {' '.join(args)}` failed (exit {code}); see {log}: "
                           + " | ".join(tail)[-400:])


def scheduled_logical_date(dag_id: str, day: str) -> str:
    """The logical date the scheduler gives the DAG's run on ``day`` (its hour, company tz)."""
    config = load_config()
    hour = config.rules[dag_id]["schedule_hour"]
    return datetime.combine(date.fromisoformat(day), clock(hour), tzinfo=config.tz).isoformat()


def ui_pid(home: Path) -> int | None:
    """The pid of a running ``revleak ui`` on this home, if any."""
    try:
        pid = int((home / "ui.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_over(home: Path, say=print) -> None:
    """Stop the embedded PostgreSQL and wipe revleak's home (its data, demo, Airflow, logs)."""
    if not home.exists():
        return
    if any(home.iterdir()) and not any((home / mark).exists() for mark in MARKS):
        raise RevleakError(f"{home} does not look like revleak's home (no pgdata, demo or "
                           "airflow in it); not wiping it: check REVLEAK_HOME")
    if pid := ui_pid(home):
        raise RevleakError(f"the Airflow UI is running on this data (pid {pid}); stop it with "
                           "Ctrl-C, then start over")
    if warehouse.stop_embedded():
        say("    stopped the embedded PostgreSQL")
    shutil.rmtree(home)


def report_store() -> str:
    from revleak.config import load_config
    from revleak.reports import storage

    return storage.describe(storage.root(load_config()))


def run(seed: int = 7, scale: str = "small", fresh: bool = False, say=print) -> int:
    home = warehouse.revleak_home()
    if fresh:
        say(f"0/4 starting over: wiping the embedded PostgreSQL, demo and Airflow in {home}")
        start_over(home, say)
    data = home / "demo"
    say(f"1/4 generating the demo company (seed {seed}, {scale}) in {data}")
    manifest = demo.generate(data, seed=seed, scale=scale)
    say(f"    {sum(manifest['rows'].values()):,} rows, {len(manifest['leaks'])} seeded leaks, "
        f"{len(manifest['decoys'])} decoys")

    say("2/4 loading it into the warehouse")
    with warehouse.connect() as conn:
        where = warehouse.describe(warehouse.connection_params())
        warehouse.migrate(conn)
        _, results = loader.load(conn, data, warn=lambda line: say(f"    {line}"))
    say("    " + loader.format_summary(results).replace("\n", "\n    "))

    say("3/4 running the DAGs through Airflow (airflow dags test, logs in "
        f"{home / 'logs'})")
    env = airflow_env(home)
    airflow(env, home / "logs" / "airflow-db-migrate.log", "db", "migrate")
    ran = []
    for dag_id, dates in manifest["runs"].items():
        if not (DAGS_FOLDER / f"{dag_id}.py").exists():
            continue
        logical_date = scheduled_logical_date(dag_id, dates["logical_date"])
        say(f"    {dag_id} for logical date {logical_date} (checks as of {dates['as_of']})")
        airflow(env, home / "logs" / f"{dag_id}.log", "dags", "test", dag_id, logical_date)
        ran.append((dag_id, dates["as_of"]))
    # unpaused, so a backfill from the UI runs at once and a change check hears its Assets
    # (see the module's docstring)
    airflow(env, home / "logs" / "airflow-dags-unpause.log", "dags", "unpause", "-y",
            "--treat-dag-id-as-regex", "^(" + "|".join(CHECK_IDS) + ")$")

    say("4/4 what was found")
    with warehouse.connect() as conn:
        for dag_id, as_of in ran:
            say(pipeline.format_summary(findings.summarize(conn, dag_id, as_of)))
        tickets = dict(conn.execute("select status, count(*) from revleak.ticket_outbox"
                                    " group by status").fetchall())
        signals = price_signals_summary(conn)
    destination = ("delivered to the ticket system" if os.environ.get(relay.ENV_VAR)
                   else "waiting in the outbox: set AIRFLOW_CONN_REVLEAK_TICKETS to deliver them")
    states = ", ".join(f"{n} {s}" for s, n in tickets.items())
    say(f"tickets: {sum(tickets.values())} events ({states}); {destination}")
    say(signals)
    say(f"\nwarehouse: {where} (schema revleak)\n"
        f"findings:  .venv/bin/revleak findings   (--format json for the contract's JSON lines)\n"
        f"tickets:   .venv/bin/revleak tickets\n"
        f"reports:   {report_store()} (an HTML report and a CSV per run)\n"
        f"demo data: {data} (manifest.json lists every seeded leak)\n"
        f"airflow:   python3 bootstrap.py ui   (AIRFLOW_HOME={home / 'airflow'}; logs in "
        f"{home / 'logs'})\n"
        f"stop:      python3 bootstrap.py stop (the embedded PostgreSQL)")
    return 0


def price_signals_summary(conn: psycopg.Connection) -> str:
    """One line on the price signals (docs/pricing.md): how many subscription drifts, the
    first one raised, and whether they went out or wait for their connection."""
    counts = dict(conn.execute("select status, count(*) from revleak.price_signals"
                               " group by status").fetchall())
    if not counts:
        return "price signals: none (no subscription drift beyond its limit)"
    name, sku, billed, card, ccy, check, as_of = conn.execute(
        "select payload ->> 'customer_name', payload ->> 'sku', payload ->> 'billed_price',"
        " payload ->> 'rate_card_price', payload ->> 'currency', check_id, as_of"
        " from revleak.price_signals order by signal_id limit 1").fetchone()
    waiting = counts.get("pending", 0)
    if not waiting:
        where = f"delivered to the connection {price_signals.CONN_ID}"
    elif os.environ.get(price_signals.ENV_VAR):
        where = (f"{waiting} not delivered yet to {price_signals.CONN_ID} (see the "
                 "send_price_signals task's log); the next run of a pricing DAG sends them")
    else:
        where = (f"{waiting} wait for the connection {price_signals.CONN_ID}: set "
                 f"{price_signals.ENV_VAR} (a webhook) to send them")
    return (f"price signals: {sum(counts.values())} subscription drifts (first: {name}, {sku} "
            f"billed {billed} vs rate card {card} {ccy} a period, raised by {check} as of "
            f"{as_of}); {where}")


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            raise RevleakError(f"port {port} on {host} is in use (another Airflow?); pass "
                               f"--port, e.g. --port {port + 1}") from None


class LocalAirflow:
    """Airflow's API server, scheduler and DAG processor as child processes, each in its own
    process group, so stopping one stops everything it started (task and parser processes)."""

    def __init__(self, env: dict[str, str], logs: Path, port: int, host: str = "127.0.0.1",
                 components: tuple[str, ...] = COMPONENTS):
        self.url = f"http://127.0.0.1:{port}"
        self.port, self.host, self.logs, self.components = port, host, logs, components
        self.env = {**env, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": host,
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/"}
        self.procs: dict[str, subprocess.Popen] = {}
        self.token: str | None = None

    def start(self) -> LocalAirflow:
        ensure_port_free(self.host, self.port)
        self.logs.mkdir(parents=True, exist_ok=True)
        airflow(self.env, self.logs / "airflow-db-migrate.log", "db", "migrate")
        for name in self.components:
            args = [name, "--port", str(self.port)] if name == "api-server" else [name]
            with open(self.logs / f"{name}.log", "w") as log:
                self.procs[name] = subprocess.Popen(
                    [airflow_exe(), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def stopped(self) -> str | None:
        """The first component that exited, if any."""
        return next((n for n, p in self.procs.items() if p.poll() is not None), None)

    def wait_for(self, ready, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            if name := self.stopped():
                raise RevleakError(f"the Airflow {name} stopped (exit {self.procs[name].poll()})"
                                   f" while waiting for {what}; see {self.logs / name}.log")
            time.sleep(1)
        raise RevleakError(f"{what} not ready after {seconds:.0f}s; see the logs in {self.logs}")

    def login(self, password: str, seconds: float = 180) -> None:
        self.wait_for(lambda: requests.get(f"{self.url}/api/v2/version", timeout=2).ok,
                      seconds, "the Airflow API server")
        self.token = requests.post(f"{self.url}/auth/token", timeout=10, json={
            "username": ADMIN, "password": password}).json()["access_token"]

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, f"{self.url}/api/v2{path}", headers=headers,
                                timeout=30, **kw)

    def scheduled_runs_created(self, dag_ids=CHECK_IDS) -> bool:
        """Has the scheduler created every unpaused DAG's runs up to now? After that, a
        backfill of any past date finds that date's scheduled run instead of racing it."""
        now = datetime.now(UTC)
        for dag_id in dag_ids:
            reply = self.api("GET", f"/dags/{dag_id}")
            if reply.status_code == 404:  # never parsed: nothing to schedule
                continue
            reply.raise_for_status()
            dag = reply.json()
            due = dag["next_dagrun_run_after"]
            if not dag["is_paused"] and due and datetime.fromisoformat(due) <= now:
                return False
        return True

    def stop(self, grace: float = 30) -> None:
        """SIGTERM to each component's process group; SIGKILL what is left after ``grace``."""
        for p in self.procs.values():
            _signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(p.pid, signal.SIGKILL)  # stragglers of a group whose leader is done
            p.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, sig)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def ui(port: int = 8080, host: str = "127.0.0.1", say=print) -> int:
    """The Airflow UI on the embedded server until Ctrl-C; then every component stops."""
    home = warehouse.revleak_home()
    if pid := ui_pid(home):
        raise RevleakError(f"the Airflow UI already runs on this data (pid {pid})")
    ensure_port_free(host, port)
    env = airflow_env(home)
    password = json.loads(passwords_file(home).read_text())[ADMIN]
    cluster = LocalAirflow(env, home / "logs", port, host)
    # Ctrl-C and `kill` stop it, also when it was started from a script whose shell left
    # SIGINT ignored (background jobs of a non-interactive shell inherit that)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    say(f"starting Airflow on {cluster.url} (api-server, scheduler, dag-processor; "
        f"logs in {home / 'logs'}) …")
    (home / "ui.pid").write_text(str(os.getpid()))
    try:
        cluster.start()
        cluster.login(password)
        try:
            cluster.wait_for(cluster.scheduled_runs_created, 180, "the scheduler's first runs")
            late = ""
        except RevleakError:
            if cluster.stopped():
                raise
            late = ("\nnote: the scheduler has not made every DAG's latest run yet (one still "
                    "running?); let it, before a backfill that includes that date")
        say(f"\nAirflow UI:  {cluster.url}\nlogin:       {ADMIN} / {password}   "
            f"(in {passwords_file(home)})\nleakage:     {cluster.url}/revleak/\n"
            "Ctrl-C stops Airflow; `python3 bootstrap.py stop` then stops the embedded "
            "PostgreSQL." + late)
        while not (name := cluster.stopped()):
            time.sleep(1)
        raise RevleakError(f"the Airflow {name} stopped (exit {cluster.procs[name].poll()}); "
                           f"see {home / 'logs' / name}.log")
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan them
        say("\nstopping Airflow …")
        return 0
    finally:
        cluster.stop()
        (home / "ui.pid").unlink(missing_ok=True)
        say("Airflow stopped")
