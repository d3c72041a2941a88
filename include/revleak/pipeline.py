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
        return _record(conn, run, dry_run)


def _record(conn, run: checks.CheckRun, dry_run: bool) -> dict:
    """Record the run's findings; the ticket events they call for link to the run's report."""
    from revleak import reports

    summary = findings.record(conn, run, dry_run)
    reports.link_tickets(conn, run.check_id, run.as_of, run.config)
    return summary


def publish_report(run: checks.CheckRun) -> list[str]:
    """Write the run's report (HTML) and its findings (CSV) to the report store."""
    from revleak import reports

    return reports.publish(run.check_id, run.as_of, config=run.config)


def relay_tickets() -> str:
    """Deliver pending ticket events; say what was sent and what waits (rate-limited events
    wait, and that is no failure). Raises ``TicketsFailed`` with one line when events failed
    or the ticket system refused the credentials."""
    from revleak.tickets import relay

    if relay.destination() is None:
        with warehouse.connect() as conn:
            pending = conn.execute("select count(*) from revleak.ticket_outbox"
                                   " where status = 'pending'").fetchone()[0]
        return (f"no ticket system configured (connection {relay.CONN_ID}); "
                f"{pending} events wait in the outbox")
    report = relay.relay()
    report.raise_if_failed()
    return str(report)


def send_price_signals() -> str:
    """Send the price signals waiting in the outbox (docs/pricing.md); one line saying what
    went out. Raises ``SignalsFailed`` (another attempt may deliver) or ``SignalsRefused``."""
    from revleak import price_signals

    return price_signals.send()


def run_check(check_id: str, as_of: date, overrides: dict | None = None,
              dry_run: bool = False) -> dict:
    """The whole check for one as-of date outside Airflow (CLI, tests, benchmarks)."""
    run = checks.CheckRun(check_id, as_of, load_config(), overrides or {})
    with warehouse.connect(autocommit=True) as conn:
        warehouse.migrate(conn)
        checks.check_sources(conn, run)
        checks.reconcile(conn, run)
        return _record(conn, run, dry_run)


def format_summary(summary: dict) -> str:
    """What one run found, in the findings table's style: every figure with its unit."""
    from revleak import display

    base = load_config().base_currency
    unit = display.loss_unit(base)
    money = any(f["gap_amount"] is not None for f in summary["top"])  # else rates only
    lines = [f"{summary['check']} as of {summary['as_of']}: {summary['findings']} findings "
             f"({summary['resolved']} resolved on this date)"
             + (f", gap {display.money(summary['gap_base'], base)}" if money else "")]
    if summary["top"]:
        lines.append(f"  largest losses (loss = gap in {base} × days outstanding, {unit}):"
                     if money else "  zones past their limits (rate = the zone's measured share):")
        lines += display.table(
            ["category", "entity", "customer", "gap", "days", f"loss {unit}"],
            [[f["category"], f"{f['entity_type']} {f['entity_id']}",
              f["customer_id"] or display.NONE, display.gap(f),
              display.whole(f["days_outstanding"]), display.whole(f["time_weighted_loss"])]
             for f in summary["top"]], right={3, 4, 5}, indent=4)
    return "\n".join(lines)
