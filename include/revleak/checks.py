"""Running a check: guard the sources, reconcile in SQL, keep the results for recording.

A check is one SQL file in ``revleak/sql/checks/<check_id>.sql`` made of named steps
(``-- name: step``) ending in a ``run_findings`` table; every value is a bind parameter. The
tail every check shares (results with their time-weighted loss, the run's totals) is
``sql/findings/results.sql``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from revleak import audit, periods, sources, statements
from revleak.config import Config
from revleak.errors import RevleakError
from revleak.registry import CHECKS


class DataMissing(RevleakError):
    """A source the check reads is empty or stale for the window: no verdict is possible."""


@dataclass
class CheckRun:
    """One check for one as-of date, with the rules in force (config plus run overrides)."""

    check_id: str
    as_of: date
    config: Config
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def rules(self) -> dict[str, Any]:
        rules = dict(self.config.rules[self.check_id])
        for key, value in self.overrides.items():
            if value is not None and key in rules:
                rules[key] = Decimal(str(value)) if isinstance(rules[key], Decimal) else value
        return rules

    def overridden(self) -> dict[str, dict[str, Any]]:
        """The rules this run changed from the configuration: configured and used values."""
        configured = self.config.rules[self.check_id]
        return {k: {"configured": configured[k], "used": v} for k, v in self.rules.items()
                if v != configured[k]}

    @property
    def params(self) -> dict[str, Any]:
        return {
            **self.rules,
            "check_id": self.check_id,
            "as_of": self.as_of,
            "window_start": periods.window_start(self.check_id, self.as_of),
            "window_start_at": periods.day_end(
                periods.window_start(self.check_id, self.as_of) - timedelta(days=1),
                self.config.tz),
            "as_of_end": periods.day_end(self.as_of, self.config.tz),
            "base_currency": self.config.base_currency,
            "timezone": self.config.timezone,
        }

    @property
    def rule_version(self) -> str:
        return CHECKS[self.check_id].rule_version


def steps(check_id: str) -> dict[str, str]:
    """The named SQL steps of a check, in order."""
    if check_id not in CHECKS:
        raise RevleakError(f"unknown check {check_id!r}; known: {', '.join(CHECKS)}")
    return statements.named(CHECKS[check_id].sql)


def _start(conn: psycopg.Connection, run: CheckRun, params: dict) -> None:
    conn.execute(
        "insert into revleak.check_runs (check_id, as_of, status, params, rule_version)"
        " values (%s, %s, 'running', %s, %s)"
        " on conflict (check_id, as_of) do update set status = 'running', params = excluded.params,"
        " rule_version = excluded.rule_version, attempts = check_runs.attempts + 1,"
        " started_at = now(), finished_at = null",
        (run.check_id, run.as_of, Jsonb(jsonable(params)), run.rule_version))


def _finish(conn: psycopg.Connection, run: CheckRun, status: str, summary: dict) -> None:
    conn.execute(
        "update revleak.check_runs set status = %s, summary = %s, finished_at = now()"
        " where check_id = %s and as_of = %s",
        (status, Jsonb(summary), run.check_id, run.as_of))


def check_sources(conn: psycopg.Connection, run: CheckRun) -> dict:
    """Refuse to judge books that were not delivered: raise DataMissing saying what to load."""
    problem, facts = sources.judge(conn, run.check_id, run.params["as_of_end"], run.config)
    if problem:
        with conn.transaction():
            _start(conn, run, run.params)
            _finish(conn, run, "data_missing", {"data_missing": problem, **facts})
        raise DataMissing(f"data_missing for {run.check_id} as of {run.as_of}: {problem}")
    return facts


def reconcile(conn: psycopg.Connection, run: CheckRun) -> dict:
    """Run the check's SQL; keep its results in revleak.check_results; record metrics."""
    params = run.params
    sql_steps = steps(run.check_id)
    trend_steps = CHECKS[run.check_id].trend_steps
    with conn.transaction():  # contracts and invoices whose books changed: settled again (0018)
        conn.execute("select revleak.settle()")
    with conn.transaction():
        _start(conn, run, params)
        if changed := run.overridden():
            audit.record(conn, "check.rules_overridden", f"{run.check_id} as of {run.as_of}",
                         jsonable(changed))
        metrics = []
        for name, statement in sql_steps.items():
            if trend_steps and name == trend_steps[0]:
                for weeks_back in range(run.rules["trend_weeks"] - 1, 0, -1):
                    earlier = replace(run, as_of=run.as_of - timedelta(weeks=weeks_back)).params
                    for step in (*trend_steps, "forget_week"):
                        conn.execute(sql_steps[step], earlier)
            if name == "forget_week":
                continue
            cur = conn.execute(statement, params)
            if name == "metrics":
                metrics = cur.fetchall()
        tail = statements.named("findings/results.sql")
        tail_params = {**params, "rule_version": run.rule_version,
                       "rules": Jsonb(jsonable(run.rules))}
        conn.execute(tail["results_clear"], tail_params)
        conn.execute(tail["results"], tail_params)
        metrics += conn.execute(tail["metrics"], tail_params).fetchall()
        for metric, value, detail in metrics:
            conn.execute(
                "insert into revleak.metrics (check_id, as_of, metric, value, detail)"
                " values (%s, %s, %s, %s, %s) on conflict (check_id, as_of, metric)"
                " do update set value = excluded.value, detail = excluded.detail",
                (run.check_id, run.as_of, metric, value, Jsonb(detail or {})))
        _finish(conn, run, "running", {m: jsonable(v) for m, v, _ in metrics})
    return {m: jsonable(v) for m, v, _ in metrics}


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # amounts are rounded to the cent in SQL: exact as JSON numbers
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value))


def to_json(value: Any) -> str:
    """JSON text of rows, summaries and params (Decimal → number, date → ISO)."""
    return json.dumps(value, default=_json_default)


def jsonable(value: Any) -> Any:
    """The same value made of plain JSON types (for Jsonb columns and XCom)."""
    return json.loads(to_json(value))
