"""Price signals (docs/pricing.md): each subscription drift the pricing checks find is one
event in ``revleak.price_signals`` (written with the findings, sql/signals/events.sql), sent
here to the webhook of the connection ``revleak_price_signals`` — a signed JSON POST exactly as
the ticket webhook sends (``X-Revleak-Signature: sha256=<HMAC of the body with the connection's
password>``, an ``Idempotency-Key`` that is the signal's key, the same on every retry).

Without the connection the signals wait and the task says so. A delivery that fails (5xx,
timeout, unreachable, rate limit) stops the round and raises ``SignalsFailed``, so the DAG
task's next attempt sends again; a refusal (4xx) raises ``SignalsRefused``: retrying will not
help until a person fixes the connection or the receiver. Either way the signals stay pending.
"""

from __future__ import annotations

import psycopg

from revleak import connections, endpoints, warehouse
from revleak.errors import RevleakError
from revleak.tickets.base import AuthError, DeliveryError, RejectedError
from revleak.tickets.webhook import WebhookProvider

CONN_ID = "revleak_price_signals"
ENV_VAR = connections.env_var(CONN_ID)
EXAMPLE = "https://:<signing secret>@receiver.example.com/hooks/prices"
BATCH = 100  # signals read at a time
LOCK = "revleak.price_signals"  # one sender at a time (an advisory lock); the next waits
PENDING = """
select signal_id, signal_key, payload from revleak.price_signals
where status = 'pending' and signal_id > %s order by signal_id limit %s
"""
DELIVERED = """
update revleak.price_signals set status = 'delivered', attempts = attempts + 1,
    attempted_at = now(), delivered_at = now(), last_error = null
where signal_id = %s
"""
NOT_DELIVERED = """
update revleak.price_signals set attempts = attempts + 1, attempted_at = now(), last_error = %s
where signal_id = %s
"""


class SignalsFailed(RevleakError):
    """Signals not delivered this time; another attempt may deliver them."""


class SignalsRefused(SignalsFailed):
    """The receiver refused signals: a person has to act before another attempt can help."""


def pending(conn: psycopg.Connection) -> int:
    return conn.execute(
        "select count(*) from revleak.price_signals where status = 'pending'").fetchone()[0]


def send() -> str:
    """Send every pending signal; one line saying what was sent (or that none could be)."""
    dest = endpoints.destination(CONN_ID, "price signals", EXAMPLE)
    with warehouse.connect(autocommit=True) as conn:
        if dest is None:
            return (f"{pending(conn)} price signals wait: no connection {CONN_ID}; set "
                    f"{ENV_VAR}='{EXAMPLE}' (a webhook) to send them")
        conn.execute("select pg_advisory_lock(hashtext(%s))", (LOCK,))
        try:
            return _send(conn, WebhookProvider(dest))
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (LOCK,))


def _send(conn: psycopg.Connection, webhook: WebhookProvider) -> str:
    delivered, refused, stopped, last = 0, [], None, 0
    try:
        while stopped is None and (rows := conn.execute(PENDING, (last, BATCH)).fetchall()):
            for signal_id, key, payload in rows:
                last = signal_id
                try:
                    webhook._post(payload, {"idempotency_key": key})
                except (DeliveryError, RejectedError) as e:
                    conn.execute(NOT_DELIVERED, (str(e), signal_id))
                    if isinstance(e, RejectedError):
                        refused.append(str(e))
                    if not isinstance(e, RejectedError) or isinstance(e, AuthError):
                        stopped = str(e)  # down, or refusing us: the others would fail too
                        break
                    continue  # only this signal was refused
                conn.execute(DELIVERED, (signal_id,))
                delivered += 1
    finally:
        webhook.close()
    done = f"{delivered} price signals delivered, {pending(conn)} pending"
    if stopped or refused:
        raise (SignalsRefused if refused else SignalsFailed)(
            f"price signals not delivered to {CONN_ID}: {stopped or refused[0]} ({done}; the "
            "pending ones go out with the next attempt or run)")
    return f"{done} ({CONN_ID})"
