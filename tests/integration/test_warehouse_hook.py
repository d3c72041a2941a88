"""Inside Airflow the warehouse is opened by the postgres provider's PostgresHook (the
connection as Airflow resolves it); outside Airflow by psycopg, and the embedded server stays
the fallback when no connection is defined."""

from __future__ import annotations

import airflow.sdk  # noqa: F401  (as inside a task: revleak sees it is inside Airflow)
from airflow.providers.postgres.hooks.postgres import PostgresHook

from revleak import warehouse


def test_inside_airflow_the_postgres_hook_opens_the_warehouse(warehouse_uri, monkeypatch):
    opened = []
    real = PostgresHook.get_conn

    def spy(self):
        opened.append(self.postgres_conn_id)
        return real(self)

    monkeypatch.setattr(PostgresHook, "get_conn", spy)
    with warehouse.connect(autocommit=True) as conn:
        assert conn.autocommit is True
        database = conn.execute("select current_database()").fetchone()[0]
        assert conn.execute("select count(*) from revleak_meta.schema_migrations"
                            ).fetchone()[0] > 0
    assert opened == [warehouse.CONN_ID]
    assert f"/{database}?" in warehouse_uri or warehouse_uri.endswith(f"/{database}")


def test_a_bad_password_through_the_hook_is_one_line_without_it(warehouse_uri, monkeypatch):
    secret = "hunter2-not-the-password"
    monkeypatch.setenv(warehouse.ENV_VAR, "postgresql://nobody:" + secret
                       + "@127.0.0.1:1/nowhere")
    try:
        warehouse.connect()
    except warehouse.RevleakError as e:
        message = str(e)
    else:
        raise AssertionError("connected to a closed port")
    assert "cannot reach the warehouse at 127.0.0.1:1/nowhere" in message
    assert secret not in message and "\n" not in message
