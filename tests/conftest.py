"""Test fixtures: a real PostgreSQL server (embedded, from PyPI) started by the suite.

Each test gets its own database, cloned from a migrated template, and the
``revleak_warehouse`` connection (AIRFLOW_CONN_REVLEAK_WAREHOUSE) pointing at it.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from pathlib import Path

# Airflow reads its settings at import: give the tests their own home before anything imports it.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="revleak-airflow-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
# The suite's own configuration, never the operator's config/revleak.yaml.
os.environ["REVLEAK_CONFIG"] = str(Path(__file__).resolve().parent / "fixture_config.yaml")

import psycopg
import pytest
from hypothesis import settings

from revleak import warehouse

# Property tests (tests/property): bounded for CI; `HYPOTHESIS_PROFILE=long` for a long run.
settings.register_profile("ci", max_examples=12, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=300, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
_ids = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        srv = pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def template_db(pg_server):
    uri = pg_server.get_uri()
    with psycopg.connect(uri, autocommit=True) as admin:
        admin.execute("drop database if exists revleak_template")
        admin.execute("create database revleak_template")
    with psycopg.connect(pg_server.get_uri("revleak_template")) as conn:
        warehouse.migrate(conn)
    return "revleak_template"


@pytest.fixture
def warehouse_uri(pg_server, template_db, monkeypatch):
    """A fresh, migrated database for this test; the warehouse connection points at it."""
    name = f"t{os.getpid()}_{next(_ids)}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"create database {name} template {template_db}")
    uri = pg_server.get_uri(name)
    monkeypatch.setenv(warehouse.ENV_VAR, uri)
    yield uri
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def conn(warehouse_uri):
    with psycopg.connect(warehouse_uri) as c:
        yield c
