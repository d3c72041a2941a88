"""The main job, end to end on the embedded default: demo company → load → every DAG run
through Airflow for the demo's dates → a summary of what was found and where it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from revleak import demo, findings, loader, pipeline, warehouse
from revleak.config import PROJECT_ROOT
from revleak.errors import RevleakError
from revleak.tickets import relay

DAGS_FOLDER = PROJECT_ROOT / "dags"


def airflow_env(home: Path) -> dict[str, str]:
    """Environment for a local Airflow: its own home, this project's DAGs, examples off, and a
    metadata database on the embedded PostgreSQL unless one is configured."""
    env = {**os.environ, "AIRFLOW_HOME": str(home / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "REVLEAK_HOME": str(home)}
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in os.environ:
        srv = warehouse.embedded_server()
        with psycopg.connect(srv.get_uri(), autocommit=True) as admin:
            if not admin.execute("select from pg_database where datname = 'airflow'").fetchone():
                admin.execute("create database airflow")
        socket = warehouse.socket_dir()
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
            f"postgresql+psycopg2://postgres@/airflow?host={socket}")
    return env


def airflow(env: dict, log: Path, *args: str) -> None:
    """Run an ``airflow`` command, its (long) log to a file; fail with a pointer to it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("airflow")
    with open(log, "w") as fh:
        code = subprocess.call([str(exe), *args], env=env, stdout=fh, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    if code:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RevleakError(f"`airflow {' '.join(args)}` failed (exit {code}); see {log}: "
                           + " | ".join(tail)[-400:])


def run(seed: int = 7, scale: str = "small", say=print) -> int:
    home = warehouse.revleak_home()
    data = home / "demo"
    say(f"1/4 generating the demo company (seed {seed}, {scale}) in {data}")
    manifest = demo.generate(data, seed=seed, scale=scale)
    say(f"    {sum(manifest['rows'].values()):,} rows, {len(manifest['leaks'])} seeded leaks, "
        f"{len(manifest['decoys'])} decoys")

    say("2/4 loading it into the warehouse")
    with warehouse.connect() as conn:
        where = warehouse.describe(warehouse.connection_params())
        warehouse.migrate(conn)
        _, results = loader.load(conn, data)
    say("    " + loader.format_summary(results).replace("\n", "\n    "))

    say("3/4 running the DAGs through Airflow (airflow dags test, logs in "
        f"{home / 'logs'})")
    env = airflow_env(home)
    airflow(env, home / "logs" / "airflow-db-migrate.log", "db", "migrate")
    ran = []
    for dag_id, dates in manifest["runs"].items():
        if not (DAGS_FOLDER / f"{dag_id}.py").exists():
            continue
        say(f"    {dag_id} for logical date {dates['logical_date']} "
            f"(checks as of {dates['as_of']})")
        airflow(env, home / "logs" / f"{dag_id}.log", "dags", "test", dag_id,
                dates["logical_date"])
        ran.append((dag_id, dates["as_of"]))

    say("4/4 what was found")
    with warehouse.connect() as conn:
        for dag_id, as_of in ran:
            say(pipeline.format_summary(findings.summarize(conn, dag_id, as_of)))
        tickets = dict(conn.execute("select status, count(*) from revleak.ticket_outbox"
                                    " group by status").fetchall())
    destination = ("delivered to the ticket system" if os.environ.get(relay.ENV_VAR)
                   else "waiting in the outbox: set AIRFLOW_CONN_REVLEAK_TICKETS to deliver them")
    states = ", ".join(f"{n} {s}" for s, n in tickets.items())
    say(f"tickets: {sum(tickets.values())} events ({states}); {destination}")
    say(f"\nwarehouse: {where} (schema revleak)\n"
        f"findings:  .venv/bin/revleak findings   (--format json for the contract's JSON lines)\n"
        f"tickets:   .venv/bin/revleak tickets\n"
        f"demo data: {data} (manifest.json lists every seeded leak)\n"
        f"airflow:   AIRFLOW_HOME={home / 'airflow'}; logs in {home / 'logs'}")
    return 0
