"""The relay: deliver pending outbox events to the ticket system, each exactly once.

- **Crash-safe.** A worker claims an event with ``FOR UPDATE SKIP LOCKED``, holds it with a
  session advisory lock (released by PostgreSQL the moment the worker's connection dies) and
  commits "attempt started" before the first request leaves. An attempt that never recorded
  its outcome (a crash, SIGKILL), or that failed after a write may have taken effect (timeout,
  reset, 5xx), leaves the event *in doubt*: its next attempt looks for the event's marker in
  the ticket system (the ticket an open created, the comment an update wrote) before writing
  again. Jira's search lags behind its writes, so an empty Jira search is trusted only once the
  attempt in doubt is older than ``tickets.search_settle_seconds``.
- **Rate limits.** 429, GitHub's 403 secondary limit and an exhausted ``x-ratelimit-remaining``
  pause the destination for every worker (``revleak.ticket_destinations``) for the wait the
  reply names, else ``tickets.rate_limit_pause_seconds``, doubling while limits repeat; the
  event keeps its attempts. Writes are paced per destination
  (``tickets.write_interval_seconds``: GitHub 1 s). What the budget leaves waits in the outbox.
- **Loud failures.** 5xx and timeouts back off exponentially with jitter until
  ``tickets.max_attempts``; 4xx rejections fail the event at once; a 401, or a destination
  the provider's once-per-run check refuses (a GitHub repository others can read), stops
  delivery and leaves every event pending. ``RelayReport.raise_if_failed`` turns them into one
  line.
- **Redaction.** With ``extra.redact`` every event goes out without customers and amounts
  (``text.redacted``), pointing to the finding's report instead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from revleak import connections, warehouse
from revleak.config import Tickets, load_config
from revleak.errors import RevleakError
from revleak.tickets import text
from revleak.tickets.base import (
    AuthError,
    Deferred,
    DeliveryError,
    Destination,
    Outcome,
    Provider,
    RateLimited,
    Refused,
    RejectedError,
)
from revleak.tickets.providers import provider_for

CONN_ID = "revleak_tickets"
ENV_VAR = connections.env_var(CONN_ID)
CLOCK_SKEW = timedelta(minutes=10)  # look back this much further than the attempt in doubt
MAX_PAUSE_SECONDS = 3600
PAUSE_LOOK_SECONDS = 1.0  # how often a worker reads a pause another relay may have set
log = logging.getLogger(__name__)


def backoff(attempt: int) -> float:
    """Seconds before the next attempt of an event whose attempt ``attempt`` failed: doubling
    from 2 s, at most 5 minutes, plus up to 2 s of jitter so relays do not retry in step. The
    wait is kept in the outbox (``next_attempt_at``), so it holds across relay runs."""
    return min(2.0 ** attempt, 300.0) + random.uniform(0, 2)

CANDIDATES = """
select e.event_id from revleak.ticket_outbox e
where e.status = 'pending' and e.next_attempt_at <= now()
  and not exists (select from revleak.ticket_outbox p
                  where p.fingerprint = e.fingerprint and p.event_id < e.event_id
                    and p.status <> 'delivered')
order by e.event_id
for update skip locked
limit 8
"""
LOCK = "select pg_try_advisory_lock(hashtext('revleak.ticket_outbox'), (%(id)s %% 2147483647)::int)"
UNLOCK = "select pg_advisory_unlock(hashtext('revleak.ticket_outbox'), (%(id)s %% 2147483647)::int)"
START = """
update revleak.ticket_outbox
set in_doubt_since = case when attempt_started_at is not null
                          then coalesce(in_doubt_since, attempt_started_at)
                          else in_doubt_since end,
    attempt_started_at = now()
where event_id = %(id)s and status = 'pending'
returning event_id, fingerprint, generation, action, idempotency_key, payload, attempts,
          in_doubt_since, extract(epoch from now() - in_doubt_since)::float8 as doubt_age
"""
# Every outcome but delivery: keep the doubt if this attempt may have written.
SETTLE = """
update revleak.ticket_outbox
set attempts = attempts + %(counts)s, status = %(status)s, last_error = %(error)s,
    next_attempt_at = greatest(now() + %(delay)s, coalesce(%(until)s::timestamptz, now())),
    in_doubt_since = case when %(doubt)s then coalesce(in_doubt_since, attempt_started_at)
                          else in_doubt_since end,
    attempt_started_at = null
where event_id = %(id)s
"""
DELIVERED = """
update revleak.ticket_outbox
set status = 'delivered', attempts = attempts + 1, delivered_at = now(), ticket_key = %(key)s,
    last_error = null, notice = %(notice)s, attempt_started_at = null, in_doubt_since = null
where event_id = %(id)s
"""
PACE = """
insert into revleak.ticket_destinations as d (destination, next_write_at)
values (%(dest)s, now() + %(gap)s)
on conflict (destination) do update
set next_write_at = greatest(d.next_write_at, d.paused_until, now()) + %(gap)s
returning extract(epoch from d.next_write_at - %(gap)s - now())::float8
"""
PAUSE = """
insert into revleak.ticket_destinations as d (destination, paused_until, pause_reason,
                                              pause_streak)
values (%(dest)s, now() + make_interval(secs => coalesce(%(wait)s::float8, %(base)s)),
        %(reason)s, (%(wait)s::float8 is null)::int)
on conflict (destination) do update
set paused_until = greatest(d.paused_until, now() + make_interval(secs => coalesce(
        %(wait)s::float8, least(%(base)s * 2 ^ d.pause_streak, %(cap)s)))),
    pause_reason = excluded.pause_reason,
    pause_streak = d.pause_streak + excluded.pause_streak
returning paused_until
"""
PAUSED = """
select extract(epoch from paused_until - now())::float8, paused_until, pause_reason
from revleak.ticket_destinations where destination = %s and paused_until > now()
"""
NEXT_DUE = """
select extract(epoch from min(e.next_attempt_at) - now())::float8
from revleak.ticket_outbox e
where e.status = 'pending'
  and not exists (select from revleak.ticket_outbox p
                  where p.fingerprint = e.fingerprint and p.event_id < e.event_id
                    and p.status = 'failed')
"""


class TicketsFailed(RevleakError):
    """Ticket events that will not go out without a person: one line saying what to fix."""


@dataclass
class RelayReport:
    delivered: Counter = field(default_factory=Counter)
    retried: int = 0
    failures: Counter = field(default_factory=Counter)  # one-line reason → events
    stopped: str | None = None  # why delivery stopped for every event (401, refused)
    paused: str | None = None  # the last rate limit that paused the destination
    notices: Counter = field(default_factory=Counter)  # delivered, with something to fix
    pending: int = 0
    failed_earlier: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def merge(self, other: RelayReport) -> None:
        self.delivered.update(other.delivered)
        self.retried += other.retried
        self.failures.update(other.failures)
        self.notices.update(other.notices)
        self.stopped = self.stopped or other.stopped
        self.paused = other.paused or self.paused

    def __str__(self) -> str:
        done = ", ".join(f"{n} {a}" for a, n in sorted(self.delivered.items())) or "nothing"
        line = (f"delivered {done}; {self.retried} retries scheduled, {self.failed} failed, "
                f"{self.pending} pending for the next run")
        if self.paused and self.pending:
            line += f" (rate-limited: {self.paused})"
        if self.failed_earlier:
            line += (f"; {self.failed_earlier} failed earlier (`revleak tickets --retry-failed` "
                     "re-queues)")
        for notice, n in self.notices.most_common():
            line += f"; to fix ({n}×): {notice}"
        return line

    def raise_if_failed(self) -> None:
        """Raise one line when delivery stopped or events failed in this run."""
        if self.stopped:
            raise TicketsFailed(
                f"ticket delivery stopped: {self.stopped}; {self.pending} events wait in the "
                "outbox and go out on the next run (`revleak tickets` lists them)")
        if self.failures:
            reason, _ = self.failures.most_common(1)[0]
            more = len(self.failures) - 1
            raise TicketsFailed(
                f"{self.failed} ticket event{'s' if self.failed != 1 else ''} failed: {reason}"
                + (f" (and {more} other reason{'s' if more != 1 else ''})" if more else "")
                + "; `revleak tickets` lists them, `revleak tickets --retry-failed` re-queues")


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


def _reason(provider: str, e: Exception) -> str:
    """The one-line reason a person acts on."""
    if isinstance(e, AuthError):
        return (f"401 from {provider} — check the {CONN_ID} connection's login/password "
                "(token)")
    if isinstance(e, RejectedError) and e.status == 403:
        return f"403 from {provider} — the {CONN_ID} user lacks a permission: {e}"
    return str(e)


class _Run:
    """What the workers of one relay run share."""

    def __init__(self, dest: Destination, settings: Tickets, deadline: float):
        self.dest = dest
        self.deadline = deadline
        self.max_attempts = int(settings.max_attempts)
        self.write_gap = timedelta(seconds=float(
            settings.write_interval_seconds.get(dest.provider, 0)))
        self.pause_base = float(settings.rate_limit_pause_seconds)
        self.settle = float(settings.search_settle_seconds)
        self.redact = dest.flag("redact")
        self.stop = threading.Event()
        self.limited = False  # a rate limit was met in this run
        self.checked = False  # the destination passed the provider's preflight in this run
        self.refusal: RejectedError | None = None  # what the preflight refused for good
        self.checking = threading.Lock()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, provider: Provider) -> None:
        """The provider's preflight, once per run, by the first worker about to deliver (the
        others wait for it); raises what it met, so the event's attempt settles as usual. A
        refusal or a 401 holds for the rest of the run (the other workers' events wait quietly:
        one line says it); anything else is asked again."""
        with self.checking:
            if self.refusal is not None:
                raise Deferred(str(self.refusal), retry_after=0)
            if not self.checked:
                try:
                    provider.preflight()
                except (AuthError, Refused) as e:
                    self.refusal = e
                    raise
                self.checked = True

    def pacer(self, conn: psycopg.Connection):
        """Before each write: take the destination's next write slot (shared by every worker
        and every relay through the warehouse) and wait for it."""
        if not self.write_gap:
            return None

        def wait() -> None:
            delay = conn.execute(PACE, {"dest": self.dest.key, "gap": self.write_gap}
                                 ).fetchone()[0]
            if delay >= self.left():
                self.stop.set()  # every later slot is later still
                raise Deferred("the relay's budget ends before the next write slot",
                               retry_after=0)
            time.sleep(max(0.0, delay))

        return wait

    def pause(self, conn: psycopg.Connection, wait: float | None, reason: str) -> Any:
        return conn.execute(PAUSE, {"dest": self.dest.key, "wait": wait, "base": self.pause_base,
                                    "cap": MAX_PAUSE_SECONDS, "reason": reason[:500]}
                            ).fetchone()[0]


def _claim(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The next deliverable event, held by this connection's advisory lock, its attempt
    recorded and committed."""
    with conn.transaction():
        for (event_id,) in conn.execute(CANDIDATES).fetchall():
            if not conn.execute(LOCK, {"id": event_id}).fetchone()[0]:
                continue  # another worker's attempt is under way
            event = conn.cursor(row_factory=dict_row).execute(START, {"id": event_id}).fetchone()
            if event is not None:
                return event
            conn.execute(UNLOCK, {"id": event_id})
    return None


def _deliver(run: _Run, conn: psycopg.Connection, provider: Provider, event: dict[str, Any],
             payload: dict[str, Any]) -> Outcome:
    """Send the event, looking first when an earlier attempt may have written."""
    fp, gen = event["fingerprint"], event["generation"]
    since = event["in_doubt_since"] - CLOCK_SKEW if event["in_doubt_since"] else None
    if event["action"] == "open":
        if since is not None:
            key = provider.find(payload, since)
            if key is not None:
                log.info("ticket event %s: found %s from an earlier attempt", event["event_id"],
                         key)
                return Outcome(key)
            wait = run.settle - event["doubt_age"]
            if not provider.consistent_find and wait > 0:
                raise Deferred(f"{provider.name} search may not show a ticket created "
                               f"{event['doubt_age']:.0f}s ago yet", retry_after=wait)
        return provider.open(payload)
    row = conn.execute("select ticket_key from revleak.tickets where fingerprint = %s"
                       " and generation = %s", (fp, gen)).fetchone()
    if row is None:
        raise RejectedError(f"no ticket was opened for {fp} generation {gen}")
    return getattr(provider, event["action"])(row[0], payload, since)


def _record(conn: psycopg.Connection, dest: Destination, event: dict[str, Any],
            payload: dict[str, Any], outcome: Outcome) -> None:
    fp, gen, action = event["fingerprint"], event["generation"], event["action"]
    with conn.transaction():
        if action == "open":
            conn.execute(
                "insert into revleak.tickets (fingerprint, generation, ticket_key, provider,"
                " previous_ticket_key) values (%s, %s, %s, %s, %s)"
                " on conflict (fingerprint, generation) do update"
                " set ticket_key = excluded.ticket_key",
                (fp, gen, outcome.key, dest.provider, payload.get("previous_ticket_key")))
            conn.execute("update revleak.findings set ticket_key = %s"
                         " where fingerprint = %s and ticket_generation = %s",
                         (outcome.key, fp, gen))
        if action in ("resolve", "escalate"):
            conn.execute("update revleak.tickets set resolved_at = case when %(action)s ="
                         " 'resolve' then now() else resolved_at end, escalated_at = case when"
                         " %(action)s = 'escalate' then now() else escalated_at end"
                         " where fingerprint = %(fp)s and generation = %(gen)s",
                         {"action": action, "fp": fp, "gen": gen})
        conn.execute(DELIVERED, {"id": event["event_id"], "key": outcome.key,
                                 "notice": "; ".join(outcome.notices) or None})


def _attempt(run: _Run, conn: psycopg.Connection, provider: Provider, event: dict[str, Any],
             report: RelayReport) -> None:
    payload = text.render(event["payload"], event["idempotency_key"], redact=run.redact)
    provider.http.begin()
    try:
        run.check(provider)
        outcome = _deliver(run, conn, provider, event, payload)
    except (DeliveryError, RejectedError) as e:
        doubt = provider.http.applied or getattr(e, "maybe_applied", False)
        conn.execute(SETTLE, {**_setback(run, conn, provider, event, e, report),
                              "id": event["event_id"], "doubt": doubt, "error": str(e)[:500]})
        return
    _record(conn, run.dest, event, payload, outcome)
    if run.limited:  # delivered again: the next limit that names no wait starts short
        conn.execute("update revleak.ticket_destinations set pause_streak = 0"
                     " where destination = %s and pause_streak > 0", (run.dest.key,))
    report.delivered[event["action"]] += 1
    report.notices.update(outcome.notices)
    log.info("ticket event %s (%s): %s", event["event_id"], event["action"], outcome.key)
    if provider.http.exhausted_for is not None:
        run.pause(conn, provider.http.exhausted_for, f"{provider.name} rate budget used up")


def _setback(run: _Run, conn: psycopg.Connection, provider: Provider, event: dict[str, Any],
             e: Exception, report: RelayReport) -> dict[str, Any]:
    """How an attempt that did not deliver changes the event: attempts counted, status, when
    to try again."""
    what = f"ticket event {event['event_id']} ({event['action']})"
    later = {"counts": 0, "status": "pending", "delay": timedelta(0), "until": None}
    if isinstance(e, Deferred):
        log.info("%s deferred: %s", what, e)
        return {**later, "delay": timedelta(seconds=e.retry_after or 0)}
    if isinstance(e, RateLimited):
        run.limited = True
        until = run.pause(conn, e.retry_after, str(e))
        report.paused = f"{provider.name} until {until:%Y-%m-%d %H:%M:%S %Z}"
        log.warning("%s: %s; %s paused until %s", what, e, provider.name, until)
        return {**later, "until": until}
    if isinstance(e, AuthError | Refused):
        report.stopped = _reason(provider.name, e)
        run.stop.set()
        log.error("%s: %s; delivery stopped", what, e)
        return later
    if isinstance(e, DeliveryError):
        attempt = event["attempts"] + 1
        delay = e.retry_after if e.retry_after is not None else backoff(attempt)
        log.warning("%s attempt %s failed: %s", what, attempt, e)
        if attempt >= run.max_attempts:
            report.failures[f"gave up after {attempt} attempts: {e}"] += 1
            return {**later, "counts": 1, "status": "failed"}
        report.retried += 1
        return {**later, "counts": 1, "delay": timedelta(seconds=delay)}
    report.failures[_reason(provider.name, e)] += 1
    log.error("%s rejected: %s", what, e)
    return {**later, "counts": 1, "status": "failed"}


def _worker(run: _Run) -> RelayReport:
    report = RelayReport()
    with warehouse.connect(autocommit=True) as conn:
        provider = provider_for(run.dest, run.pacer(conn))
        next_look = 0.0  # when to look again whether the destination is paused
        try:
            while not run.stop.is_set() and run.left() > 0:
                paused = None
                if time.monotonic() >= next_look or run.limited:
                    paused = conn.execute(PAUSED, (run.dest.key,)).fetchone()
                    next_look = time.monotonic() + PAUSE_LOOK_SECONDS
                if paused:
                    report.paused = f"{provider.name} until {paused[1]:%Y-%m-%d %H:%M:%S %Z}"
                    if paused[0] >= run.left():
                        return report
                    time.sleep(paused[0])
                    continue
                event = _claim(conn)
                if event is None:
                    wait = conn.execute(NEXT_DUE).fetchone()[0]
                    if wait is None or wait >= run.left():
                        return report
                    time.sleep(min(max(wait, 0.1), run.left()))
                    continue
                try:
                    _attempt(run, conn, provider, event, report)
                finally:
                    conn.execute(UNLOCK, {"id": event["event_id"]})
        finally:
            provider.close()
    return report


def relay(dest: Destination | None = None, budget_seconds: float | None = None,
          workers: int | None = None, settings: dict[str, Any] | None = None) -> RelayReport:
    """Deliver what is pending, within the budget; report what is left. ``settings``
    overrides keys of the configuration's ``tickets`` section."""
    settings = load_config().tickets.model_copy(update=settings)
    dest = dest or destination()
    report = RelayReport()
    if dest is not None:
        try:  # a misconfigured connection is one clear line, not a traceback per worker
            provider_for(dest).close()
        except ValueError as e:
            raise RevleakError(f"connection {CONN_ID}: {e}") from None
        run = _Run(dest, settings,
                   time.monotonic() + (budget_seconds or settings.relay_budget_seconds))
        n = workers or settings.workers
        with ThreadPoolExecutor(n) as pool:
            for part in pool.map(lambda _: _worker(run), range(n)):
                report.merge(part)
    with warehouse.connect() as conn:
        report.pending, failed = conn.execute(
            "select count(*) filter (where status = 'pending'),"
            " count(*) filter (where status = 'failed') from revleak.ticket_outbox").fetchone()
    report.failed_earlier = failed - report.failed
    return report
