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
from revleak.tickets import relay, text
from tests.books import Books
from tests.ticket_fakes import GitHubServer, JiraServer, ServiceNowServer, WebhookServer
from tests.ticket_fakes.scenario import (
    CHECK,
    FAST,
    bill_a_in_full,
    check,
    leaky_books,
    lifecycle_events,
    outbox,
)


def deliver(server, budget=30, workers=2, **settings):
    return relay.relay(server.destination(timeout=1.0), budget_seconds=budget, workers=workers,
                       settings={**FAST, **settings})


def open_fingerprints(conn):
    conn.commit()
    return {r[0] for r in conn.execute("select fingerprint from revleak.findings"
                                       " where status = 'open'")}


def test_one_ticket_per_fingerprint_through_reruns_faults_and_concurrent_relays(conn, tmp_path):
    leaky_books(conn, tmp_path)
    with JiraServer(search_lag=0.5) as jira:
        check(date(2026, 3, 10))
        jira.fail_next(1, status=500, writes_only=True)  # may have created: look first
        jira.fail_next(1, status=429, retry_after=1)
        jira.crash_after_create_next()  # created, reply lost: found once the index catches up
        report = deliver(jira)
        assert report.delivered["open"] == 3 and report.pending == 0  # A, B and the portfolio
        assert not report.failures
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
        assert [row[1] for row in outbox(conn)] == ["open"] * 3
        assert any("/search/jql" in r.path for r in jira.requests_log)  # it looked first
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
        report = deliver(gh)
        actions = [row[1] for row in outbox(conn)]
        assert actions.count("escalate") == 3 and actions.count("update") >= 2
        comments = gh.comments(a_key[0])
        assert sum("Escalated" in c for c in comments) == 1
        assert any("gap is now USD 2,000.00" in c for c in comments)
        # the escalation owners in config have no github_login: the run names the mapping
        assert any("github has no user for RevOps lead" in n for n in report.notices)
        categories = {r[0] for r in conn.execute("select category from revleak.findings")}
        assert gh.labels_used == {"revleak", CHECK} | categories  # one label set

        bill_a_in_full(conn, tmp_path)  # the gap closes and its ticket is resolved
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


@pytest.mark.parametrize("kind", ["jira", "servicenow", "github", "webhook"])
def test_escalation_means_reassign_and_comment_on_every_system(conn, tmp_path, monkeypatch,
                                                               kind):
    """The escalation owner (config routing) becomes the assignee, with one comment."""
    from revleak.config import load_config

    esc = {"team": "RevOps", "name": "RevOps lead", "email": "revops.lead@example.com"}
    server = {"jira": lambda: JiraServer(users={"revops-oncall", "lead-acc"}),
              "servicenow": lambda: ServiceNowServer(users=[("revops-oncall", "x@example.com"),
                                                            ("lead.sn", esc["email"])]),
              "github": lambda: GitHubServer(assignable={"revops-oncall", "lead-gh"}),
              "webhook": WebhookServer}[kind]()
    ids = {"jira": {"jira_account_id": "lead-acc"}, "servicenow": {},  # found by email
           "github": {"github_login": "lead-gh"}, "webhook": {}}[kind]
    config = load_config()
    rules = [r.model_copy(update={"escalation": r.escalation.model_copy(update=ids)})
             if r.escalation else r for r in config.routing.rules]
    patched = config.model_copy(update={"routing": config.routing.model_copy(
        update={"rules": rules})})
    monkeypatch.setattr("revleak.pipeline.load_config", lambda: patched)
    leaky_books(conn, tmp_path)
    with server:
        check(date(2026, 2, 10))
        check(date(2026, 3, 10))
        report = deliver(server)
        assert report.pending == 0 and not report.failures
        key = conn.execute("select ticket_key from revleak.findings where entity_id = 'A'"
                           ).fetchone()[0]
        ticket = server.tickets[key]
        if kind == "jira":
            assert ticket["assignee"] == "lead-acc"
        elif kind == "servicenow":
            assert ticket["assigned_to"] == server.user_id("lead.sn")
        elif kind == "github":
            assert ticket["assignees"] == ["lead-gh"]
        else:
            esc_event = [d["payload"] for d in server.deliveries if d["payload"].get("escalated")
                         and d["payload"]["entity_id"] == "A"]
            assert len(esc_event) == 1 and esc_event[0]["escalation_owner"]["name"] == esc["name"]
        assert sum("Escalated as of" in c for c in server.comments(key)) == 1


def test_dry_run_writes_findings_and_no_events(conn, tmp_path):
    leaky_books(conn, tmp_path)
    pipeline.run_check(CHECK, date(2026, 3, 10), dry_run=True)
    conn.commit()
    assert open_fingerprints(conn)
    assert outbox(conn) == []
    check(date(2026, 3, 10))  # the real run afterwards still opens the tickets
    assert [row[1] for row in outbox(conn)] == ["open"] * 3


def test_budget_leaves_the_rest_pending_and_nothing_is_lost(conn, tmp_path):
    leaky_books(conn, tmp_path)
    with JiraServer() as jira:
        check(date(2026, 3, 10))
        jira.fail_next(50, status=503, retry_after=30)
        report = deliver(jira, budget=2, workers=1)
        assert report.pending == 3 and not jira.tickets and not report.failures
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
        keys = [r.headers.get("Idempotency-Key") for r in hook.requests_log
                if r.method == "POST"]
        assert len(keys) == 4 and len(set(keys)) == 3  # the retry carried the same key
        stored = conn.execute("select string_agg(coalesce(last_error, ''), ' ')"
                              " from revleak.ticket_outbox").fetchone()[0]
    assert "s3cr3t-signing-key" not in caplog.text + (stored or "")


def test_every_ticket_and_comment_carries_its_event_marker(conn, tmp_path):
    lifecycle_events(conn, tmp_path)
    with JiraServer() as jira:
        deliver(jira)
        events = outbox(conn)
        assert {row[2] for row in events} == {"delivered"}
        for _, action, _, _, idem, fp, gen, _, _ in events:
            key = conn.execute("select ticket_key from revleak.tickets where fingerprint = %s"
                               " and generation = %s", (fp, gen)).fetchone()[0]
            ref = idem[:text.REF_CHARS]
            where = [jira.tickets[key]["description"]] if action == "open" \
                else jira.comments(key)
            assert sum(text.carries(w, ref) for w in where) == 1, (action, key)


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
        assert [row[1] for row in outbox(conn)].count("open") == 3


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
