"""Named SQL statements: the parser splits ``-- name:`` sections, and every shipped file is one
statement per section whose values are named bind parameters the code that runs it supplies."""

from __future__ import annotations

import re
from datetime import date

import pytest

from revleak import statements
from revleak.checks import CheckRun
from revleak.config import parse_config
from revleak.errors import RevleakError
from revleak.registry import CHECKS

SHIPPED = sorted(p.relative_to(statements.SQL_DIR).as_posix()
                 for p in statements.SQL_DIR.rglob("*.sql")
                 if p.relative_to(statements.SQL_DIR).parts[0] != "schema")  # migrations: whole
BIND = re.compile(r"%\((\w+)\)s")
# What each caller passes (findings.record, findings.query); a check's steps get its CheckRun
# params, and the shared tail also the rule version and the rules. (The reports' statements
# take the reader's filters: their tests run them.)
RECORD = {"check_id", "as_of", "update_share"}
SUPPLIED = {"findings/record.sql": RECORD, "tickets/events.sql": RECORD,
            "signals/events.sql": RECORD, "findings/query.sql": {"check", "as_of", "status"}}


@pytest.fixture
def sql_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(statements, "SQL_DIR", tmp_path)
    statements.named.cache_clear()
    yield tmp_path
    statements.named.cache_clear()


def test_sections_in_file_order_without_header_or_trailing_semicolon(sql_dir):
    (sql_dir / "two.sql").write_text(
        "-- What this file does (a header, not a statement)\n\n"
        "-- name: first_step\n"
        "select 1 -- name: inside a line is no section\n;\n\n"
        "-- name: second\n"
        "-- a comment belongs to its statement\n"
        "update t set a = %(a)s;  \n", encoding="utf-8")
    assert statements.named("two.sql") == {
        "first_step": "select 1 -- name: inside a line is no section\n",
        "second": "-- a comment belongs to its statement\nupdate t set a = %(a)s",
    }


def test_a_file_without_sections_has_no_statements(sql_dir):
    (sql_dir / "plain.sql").write_text("create table t (a int);\n", encoding="utf-8")
    assert statements.named("plain.sql") == {}


def test_a_missing_file_is_one_line_saying_to_reinstall(sql_dir):
    with pytest.raises(RevleakError) as err:
        statements.named("checks/nowhere.sql")
    assert str(err.value) == f"{sql_dir / 'checks' / 'nowhere.sql'} is missing; reinstall revleak"


def test_every_named_statement_file_is_shipped_inside_the_package():
    assert statements.SQL_DIR.parent.name == "revleak"
    assert {"findings/record.sql", "findings/results.sql", "findings/query.sql",
            "tickets/events.sql", "signals/events.sql"} <= set(SHIPPED)
    assert {spec.sql for spec in CHECKS.values()} <= set(SHIPPED)


def _runner_params(path: str) -> set[str] | None:
    """The parameters the code that runs the file supplies (None: not known here)."""
    if path in SUPPLIED:
        return SUPPLIED[path]
    config = parse_config(None)
    if path == "findings/results.sql":
        return {*CheckRun("booked_vs_billed_daily", date(2026, 10, 1), config).params,
                "rule_version", "rules"}
    check = next((c for c, spec in CHECKS.items() if spec.sql == path), None)
    return set(CheckRun(check, date(2026, 10, 1), config).params) if check else None


@pytest.mark.parametrize("path", SHIPPED)
def test_each_statement_is_one_statement_with_named_parameters_its_runner_supplies(path):
    named = statements.named(path)
    assert named, f"{path} has no -- name: sections"
    supplied = _runner_params(path)
    for name, body in named.items():
        assert body.strip(), (path, name)
        # one statement: no ; outside string literals, comments and $$ bodies
        code = re.sub(r"'(?:[^']|'')*'", "''", body)
        code = re.sub(r"--[^\n]*", "", code)
        code = re.sub(r"\$(\w*)\$.*?\$\1\$", "", code, flags=re.S)
        assert ";" not in code, (path, name)
        # values only as %(name)s; a literal percent sign doubled, as psycopg requires
        assert "%" not in re.sub(r"%%|%\(\w+\)s", "", body), (path, name)
        if supplied is not None:
            assert set(BIND.findall(body)) <= supplied, (path, name,
                                                         set(BIND.findall(body)) - supplied)
