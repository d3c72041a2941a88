"""Who changed what (issue 15): a load that replaced stored rows, a run with overridden rules and
failed ticket events queued again are recorded with who, when and what — the OS user on the
command line, the Airflow user who triggered a run — and `revleak audit` shows them. Actions
that change nothing (a first load, an identical reload, a run with the configured rules) are not
recorded."""

from __future__ import annotations

import getpass
import json

from revleak import cli
from tests.airflow_cli import airflow, airflow_home
from tests.books import Books

CHECK = "booked_vs_billed_daily"


def books(amount: str = "1200.00") -> Books:
    return (Books().contract("O1", amount, "2025-01-01", "2025-12-31")
            .invoice("I1", "O1", "2025-01-05", "100.00").heartbeat("2025-03-01"))


def entries(conn) -> list[tuple]:
    rows = conn.execute("select actor, via, action, subject, detail from revleak.audit_log"
                        " order by audit_id").fetchall()
    conn.commit()
    return rows


def test_only_a_load_that_replaced_rows_is_audited(conn, tmp_path):
    books().load(conn, tmp_path / "first")
    books().load(conn, tmp_path / "same")
    assert entries(conn) == []
    books("1500.00").load(conn, tmp_path / "changed")
    ((who, via, action, subject, detail),) = entries(conn)
    assert (who, via, action, subject) == (getpass.getuser(), "cli", "load.rows_replaced",
                                           "opportunities")
    assert detail["rows_replaced"] == 1 and detail["file"].endswith("opportunities.csv")


def test_a_run_with_overridden_rules_names_both_values(conn, tmp_path, capsys):
    books().load(conn, tmp_path / "books")
    assert cli.main(["check", CHECK, "--as-of", "2025-04-15"]) == 0
    assert entries(conn) == []  # the configured rules
    assert cli.main(["check", CHECK, "--as-of", "2025-04-15", "--tolerance-pct", "2"]) == 0
    ((who, via, action, subject, detail),) = entries(conn)
    assert (who, via, action, subject) == (getpass.getuser(), "cli", "check.rules_overridden",
                                           f"{CHECK} as of 2025-04-15")
    assert detail == {"tolerance_pct": {"configured": 0.5, "used": 2}}
    capsys.readouterr()
    assert cli.main(["audit"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1 latest audited actions, latest first (times in UTC)"
    assert "check.rules_overridden" in out[2] and getpass.getuser() in out[2]
    assert cli.main(["audit", "--format", "json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["detail"] == detail


def test_failed_ticket_events_queued_again_are_audited(conn, tmp_path, capsys):
    books().load(conn, tmp_path / "books")
    assert cli.main(["check", CHECK, "--as-of", "2025-04-15"]) == 0
    assert cli.main(["tickets", "--retry-failed"]) == 0  # nothing failed: nothing recorded
    assert entries(conn) == []
    ids = [i for (i,) in conn.execute(
        "update revleak.ticket_outbox set status = 'failed' returning event_id")]
    conn.commit()
    assert ids
    assert cli.main(["tickets", "--retry-failed"]) == 0
    assert f"{len(ids)} failed events queued again" in capsys.readouterr().out
    ((who, _, action, subject, detail),) = entries(conn)
    assert (who, action, subject) == (getpass.getuser(), "tickets.retry_failed", "ticket outbox")
    assert detail == {"events": len(ids), "event_ids": sorted(ids)}


def test_inside_airflow_the_triggering_user_is_recorded(conn, tmp_path, pg_server,
                                                        warehouse_uri):
    books().load(conn, tmp_path / "books")
    home = tmp_path / "airflow"
    home.mkdir()
    env = {**airflow_home(pg_server, home, "airflow_audit"),
           "AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri}
    airflow(env, "dags", "test", CHECK, "2025-04-16", "--conf",
            json.dumps({"tolerance_pct": 3, "dry_run": True}))
    ((who, via, action, subject, detail),) = entries(conn)
    assert (via, action, subject) == ("airflow", "check.rules_overridden",
                                      f"{CHECK} as of 2025-04-15")
    assert who == "dag_test"  # `airflow dags test` triggers as this user
    assert detail["tolerance_pct"]["used"] == 3
