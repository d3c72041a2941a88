"""What each DAG task does, callable with or without Airflow: the task bodies are one line."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from revleak import checks, findings, periods, warehouse
from revleak.config import load_config


def check_run(check_id: str, logical_date: datetime, params: dict[str, Any]) -> checks.CheckRun:
    """The run for a logical date: its as-of date per the contract, config plus overrides."""
    config = load_config()
    as_of = periods.window(check_id, periods.run_day(logical_date, config.tz)).as_of
    overrides = {k: v for k, v in params.items() if k != "dry_run"}
    return checks.CheckRun(check_id, as_of, config, overrides)


def check_sources(run: checks.CheckRun) -> dict:
    with warehouse.connect(autocommit=True) as conn:
        warehouse.migrate(conn)  # a no-op once the schema is current
        return checks.check_sources(conn, run)


def reconcile(run: checks.CheckRun) -> dict:
    with warehouse.connect(autocommit=True) as conn:
        return checks.reconcile(conn, run)


def record_findings(run: checks.CheckRun, dry_run: bool = False) -> dict:
    with warehouse.connect(autocommit=True) as conn:
        return findings.record(conn, run, dry_run)


def relay_tickets() -> str:
    """Deliver pending ticket events; say what was sent and what waits."""
    from revleak.tickets import relay

    if relay.destination() is None:
        with warehouse.connect() as conn:
            pending = conn.execute("select count(*) from revleak.ticket_outbox"
                                   " where status = 'pending'").fetchone()[0]
        return (f"no ticket system configured (connection {relay.CONN_ID}); "
                f"{pending} events wait in the outbox")
    return str(relay.relay())


def run_check(check_id: str, as_of: date, overrides: dict | None = None,
              dry_run: bool = False) -> dict:
    """The whole check for one as-of date outside Airflow (CLI, tests, benchmarks)."""
    run = checks.CheckRun(check_id, as_of, load_config(), overrides or {})
    with warehouse.connect(autocommit=True) as conn:
        warehouse.migrate(conn)
        checks.check_sources(conn, run)
        checks.reconcile(conn, run)
        return findings.record(conn, run, dry_run)


def format_summary(summary: dict) -> str:
    lines = [f"{summary['check']} as of {summary['as_of']}: {summary['findings']} findings "
             f"({summary['resolved']} resolved on this date), open gap "
             f"{float(summary['gap_base']):,.2f} in base currency"]
    for i, f in enumerate(summary["top"], 1):
        what = (f"gap {f['currency']} {float(f['gap_amount']):>12,.2f}  "
                f"{f['days_outstanding']:>4} days  "
                f"loss×days {float(f['time_weighted_loss'] or 0):>14,.0f}"
                if f["gap_amount"] is not None else f"rate {float(f['gap_pct']):.2f}%")
        lines.append(f"  {i}. {f['category']:<13} {f['entity_type']} {f['entity_id']:<12} {what}")
    return "\n".join(lines)
