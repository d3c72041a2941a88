"""The relay: deliver pending outbox events to the ticket system.

Each event is claimed under a row lock (``FOR UPDATE SKIP LOCKED``), so concurrent relays
never send one twice; events of one fingerprint go in order. Failures back off
exponentially with jitter (or as ``Retry-After`` says); after the run's budget the rest
stays pending for the next run. An open that may have reached the ticket system before a
crash is looked up by fingerprint before it is created again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import jinja2
import psycopg
from psycopg.rows import dict_row
from tenacity import wait_exponential_jitter

from revleak import connections, warehouse
from revleak.config import load_config
from revleak.errors import RevleakError
from revleak.tickets.base import DeliveryError, Destination, Provider, RejectedError
from revleak.tickets.providers import provider_for

CONN_ID = "revleak_tickets"
ENV_VAR = connections.env_var(CONN_ID)
log = logging.getLogger(__name__)
backoff = wait_exponential_jitter(multiplier=2, max=300, jitter=2)
_body = jinja2.Environment(
    loader=jinja2.PackageLoader("revleak", "templates"), autoescape=False,
    undefined=jinja2.ChainableUndefined, trim_blocks=False,
).get_template("ticket_body.md.j2")

CLAIM = """
select e.event_id, e.fingerprint, e.generation, e.action, e.idempotency_key, e.payload,
       e.attempts
from revleak.ticket_outbox e
where e.status = 'pending' and e.next_attempt_at <= now()
  and not exists (select from revleak.ticket_outbox p
                  where p.fingerprint = e.fingerprint and p.event_id < e.event_id
                    and p.status <> 'delivered')
order by e.event_id
for update skip locked
limit 1
"""


@dataclass
class RelayReport:
    delivered: Counter = field(default_factory=Counter)
    retried: int = 0
    failed: int = 0
    pending: int = 0

    def __str__(self) -> str:
        done = ", ".join(f"{n} {a}" for a, n in sorted(self.delivered.items())) or "nothing"
        return (f"delivered {done}; {self.retried} retries scheduled, {self.failed} failed, "
                f"{self.pending} pending for the next run")


def destination() -> Destination | None:
    """The ticket system named by the Airflow connection ``revleak_tickets``, if any."""
    c = connections.lookup(CONN_ID)
    if c is None:
        return None
    provider = c.extra.get("provider")
    if provider not in ("jira", "servicenow", "github", "webhook"):
        raise RevleakError(f"connection {CONN_ID}: extra.provider must be jira, servicenow, "
                           f"github or webhook (got {provider!r})")
    host = c.host or ""
    if "://" not in host:
        scheme = c.conn_type if c.conn_type in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    url = host.rstrip("/") + (f":{c.port}" if c.port else "") + (f"/{c.schema}" if c.schema else "")
    return Destination(provider, url, c.login, c.password,
                       {k: v for k, v in c.extra.items() if k != "provider"},
                       float(c.extra.get("timeout", 10)))


def render(payload: dict[str, Any]) -> dict[str, Any]:
    """The event as sent: its payload plus the body a person reads."""
    return {**payload, "body": _body.render(**payload).strip()}


def _deliver(conn: psycopg.Connection, provider: Provider, dest: Destination, event: dict) -> str:
    payload = render(event["payload"])
    fp, gen, key_for = event["fingerprint"], event["generation"], event["idempotency_key"]
    if event["action"] == "open":
        key = None
        if event["attempts"]:  # an earlier attempt may have created it before failing
            known = {r[0] for r in conn.execute(
                "select ticket_key from revleak.tickets where fingerprint = %s and generation < %s",
                (fp, gen))}
            found = provider.find(fp)
            key = found if found not in known else None
        key = key or provider.open(payload, key_for)
        conn.execute(
            "insert into revleak.tickets (fingerprint, generation, ticket_key, provider,"
            " previous_ticket_key) values (%s, %s, %s, %s, %s)"
            " on conflict (fingerprint, generation) do update set ticket_key = excluded.ticket_key",
            (fp, gen, key, dest.provider, payload.get("previous_ticket_key")))
        conn.execute("update revleak.findings set ticket_key = %s"
                     " where fingerprint = %s and ticket_generation = %s", (key, fp, gen))
        return key
    row = conn.execute("select ticket_key from revleak.tickets where fingerprint = %s"
                       " and generation = %s", (fp, gen)).fetchone()
    if row is None:
        raise RejectedError(f"no ticket was opened for {fp} generation {gen}")
    key = row[0]
    getattr(provider, event["action"])(key, payload, key_for)
    stamp = {"resolve": "resolved_at", "escalate": "escalated_at"}.get(event["action"])
    if stamp:
        conn.execute(f"update revleak.tickets set {stamp} = now()"
                     " where fingerprint = %s and generation = %s", (fp, gen))
    return key


def _worker(dest: Destination, deadline: float, max_attempts: int) -> RelayReport:
    report = RelayReport()
    provider = provider_for(dest)
    with warehouse.connect(autocommit=True) as conn:
        while time.monotonic() < deadline:
            with conn.transaction():
                event = conn.cursor(row_factory=dict_row).execute(CLAIM).fetchone()
                if event is None:
                    wait = conn.execute(
                        "select extract(epoch from min(next_attempt_at) - now())"
                        " from revleak.ticket_outbox where status = 'pending'").fetchone()[0]
                else:
                    wait = None
                    _attempt(conn, provider, dest, event, max_attempts, report)
            if event is None:
                if wait is None or time.monotonic() + float(wait) >= deadline:
                    return report
                time.sleep(max(0.05, min(float(wait), deadline - time.monotonic())))
    return report


def _attempt(conn, provider, dest, event, max_attempts, report) -> None:
    attempts = event["attempts"] + 1
    try:
        key = _deliver(conn, provider, dest, event)
    except DeliveryError as e:
        delay = e.retry_after if e.retry_after is not None else \
            backoff(SimpleNamespace(attempt_number=attempts))
        failed = attempts >= max_attempts
        conn.execute(
            "update revleak.ticket_outbox set attempts = %s, last_error = %s,"
            " status = %s, next_attempt_at = now() + %s where event_id = %s",
            (attempts, str(e)[:500], "failed" if failed else "pending",
             timedelta(seconds=delay), event["event_id"]))
        report.failed += failed
        report.retried += not failed
        log.warning("ticket event %s (%s) attempt %s failed: %s", event["event_id"],
                    event["action"], attempts, e)
        return
    except RejectedError as e:
        conn.execute("update revleak.ticket_outbox set attempts = %s, last_error = %s,"
                     " status = 'failed' where event_id = %s",
                     (attempts, str(e)[:500], event["event_id"]))
        report.failed += 1
        log.error("ticket event %s (%s) rejected: %s", event["event_id"], event["action"], e)
        return
    conn.execute("update revleak.ticket_outbox set status = 'delivered', attempts = %s,"
                 " delivered_at = now(), ticket_key = %s, last_error = null where event_id = %s",
                 (attempts, key, event["event_id"]))
    report.delivered[event["action"]] += 1
    log.info("ticket event %s: %s %s", event["event_id"], event["action"], key)


def relay(dest: Destination | None = None, budget_seconds: float | None = None,
          workers: int | None = None) -> RelayReport:
    """Deliver what is pending, within the budget; report what is left."""
    settings = load_config().tickets
    dest = dest or destination()
    report = RelayReport()
    if dest is not None:
        try:  # a misconfigured connection is one clear line, not a traceback per worker
            provider_for(dest).close()
        except ValueError as e:
            raise RevleakError(f"connection {CONN_ID}: {e}") from None
        deadline = time.monotonic() + (budget_seconds or settings["relay_budget_seconds"])
        n = workers or settings["workers"]
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(_worker, dest, deadline, settings["max_attempts"])
                       for _ in range(n)]
            for part in (f.result() for f in futures):
                report.delivered.update(part.delivered)
                report.retried += part.retried
                report.failed += part.failed
    with warehouse.connect() as conn:
        report.pending = conn.execute("select count(*) from revleak.ticket_outbox"
                                      " where status = 'pending'").fetchone()[0]
    return report
