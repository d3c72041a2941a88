"""The command line: --help everywhere; user mistakes are one line, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from revleak.cli import build_parser

COMMANDS = ["migrate", "load", "quarantine", "demo-data", "demo", "check", "findings",
            "tickets"]


def revleak(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "revleak.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120, **kw)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: revleak" in capsys.readouterr().out


def one_line_error(result, *fragments):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_path(tmp_path, warehouse_uri):
    one_line_error(revleak("load", str(tmp_path / "nope")), "is not a directory")


def test_unreachable_database(tmp_path):
    result = revleak("migrate", env={
        "AIRFLOW_CONN_REVLEAK_WAREHOUSE": "postgresql://u:secret@127.0.0.1:1/db"})
    one_line_error(result, "cannot reach the warehouse at 127.0.0.1:1/db",
                   "AIRFLOW_CONN_REVLEAK_WAREHOUSE")
    assert "secret" not in result.stderr


def test_malformed_connection_value():
    one_line_error(revleak("migrate", env={"AIRFLOW_CONN_REVLEAK_WAREHOUSE": "mysql://x"}),
                   "must be a postgres:// or postgresql:// URI")


def test_malformed_csv_reports_file_and_exits_non_zero(tmp_path, warehouse_uri):
    (tmp_path / "customers.csv").write_bytes(b"customer_id,name\nC1,\xff\n")
    one_line_error(revleak("load", str(tmp_path)),
                   "customers.csv: missing required column currency, created_at")


def test_bad_rows_do_not_fail_the_load(tmp_path, warehouse_uri):
    (tmp_path / "customers.csv").write_text(
        "customer_id,name,currency,created_at\nC1,Acme,EUR,2025-01-01T00:00:00+00:00\n"
        "C2,Beta,EURO,2025-01-01T00:00:00+00:00\n")
    result = revleak("load", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "1 quarantined" in result.stdout
    listed = revleak("quarantine")
    assert "customers.csv:3 [customers] currency: not an ISO 4217 currency code: EURO" \
        in listed.stdout


def test_invalid_config(tmp_path):
    bad = tmp_path / "revleak.yaml"
    bad.write_text("checks:\n  booked_vs_billed_daily:\n    billing_lag_days: -3\n")
    one_line_error(revleak("check", "booked_vs_billed_daily", "--as-of", "2026-01-01",
                           env={"REVLEAK_CONFIG": str(bad)}),
                   "checks.booked_vs_billed_daily.billing_lag_days must be a whole number")


def test_bad_date_argument():
    result = revleak("findings", "--as-of", "yesterday")
    assert result.returncode == 2
    assert "is not a date (YYYY-MM-DD)" in result.stderr
