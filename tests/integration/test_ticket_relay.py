"""Tickets end to end: findings → outbox (same transaction) → relay → a real HTTP ticket
system on 127.0.0.1. Exactly one ticket per fingerprint through reruns, retries, crashes,
two relays at once and a backfill; update, escalate once, resolve, reopen as a new ticket."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from datetime import date, timedelta

import pytest

from revleak import pipeline
from revleak.tickets import relay
from tests.books import Books
from tests.ticket_servers import GitHubServer, JiraServer, WebhookServer

CHECK = "booked_vs_billed_daily"
FRESH = {"stale_after_days": 366}


def leaky_books(conn, tmp_path, extra=None):
    """Two contracts that are never billed and one that is billed in full."""
    b = Books()
    b.contract("A", "12000.00", "2026-01-01", "2026-12-31", "monthly") \
        .contract("B", "6000.00", "2026-01-01", "2026-12-31", "quarterly", currency="EUR") \
        .contract("OK", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("OK1", "OK", "2026-01-01", "1000.00").fx("EUR", "2026-01-01", "1.10")
    if extra:
        extra(b)
    b.load(conn, tmp_path)


def check(day: date):
    pipeline.run_check(CHECK, day, FRESH)


def deliver(server, budget=30, workers=2):
    return relay.relay(server.destination(timeout=1.0), budget_seconds=budget, workers=workers)


def outbox(conn):
    conn.commit()
    return conn.execute("select action, status, attempts from revleak.ticket_outbox"
                        " order by event_id").fetchall()


def open_fingerprints(conn):
    conn.commit()
    return {r[0] for r in conn.execute("select fingerprint from revleak.findings"
                                       " where status = 'open'")}


def test_one_ticket_per_fingerprint_through_reruns_faults_and_concurrent_relays(conn, tmp_path):
    leaky_books(conn, tmp_path)
    with JiraServer() as jira:
        check(date(2026, 3, 10))
        jira.fail_next(1, status=500)
        jira.fail_next(1, status=429, retry_after=1)
        jira.crash_after_create_next()
        report = deliver(jira)
        assert report.delivered["open"] == 3 and report.pending == 0  # A, B and the portfolio
        check(date(2026, 3, 10))  # a rerun of the same date
        for day in range(3, 10):  # a backfill of the week before
            check(date(2026, 3, day))
        relays = [threading.Thread(target=deliver, args=(jira,)) for _ in range(2)]
        for t in relays:
            t.start()
        for t in relays:
            t.join()
        fingerprints = open_fingerprints(conn)
        labels = [t["fields"]["labels"] for t in jira.tickets.values()]
        assert len(jira.tickets) == len(fingerprints) == 3
        assert {next(lb[8:] for lb in ls if lb.startswith("revleak-")) for ls in labels} \
            == fingerprints
        assert [a for a, s, _ in outbox(conn)] == ["open"] * 3
        keys = dict(conn.execute("select fingerprint, ticket_key from revleak.findings"))
        assert set(keys.values()) == set(jira.tickets)
        ticket = jira.tickets[keys[next(iter(fingerprints))]]
        assert ticket["fields"]["duedate"] == "2026-03-17"  # 5 business days after Mar 10
        assert ticket["fields"]["assignee"] == {"accountId": "revops-oncall"}


def test_update_escalate_once_resolve_and_reopen_as_a_new_ticket(conn, tmp_path):
    leaky_books(conn, tmp_path)
    with GitHubServer() as gh:
        check(date(2026, 2, 10))
        deliver(gh)
        a_key = conn.execute("select ticket_key, fingerprint from revleak.findings"
                             " where entity_id = 'A'").fetchone()
        check(date(2026, 3, 10))  # A's gap grows 1,000 → 2,000 (> 10%); due date passed
        check(date(2026, 3, 11))  # still overdue: no second escalation
        deliver(gh)
        actions = [a for a, _, _ in outbox(conn)]
        assert actions.count("escalate") == 3 and actions.count("update") >= 2
        comments = gh.comments(a_key[0])
        assert sum("Escalated" in c for c in comments) == 1
        assert any("gap is now USD 2,000.00" in c for c in comments)

        # A gets billed in full: the gap closes and its ticket is resolved
        fix = Books()
        fix.rows["invoices"].append({"invoice_id": "A-FIX", "customer_id": "C-A",
                                     "opportunity_id": "A", "issue_date": "2026-03-12",
                                     "due_date": "2026-03-12", "currency": "USD",
                                     "status": "paid", "kind": "invoice"})
        fix.rows["invoice_lines"].append({"invoice_id": "A-FIX", "line_no": 1, "sku": "PLAN",
                                          "quantity": "1", "unit_price": "3000.00",
                                          "amount": "3000.00"})
        fix.load(conn, tmp_path / "fix")
        check(date(2026, 3, 12))
        deliver(gh)
        assert gh.tickets[a_key[0]]["state"] == "closed"
        assert "Resolved as of 2026-03-12" in gh.comments(a_key[0])[-1]

        # April's period (due May 2) goes unbilled: a new ticket that names the old one
        check(date(2026, 5, 12))
        deliver(gh)
        new_key = conn.execute("select ticket_key from revleak.findings where entity_id = 'A'"
                               ).fetchone()[0]
        assert new_key != a_key[0]
        assert f"Previous ticket | {a_key[0]}" in gh.tickets[new_key]["body"]
        generations = conn.execute("select generation, ticket_key from revleak.tickets"
                                   " where fingerprint = %s order by 1", (a_key[1],)).fetchall()
        assert generations == [(1, a_key[0]), (2, new_key)]


def test_dry_run_writes_findings_and_no_events(conn, tmp_path):
    leaky_books(conn, tmp_path)
    pipeline.run_check(CHECK, date(2026, 3, 10), FRESH, dry_run=True)
    conn.commit()
    assert open_fingerprints(conn)
    assert outbox(conn) == []
    check(date(2026, 3, 10))  # the real run afterwards still opens the tickets
    assert [a for a, _, _ in outbox(conn)] == ["open"] * 3


def test_budget_leaves_the_rest_pending_and_nothing_is_lost(conn, tmp_path):
    leaky_books(conn, tmp_path)
    with JiraServer() as jira:
        check(date(2026, 3, 10))
        jira.fail_next(50, status=503, retry_after=30)
        report = deliver(jira, budget=2, workers=1)
        assert report.pending == 3 and not jira.tickets
        jira.clear_faults()
        conn.execute("update revleak.ticket_outbox set next_attempt_at = now()")
        conn.commit()
        assert deliver(jira).delivered["open"] == 3
        assert len(jira.tickets) == 3


def test_webhook_signature_idempotency_and_no_secret_in_logs(conn, tmp_path, caplog):
    leaky_books(conn, tmp_path)
    with WebhookServer(secret="s3cr3t-signing-key") as hook:
        check(date(2026, 3, 10))
        hook.fail_next(1, status=500)
        caplog.set_level(logging.DEBUG)
        deliver(hook, workers=1)
        delivered = [d for d in hook.deliveries if not d["duplicate"]]
        assert len(delivered) == 3
        for d in hook.deliveries:
            expected = hmac.new(b"s3cr3t-signing-key", d["raw"], hashlib.sha256).hexdigest()
            assert d["headers"]["X-Revleak-Signature"] == f"sha256={expected}"
            body = json.loads(d["raw"])
            assert body["action"] == "open" and body["owner"]["name"] == "RevOps on call"
            for field in ("fingerprint", "check", "category", "entity_type", "entity_id",
                          "customer_id", "as_of", "due_date", "gap_amount", "gap_amount_base",
                          "currency", "gap_pct", "days_outstanding", "time_weighted_loss",
                          "title", "body"):
                assert field in body
        keys = [r.headers.get("Idempotency-Key") for r in hook.requests_log
                if r.method == "POST"]
        assert len(keys) == 4 and len(set(keys)) == 3  # the retry carried the same key
        stored = conn.execute("select string_agg(coalesce(last_error, ''), ' ')"
                              " from revleak.ticket_outbox").fetchone()[0]
    assert "s3cr3t-signing-key" not in caplog.text + (stored or "")


def test_relay_without_a_destination_keeps_events(conn, tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_REVLEAK_TICKETS", raising=False)
    leaky_books(conn, tmp_path)
    check(date(2026, 3, 10))
    assert "3 events wait in the outbox" in pipeline.relay_tickets()


@pytest.mark.parametrize("value", ["https://x:y@h/?provider=fax",
                                   '{"conn_type": "http", "host": "h"}'])
def test_bad_ticket_connection_is_one_clear_line(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW_CONN_REVLEAK_TICKETS", value)
    with pytest.raises(Exception, match="extra.provider must be jira, servicenow, github or"):
        relay.destination()


def test_destination_from_an_airflow_uri(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_REVLEAK_TICKETS",
                       "http://bot:tok%40en@127.0.0.1:8080/hooks/revleak?provider=webhook")
    dest = relay.destination()
    assert (dest.provider, dest.base_url, dest.login, dest.password) == (
        "webhook", "http://127.0.0.1:8080/hooks/revleak", "bot", "tok@en")


def test_backfill_of_seven_days_opens_each_ticket_once(conn, tmp_path):
    leaky_books(conn, tmp_path)
    with JiraServer() as jira:
        for offset in range(7):
            check(date(2026, 3, 10) + timedelta(days=offset))
            deliver(jira)
        for offset in range(7):
            check(date(2026, 3, 10) + timedelta(days=offset))
        deliver(jira)
        assert len(jira.tickets) == 3
        assert [a for a, _, _ in outbox(conn)].count("open") == 3


def test_fixing_a_demo_leak_resolves_its_ticket(conn, tmp_path):
    """The demo's seeded unbilled contract gets its missing invoice; the next day's run
    resolves the finding and the webhook receives `resolve` for that fingerprint."""
    from revleak import demo, loader

    manifest = demo.generate(tmp_path / "demo", seed=7, scale="small")
    loader.load(conn, tmp_path / "demo")
    conn.commit()
    as_of = date.fromisoformat(manifest["runs"][CHECK]["as_of"])
    leak = next(x for x in manifest["leaks"]
                if x["check"] == CHECK and x["category"] == "unbilled")
    with WebhookServer(secret="demo") as hook:
        pipeline.run_check(CHECK, as_of)
        deliver(hook)
        fix = Books()
        fix.rows["invoices"].append({
            "invoice_id": "FIX-1", "customer_id": leak["customer_id"],
            "opportunity_id": leak["entity_id"], "issue_date": str(as_of + timedelta(days=1)),
            "due_date": str(as_of + timedelta(days=31)), "currency": leak["currency"],
            "status": "open", "kind": "invoice"})
        fix.rows["invoice_lines"].append({
            "invoice_id": "FIX-1", "line_no": 1, "sku": "PLAN", "quantity": "1",
            "unit_price": leak["gap_amount"], "amount": leak["gap_amount"]})
        fix.load(conn, tmp_path / "fix")
        pipeline.run_check(CHECK, as_of + timedelta(days=1))
        deliver(hook)
        conn.commit()
        fingerprint, status, key = conn.execute(
            "select fingerprint, status, ticket_key from revleak.findings"
            " where entity_id = %s", (leak["entity_id"],)).fetchone()
        assert status == "resolved"
        actions = [d["payload"]["action"] for d in hook.deliveries
                   if d["payload"]["fingerprint"] == fingerprint and not d["duplicate"]]
        assert actions == ["open", "resolve"]
        assert key.startswith("WH-")  # the receiver's reply `key` became the ticket key
