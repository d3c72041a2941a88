"""One factory for the check DAGs: explicit timetable in the company timezone (or, for a check
on change, the Airflow Assets of the tables that start it), typed Params, retries, docs, and
tasks that each make one call into revleak. Nothing here touches the warehouse at import time,
and the heavy modules (database driver, SQL, tickets) are imported inside the tasks so each DAG
file parses fast."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import (
    Asset,
    AssetAny,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from revleak import assets
from revleak.config import load_config
from revleak.registry import CHECKS, CheckSpec

CRON = {"daily": "0 {hour} * * *", "weekly": "0 {hour} * * 1", "quarterly": "0 {hour} 1 1,4,7,10 *"}
PARAMS = {  # offered on a DAG's trigger form: dry_run, and the rules its spec names
    "dry_run": Param(False, type="boolean", title="Dry run",
                     description="Write findings but send no ticket events."),
    "tolerance_pct": Param(None, type=["null", "number"], minimum=0, maximum=100,
                           title="Tolerance (% of expected)",
                           description="Override the configured match tolerance for this run."),
    "tolerance_min": Param(None, type=["null", "number"], minimum=0, maximum=1_000_000,
                           title="Minimum tolerance (contract currency)"),
    "billing_lag_days": Param(None, type=["null", "integer"], minimum=0, maximum=366,
                              title="Billing lag (days)"),
}


def _run():
    from revleak import pipeline

    ctx = get_current_context()
    logical_date = ctx.get("logical_date") or ctx["dag_run"].run_after
    return pipeline.check_run(ctx["dag"].dag_id, logical_date, dict(ctx["params"]))


def failure_notifier(check_id: str, config) -> SmtpNotifier:
    """Mail the check's owner when a task fails (e.g. data_missing), through the SMTP
    connection ``revleak_alerts``."""
    route = next((r for r in config.routes if check_id in (r.match.check or [check_id])
                  and not (r.match.segment or r.match.region or r.match.category
                           or r.match.min_gap_base is not None)), config.fallback)
    return SmtpNotifier(
        to=route.owner.email, smtp_conn_id="revleak_alerts",
        subject=f"[revleak] {check_id} failed: {{{{ ti.task_id }}}} ({{{{ ds }}}})",
        html_content="{{ ti.task_id }} of {{ dag.dag_id }} failed for {{ ds }}: "
                     "{{ exception }}<br>Log: {{ ti.log_url }}")


def schedule(spec: CheckSpec, config):
    """When the check runs: its cron in the company timezone, or any change of the tables
    that start it (one Asset each, the URIs `revleak load` announces)."""
    if spec.cadence == "on_change":
        return AssetAny(*(Asset(uri=assets.uri(t), group="revleak") for t in spec.triggered_by))
    # logical date = trigger time, so "a run on day D" is the day it fires (contract §3);
    # the window comes from that date, never from a data interval
    hour = config.rules[spec.id]["schedule_hour"]
    return CronTriggerTimetable(CRON[spec.cadence].format(hour=hour), timezone=config.timezone)


def check_dag(check_id: str, doc_md: str):
    """Build the DAG for one check of the contract's §3, as the registry describes it."""
    spec, config = CHECKS[check_id], load_config()

    @dag(
        dag_id=check_id,
        schedule=schedule(spec, config),
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md=doc_md,
        tags=["revleak", spec.cadence, spec.owner.lower().replace(" ", "_")],
        default_args={"owner": spec.owner, "retries": 2,
                      "retry_delay": timedelta(minutes=5), "retry_exponential_backoff": True,
                      "on_failure_callback": failure_notifier(check_id, config)},
        params={k: PARAMS[k] for k in ("dry_run", *spec.params)},
    )
    def check():
        @task
        def check_sources() -> dict:
            """Refuse to judge missing or stale books (a failed, clearly named task)."""
            from revleak import pipeline
            from revleak.checks import DataMissing

            try:
                return pipeline.check_sources(_run())
            except DataMissing as e:
                raise AirflowFailException(str(e)) from None

        @task
        def reconcile() -> dict:
            """Run the check's SQL in the warehouse."""
            from revleak import pipeline

            return pipeline.reconcile(_run())

        @task
        def record_findings() -> dict:
            """Upsert findings by fingerprint; resolve the ones whose gap closed."""
            from revleak import pipeline

            return pipeline.record_findings(_run(), get_current_context()["params"]["dry_run"])

        @task
        def relay_tickets() -> str:
            """Deliver ticket events (open, update, escalate, resolve); none on a dry run.
            Events that failed, or credentials the ticket system refused, fail the task at once
            (no retry: a person has to act) so the failure notifier fires."""
            from revleak import pipeline
            from revleak.tickets.relay import TicketsFailed

            if not spec.tickets:
                raise AirflowSkipException(
                    f"{check_id} opens no tickets: {spec.same_as} owns the tickets of these "
                    f"findings, so a leak is never ticketed twice; see them with `revleak "
                    f"findings --check {check_id}`")
            if get_current_context()["params"]["dry_run"]:
                raise AirflowSkipException("dry run: no ticket events")
            try:
                return pipeline.relay_tickets()
            except TicketsFailed as e:
                raise AirflowFailException(str(e)) from None

        @task
        def send_price_signals() -> str:
            """Send the price signals (subscription drift) waiting in the outbox to the
            connection revleak_price_signals; none on a dry run. A failed delivery is retried
            by this task's attempts, then fails it; a refusal fails it at once."""
            from revleak import pipeline
            from revleak.price_signals import SignalsFailed, SignalsRefused

            if get_current_context()["params"]["dry_run"]:
                raise AirflowSkipException("dry run: no price signals")
            try:
                text = pipeline.send_price_signals()
            except SignalsRefused as e:
                raise AirflowFailException(str(e)) from None
            except SignalsFailed as e:
                raise AirflowException(str(e)) from None
            print(text)
            return text

        @task(trigger_rule="all_done")
        def publish_report() -> list[str]:
            """Write the run's report and findings CSV to the report store, with the ticket
            keys known by now (also after a dry run or a failed delivery)."""
            from revleak import pipeline
            from revleak.reports import NotRecorded

            try:
                return pipeline.publish_report(_run())
            except NotRecorded as e:
                raise AirflowSkipException(str(e)) from None

        @task(trigger_rule="none_failed")
        def summarize(summary: dict) -> str:
            """Say what was found: count, gap, the top 5 by time-weighted loss."""
            from revleak import pipeline

            text = pipeline.format_summary(summary)
            print(text)
            return text

        sources, reconciled, recorded = check_sources(), reconcile(), record_findings()
        relayed = relay_tickets()
        sources >> reconciled >> recorded >> relayed >> summarize(recorded)
        relayed >> publish_report()
        if spec.price_signals:
            recorded >> send_price_signals()

    return check()
