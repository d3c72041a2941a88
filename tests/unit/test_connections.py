"""Connections a user gets wrong: each fails in one line that says what is wrong and how to
write it, through the command line as through the parser, and never shows the password.
Unknown check ids and bad arguments are one line too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from revleak import cli, connections
from revleak.config import CHECK_IDS
from revleak.errors import RevleakError

PASSWORD = "Tr0ub4dor-S3cret"
WAREHOUSE = "AIRFLOW_CONN_REVLEAK_WAREHOUSE"
TICKETS = "AIRFLOW_CONN_REVLEAK_TICKETS"
ok = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/db"  # well formed, used where the other is bad

# (connection value, what the one line must say)
MALFORMED_WAREHOUSE = [
    (f"postgresql:/postgres:{PASSWORD}@db.internal:5432/analytics", "is not a connection URI"),
    (f"postgres:{PASSWORD}@db.internal:5432/analytics", "is not a connection URI"),
    (f"postgresql://postgres:{PASSWORD}@db.internal:54x2/analytics", "port is not a whole number"),
    (f"postgresql://postgres:{PASSWORD}@db.internal:99999/analytics", "port is not a whole number"),
    (f"postgresql://postgres:{PASSWORD[:4]}/{PASSWORD[4:]}@db.internal/analytics",
     "percent-encode"),
    (f"postgresql://postgres:{PASSWORD}@[db.internal/analytics", "is not a connection URI"),
    (f'{{"conn_type": "postgres", "password": "{PASSWORD}", "host": "db", ', "is not valid JSON"),
    (json.dumps({"conn_type": "postgres", "password": PASSWORD, "port": "54x2"}),
     "port is not a whole number"),
    (json.dumps({"conn_type": "postgres", "password": PASSWORD, "extra": "{not json"}),
     "extra is not valid JSON"),
    (json.dumps({"conn_type": "postgres", "password": PASSWORD, "extra": [1]}),
     "extra must be a JSON object"),
    (f"postgresql://u:{PASSWORD}@db/analytics?connect_timeout=soon", "extra.connect_timeout"),
    (f"mysql://u:{PASSWORD}@db/analytics", "must be a postgres:// or postgresql:// URI"),
]
MALFORMED_TICKETS = [
    (f"https://bot:{PASSWORD}@acme.atlassian.net?provider=jira&project=REV&timeout=abc",
     "extra.timeout must be a number of seconds"),
    (json.dumps({"conn_type": "https", "host": "acme.atlassian.net", "password": PASSWORD,
                 "extra": {"provider": "jira", "project": "REV", "timeout": "abc"}}),
     "extra.timeout must be a number of seconds"),
    (json.dumps({"conn_type": "https", "host": "acme.atlassian.net", "password": PASSWORD,
                 "extra": "{'provider': 'jira'}"}), "extra is not valid JSON"),
    (f"https:/bot:{PASSWORD}@acme.atlassian.net?provider=jira", "is not a connection URI"),
]


def revleak(*args, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in (WAREHOUSE, TICKETS)}
    return subprocess.run([sys.executable, "-m", "revleak.cli", *args], capture_output=True,
                          text=True, env={**clean, **(env or {})}, timeout=120,
                          stdin=subprocess.DEVNULL)


def one_line(result, fragment: str) -> None:
    """Exit 2, one line on stderr saying ``fragment``, no traceback, no password anywhere."""
    everything = result.stdout + result.stderr
    assert PASSWORD not in everything and PASSWORD[4:] not in everything, everything
    assert result.returncode == 2, everything
    assert "Traceback" not in everything, everything
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], everything


@pytest.mark.parametrize(("n", "value", "says"),
                         [(n, *case) for n, case in enumerate(MALFORMED_WAREHOUSE)])
def test_a_malformed_warehouse_connection_is_one_line_without_the_password(n, value, says,
                                                                           tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id,name,currency,created_at\n")
    commands = [["findings"], ["load", str(tmp_path)], ["tickets"]]
    for args in commands if n == 0 else [commands[n % 3]]:  # the first one through all three
        one_line(revleak(*args, env={WAREHOUSE: value}), says)


@pytest.mark.parametrize(("value", "says"), MALFORMED_TICKETS)
def test_a_malformed_ticket_connection_is_one_line_without_the_password(value, says):
    one_line(revleak("tickets", "--relay", env={TICKETS: value, WAREHOUSE: ok}), says)


@pytest.mark.parametrize(("value", "says"), MALFORMED_WAREHOUSE[:-1] + MALFORMED_TICKETS)
def test_the_parser_names_the_variable_and_never_quotes_the_value(value, says):
    with pytest.raises(RevleakError) as error:
        connections.parse(value, "revleak_warehouse")
    assert says in str(error.value) and PASSWORD not in str(error.value)
    assert str(error.value).startswith(WAREHOUSE)


def test_well_formed_values_parse_as_airflow_reads_them():
    c = connections.parse("postgresql://rev%40leak:p%2Fw%40d@db.internal:6543/analytics"
                          "?sslmode=require&connect_timeout=5", "x")
    assert (c.conn_type, c.host, c.port, c.login, c.password, c.schema) == \
        ("postgresql", "db.internal", 6543, "rev@leak", "p/w@d", "analytics")
    assert c.extra == {"sslmode": "require", "connect_timeout": "5"}
    j = connections.parse(json.dumps({"conn_type": "https", "host": "acme.atlassian.net",
                                      "port": "443", "password": "t", "extra": json.dumps(
                                          {"provider": "jira", "timeout": 7.5})}), "x")
    assert (j.port, j.extra) == (443, {"provider": "jira", "timeout": 7.5})
    embedded = connections.parse("postgresql://postgres:@/postgres?host=/tmp/pg", "x")
    assert (embedded.host, embedded.login, embedded.extra) == (None, "postgres",
                                                                {"host": "/tmp/pg"})


def test_an_unknown_check_lists_the_dag_ids():
    for args in (["findings", "--check", "booked_vs_billed"],
                 ["check", "booked_vs_billed", "--as-of", "2026-10-01"]):
        result = revleak(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "invalid choice: 'booked_vs_billed'" in lines[0]
        assert all(check in lines[0] for check in CHECK_IDS), lines[0]
        assert f"see `revleak {args[0]} --help`" in lines[0]


@pytest.mark.parametrize("args", [["findings", "--limit", "0"], ["findings", "--as-of", "today"],
                                  ["findings", "--status", "closed"], ["ui", "--port", "http"],
                                  ["nonsense"], []])
def test_a_bad_argument_is_one_line(args):
    result = revleak(*args)
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "--help" in result.stderr


def test_an_unexpected_error_is_one_line_unless_debug(monkeypatch, capsys):
    def broken(args):
        raise KeyError("warehouse_id")

    monkeypatch.setattr(cli, "cmd_stop", broken)
    assert cli.main(["stop"]) == 1
    err = capsys.readouterr().err
    assert err == "revleak: unexpected KeyError: 'warehouse_id' (rerun with --debug for the " \
                  "traceback and report it)\n"
    with pytest.raises(KeyError):
        cli.main(["--debug", "stop"])


def test_a_reader_that_stops_early_ends_the_output_quietly():
    """`revleak findings | head`: the closed pipe ends revleak without a word (exit 141)."""
    script = ("import sys; from revleak import cli\n"
              "cli.cmd_stop = lambda args: [print(f'line {n:>6}') for n in range(100_000)] and 0\n"
              "sys.exit(cli.main(['stop']))")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "line      0\n"
    proc.stdout.close()  # as `head` does once it has its lines
    assert proc.wait(60) == 141
    assert proc.stderr.read() == ""
