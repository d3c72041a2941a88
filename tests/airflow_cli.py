"""The `airflow` command line on a throwaway Airflow home whose metadata database lives on the
test PostgreSQL (as `airflow dags test` is used by the contract's judges)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from revleak import connections

ROOT = Path(__file__).resolve().parents[1]


def airflow(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def home_env(pg_server, home: Path, database: str) -> dict:
    """The environment of an Airflow home (created if missing) with this project's DAGs, no
    examples, and a fresh, empty metadata database ``database`` on the PostgreSQL server
    ``pg_server`` (not migrated yet)."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"drop database if exists {database} with (force)")
        admin.execute(f"create database {database}")
    home.mkdir(parents=True, exist_ok=True)
    socket = connections.parse(pg_server.get_uri(), "x").extra["host"]
    return {**os.environ, "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                f"postgresql+psycopg2://postgres@/{database}?host={socket}"}


def airflow_home(pg_server, home: Path, database: str = "airflow_meta") -> dict:
    """The environment of a migrated Airflow home whose metadata database is ``database`` on
    the test server."""
    env = home_env(pg_server, home, database)
    airflow(env, "db", "migrate")
    return env
