"""Where an HTTP connection points (price signals, Airflow's REST API), read from
``AIRFLOW_CONN_<ID>`` outside Airflow: its URL, credentials and timeout, or one line saying how
to write it."""

from __future__ import annotations

import json
import sys

import pytest

from revleak import endpoints
from revleak.errors import RevleakError

CONN = "revleak_test_endpoint"
VAR = "AIRFLOW_CONN_REVLEAK_TEST_ENDPOINT"
EXAMPLE = "https://:<secret>@receiver.example.com/hooks"


@pytest.fixture(autouse=True)
def outside_airflow(monkeypatch):
    """Only the environment variable is read (no Airflow connection store)."""
    monkeypatch.delitem(sys.modules, "airflow.sdk", raising=False)
    monkeypatch.delenv(VAR, raising=False)


def dest(monkeypatch, value):
    monkeypatch.setenv(VAR, value)
    return endpoints.destination(CONN, "price signals", EXAMPLE)


def test_undefined_is_none():
    assert endpoints.destination(CONN, "price signals", EXAMPLE) is None


def test_a_uri_gives_url_credentials_and_the_default_timeout(monkeypatch):
    d = dest(monkeypatch, "https://:s%40cret@receiver.example.com/hooks/prices")
    assert d.provider == "price signals"
    assert d.base_url == "https://receiver.example.com/hooks/prices"
    assert (d.login, d.password, d.timeout) == (None, "s@cret", 10.0)


def test_a_port_and_an_http_scheme_are_kept(monkeypatch):
    d = dest(monkeypatch, "http://admin:pw@127.0.0.1:8080?timeout=2.5")
    assert (d.base_url, d.login, d.password) == ("http://127.0.0.1:8080", "admin", "pw")
    assert d.timeout == 2.5 and d.extra == {"timeout": "2.5"}


def test_a_bare_host_gets_https_unless_the_connection_type_says_http(monkeypatch):
    value = {"conn_type": "http", "host": "airflow.internal", "port": 8080}
    assert dest(monkeypatch, json.dumps(value)).base_url == "http://airflow.internal:8080"
    value = {"conn_type": "generic", "host": "hooks.example.com/", "schema": "v1/prices",
             "extra": {"timeout": 30}}
    d = dest(monkeypatch, json.dumps(value))
    assert (d.base_url, d.timeout) == ("https://hooks.example.com/v1/prices", 30.0)


def test_no_host_is_one_line_with_the_variable_and_an_example_never_the_password(monkeypatch):
    with pytest.raises(RevleakError) as err:
        dest(monkeypatch, json.dumps({"conn_type": "https", "password": "hunter2"}))
    assert str(err.value) == (f"connection {CONN} names no host; write {VAR}='{EXAMPLE}'")
    assert "hunter2" not in str(err.value)
