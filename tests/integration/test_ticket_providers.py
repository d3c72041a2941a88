"""Ticket providers against fake Jira, ServiceNow, GitHub and webhook servers over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from revleak.tickets.base import DeliveryError, RejectedError
from revleak.tickets.providers import (
    GitHubProvider,
    JiraProvider,
    ServiceNowProvider,
    WebhookProvider,
    parse_retry_after,
    provider_for,
)
from tests.ticket_servers import (
    WEBHOOK_FIELDS,
    FakeServer,
    GitHubServer,
    JiraServer,
    ServiceNowServer,
    WebhookServer,
)

FP = "5d41402abc4b2a76b9719d911017c592"
KINDS = ("jira3", "jira2", "servicenow", "github", "webhook")


def event(**over: Any) -> dict[str, Any]:
    """A contract §5 payload plus the relay's extras."""
    base = {
        "action": "open", "fingerprint": FP, "check": "booked_vs_billed_daily",
        "category": "under_billed", "entity_type": "opportunity", "entity_id": "OPP-1042",
        "customer_id": "C-77", "as_of": "2024-06-30",
        "owner": {"team": "billing", "name": "Dana Reyes", "email": "dana@example.com",
                  "account_id": "acc-dana"},
        "escalation_owner": {"team": "finance", "name": "Lee Park", "email": "lee@example.com",
                             "account_id": "acc-lee"},
        "due_date": "2024-07-05", "gap_amount": 12500.0, "gap_amount_base": 11500.0,
        "currency": "EUR", "gap_pct": 25.0, "days_outstanding": 12,
        "time_weighted_loss": 138000.0, "expected_amount": 50000.0, "actual_amount": 37500.0,
        "priority": "high", "previous_ticket_key": None, "generation": 1,
        "title": "[revleak] under_billed: opportunity OPP-1042 — gap 12500.00 EUR",
    }
    return {**base, **over}


def make_server(kind: str) -> FakeServer:
    return {"jira3": lambda: JiraServer("3"), "jira2": lambda: JiraServer("2"),
            "servicenow": ServiceNowServer, "github": GitHubServer,
            "webhook": WebhookServer}[kind]()


def secret_strings(server: FakeServer, *extra: str) -> list[str]:
    """The password and its Basic-auth encoding, plus any other secrets used by the test."""
    found = [server.password, *extra]
    if server.login:
        found.append(base64.b64encode(f"{server.login}:{server.password}".encode()).decode())
    return [s for s in found if s]


def assert_clean(exc: BaseException, server: FakeServer, *extra: str) -> None:
    text = f"{exc!s} {exc!r}"
    for secret in secret_strings(server, *extra):
        assert secret not in text


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
           ) -> Iterator[FakeServer]:
    """Each fake server in turn; on teardown no secret may appear in the DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    srv = make_server(request.param).start()
    yield srv
    srv.stop()
    assert not srv.errors, srv.errors
    for secret in secret_strings(srv):
        assert secret not in caplog.text


@pytest.fixture
def provider(server: FakeServer) -> Iterator[Any]:
    p = provider_for(server.destination(timeout=0.5))
    yield p
    p.close()


def created(server: FakeServer) -> int:
    return len([t for t in server.tickets.values() if not t.get("pull_request")])


# --------------------------------------------------------------------------- lifecycles


@pytest.mark.parametrize("version", ["3", "2"])
def test_jira_lifecycle(version: str) -> None:
    with JiraServer(version) as jira:
        p = provider_for(jira.destination())
        assert isinstance(p, JiraProvider)
        key = p.open(event(), "k-open")
        t = jira.tickets[key]
        assert t["labels"] == ["revleak", f"revleak-{FP}", "under_billed"]
        assert (t["assignee"], t["duedate"], t["priority"]) == ("acc-dana", "2024-07-05", "High")
        assert "Due: 2024-07-05" in t["description"] and "Dana Reyes" in t["description"]
        sent = next(r for r in jira.requests_log if r.method == "POST").json()["fields"]
        if version == "3":
            assert sent["description"]["type"] == "doc"
            assert sent["assignee"] == {"accountId": "acc-dana"}
        else:
            assert isinstance(sent["description"], str)
            assert sent["assignee"] == {"name": "acc-dana"}

        assert p.find(FP) == key
        p.update(key, event(gap_amount=15000.0), "k-update")
        assert "15,000.00 EUR" in jira.comments(key)[-1]
        p.escalate(key, event(), "k-escalate")
        assert t["assignee"] == "acc-lee" and "Lee Park" in jira.comments(key)[-1]
        p.resolve(key, event(resolved_as_of="2024-07-10"), "k-resolve")
        assert (t["status"], t["transitions"]) == ("Done", ["Done"])
        assert "2024-07-10" in jira.comments(key)[-1] and len(jira.comments(key)) == 3
        assert p.find(FP) is None  # a done issue is never recovered for a new generation
        p.resolve(key, event(), "k-resolve")  # a retried resolve does not transition again
        assert t["transitions"] == ["Done"] and not jira.errors
        p.close()


def test_jira_custom_and_missing_transition() -> None:
    with JiraServer() as jira:
        p = provider_for(jira.destination(resolve_transition="won't DO"))
        key = p.open(event(), "k1")
        p.resolve(key, event(), "k2")
        assert jira.tickets[key]["status"] == "Won't Do"
        q = provider_for(jira.destination(resolve_transition="Closed"))
        key2 = q.open(event(fingerprint="f2"), "k3")
        with pytest.raises(RejectedError, match="no transition named 'Closed'.*Done"):
            q.resolve(key2, event(), "k4")


def test_servicenow_lifecycle() -> None:
    with ServiceNowServer() as snow:
        p = provider_for(snow.destination())
        assert isinstance(p, ServiceNowProvider)
        key = p.open(event(), "k-open")
        rec = snow.tickets[key]
        assert rec["number"].startswith("INC")
        assert (rec["correlation_id"], rec["correlation_display"]) == (FP, "revleak")
        assert (rec["due_date"], rec["assigned_to"]) == ("2024-07-05 23:59:59", "acc-dana")
        assert (rec["urgency"], rec["impact"], rec["priority"]) == ("1", "2", "2")
        assert p.find(FP) == key
        assert p.find("other") is None
        p.update(key, event(gap_amount=15000.0), "k-update")
        assert "15,000.00 EUR" in snow.comments(key)[-1]
        p.escalate(key, event(), "k-escalate")
        assert rec["assigned_to"] == "acc-lee"
        p.resolve(key, event(), "k-resolve")
        assert (rec["state"], rec["close_code"]) == ("6", "Solved (Permanently)")
        assert rec["close_notes"].startswith("Resolved by revleak")
        assert rec["active"] and p.find(FP) is None  # resolved (still active) is not recovered
        p.close()


def test_servicenow_custom_table_and_close_code() -> None:
    with ServiceNowServer(table="problem") as snow:
        p = provider_for(snow.destination(resolved_state="7", close_code="Resolved by caller"))
        key = p.open(event(priority="low"), "k1")
        assert (snow.tickets[key]["number"][:3], snow.tickets[key]["priority"]) == ("PRB", "4")
        p.resolve(key, event(), "k2")
        assert (snow.tickets[key]["state"], snow.tickets[key]["active"]) == ("7", False)
        assert snow.tickets[key]["close_code"] == "Resolved by caller"


def test_github_lifecycle() -> None:
    with GitHubServer() as gh:
        p = provider_for(gh.destination())
        assert isinstance(p, GitHubProvider)
        key = p.open(event(), "k-open")
        issue = gh.tickets[key]
        assert key == "1" and issue["labels"] == ["revleak", f"revleak:{FP}", "under_billed"]
        assert issue["assignees"] == ["acc-dana"]
        assert "Due: 2024-07-05" in issue["body"] and "Dana Reyes" in issue["body"]
        headers = gh.requests_log[0].headers
        assert headers["Accept"] == "application/vnd.github+json"
        assert headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert not any(h.lower() == "authorization" for h in headers)
        gh.add_pull_request("a PR with the same label", [f"revleak:{FP}"])  # newer: listed first
        assert p.find(FP) == key
        p.update(key, event(gap_amount=15000.0), "k-update")
        p.escalate(key, event(), "k-escalate")
        assert issue["assignees"] == ["acc-dana", "acc-lee"] and len(issue["comments"]) == 2
        p.resolve(key, event(), "k-resolve")
        assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
        assert p.find(FP) is None
        p.close()


def test_webhook_lifecycle_signature_and_idempotency() -> None:
    with WebhookServer() as wh:
        p = provider_for(wh.destination())
        assert isinstance(p, WebhookProvider)
        assert p.open(event(), "idem-open") == "WH-1"
        first = wh.deliveries[0]
        raw, headers = first["raw"], first["headers"]
        expected = hmac.new(wh.secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Revleak-Signature"] == f"sha256={expected}"
        assert headers["Idempotency-Key"] == "idem-open"
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(raw)
        assert raw == json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        assert set(payload) == set(WEBHOOK_FIELDS) and payload["action"] == "open"
        assert payload["owner"]["name"] == "Dana Reyes" and payload["gap_amount"] == 12500.0

        assert p.find(FP) is None
        assert p.open(event(), "idem-open") == "WH-1"  # a retried delivery: same reply
        assert len(wh.tickets) == 1 and wh.deliveries[-1]["duplicate"]
        p.update("WH-1", event(), "idem-update")
        p.escalate("WH-1", event(), "idem-escalate")
        esc = wh.deliveries[-1]["payload"]
        assert (esc["action"], esc["escalated"]) == ("update", True)
        assert esc["escalation_owner"]["name"] == "Lee Park"
        p.resolve("WH-1", event(), "idem-resolve")
        assert wh.tickets["WH-1"]["state"] == "resolved" and wh.tickets["WH-1"]["escalated"]
        p.close()


def test_webhook_reply_without_key_uses_fingerprint() -> None:
    with WebhookServer() as wh:
        wh.fail_next(1, status=202)
        p = provider_for(wh.destination())
        assert p.open(event(), "k") == FP


def test_relay_rendered_bodies() -> None:
    """The relay's markdown body: kept for GitHub, plain ``label: value`` lines elsewhere."""
    from revleak.tickets.relay import render

    def rendered(action: str) -> dict[str, Any]:
        return render(event(action=action, evidence={}, routed=True,
                            first_seen_as_of="2024-06-18"))

    with JiraServer() as jira, ServiceNowServer() as snow, GitHubServer() as gh:
        j, s, g = (provider_for(x.destination()) for x in (jira, snow, gh))
        jkey, skey, gkey = (p.open(rendered("open"), "k") for p in (j, s, g))
        description = jira.tickets[jkey]["description"]
        assert "Owner: Dana Reyes (billing, dana@example.com)" in description
        assert "Due: 2024-07-05" in description and "Gap: EUR 12,500.00 (25.0%)" in description
        assert not any(mark in description for mark in ("|", "**", "`"))
        assert snow.tickets[skey]["description"].count("Owner:") == 1
        assert gh.tickets[gkey]["body"] == rendered("open")["body"]  # markdown, no extra footer
        for p, key in ((j, jkey), (s, skey), (g, gkey)):
            p.update(key, rendered("update"), "k")
            p.resolve(key, rendered("resolve"), "k")
        assert jira.comments(jkey)[0].startswith("Update as of 2024-06-30: the gap is now")
        assert snow.tickets[skey]["close_notes"].startswith("Resolved as of 2024-06-30:")
        assert gh.comments(gkey)[-1].startswith("**Resolved as of 2024-06-30:**")


# --------------------------------------------------------------------------- failures


def test_wrong_credentials_are_rejected(server: FakeServer) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    p = provider_for(replace(server.destination(), password=wrong))
    with pytest.raises(RejectedError, match="401") as info:
        p.open(event(), "k")
    assert_clean(info.value, server, wrong)
    assert created(server) == 0


def test_server_error_is_retryable_and_not_retried(server: FakeServer, provider: Any) -> None:
    server.fail_next(1, status=500)
    with pytest.raises(DeliveryError, match="500") as info:
        provider.open(event(), "k")
    assert info.value.retry_after is None and len(server.requests_log) == 1
    assert_clean(info.value, server)
    assert provider.open(event(), "k")  # the next attempt goes through


def test_429_carries_retry_after(server: FakeServer, provider: Any) -> None:
    server.fail_next(1, status=429, retry_after=2)
    with pytest.raises(DeliveryError, match="429") as info:
        provider.open(event(), "k")
    assert info.value.retry_after == 2.0
    assert_clean(info.value, server)


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with JiraServer() as jira:
        jira.fail_next(1, status=503, retry_after=when)
        with pytest.raises(DeliveryError) as info:
            provider_for(jira.destination()).find(FP)
    assert 25 <= (info.value.retry_after or 0) <= 30


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Mon, 01 Jan 2024 00:01:00 GMT", now) == 60
    assert parse_retry_after("Sun, 31 Dec 2023 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_github_rate_limit_403_is_retryable() -> None:
    with GitHubServer() as gh:
        p = provider_for(gh.destination())
        reset = str(int(time.time()) + 60)
        gh.fail_next(1, status=403, headers={"X-RateLimit-Remaining": "0",
                                             "X-RateLimit-Reset": reset})
        with pytest.raises(DeliveryError) as info:
            p.open(event(), "k")
        assert 50 <= (info.value.retry_after or 0) <= 60
        gh.fail_next(1, status=403)  # a plain 403 is a permission problem
        with pytest.raises(RejectedError):
            p.open(event(), "k")


def test_timeout_is_retryable(server: FakeServer) -> None:
    p = provider_for(server.destination(timeout=0.2))
    server.delay_next(1, seconds=0.8)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out") as info:
        p.update("1", event(), "k")
    assert time.monotonic() - started < 0.7
    assert_clean(info.value, server)
    p.close()


def test_connection_reset_is_retryable(server: FakeServer, provider: Any) -> None:
    server.reset_next(1)
    with pytest.raises(DeliveryError, match="connection failed") as info:
        provider.open(event(), "k")
    assert_clean(info.value, server)


def test_crash_after_create_is_recovered(server: FakeServer, provider: Any) -> None:
    server.crash_after_create_next()
    with pytest.raises(DeliveryError) as info:
        provider.open(event(), "idem")
    assert_clean(info.value, server)
    assert created(server) == 1
    (key,) = server.tickets
    if isinstance(server, WebhookServer):  # no find(): the receiver dedupes the retry
        assert provider.find(FP) is None
        assert provider.open(event(), "idem") == key
    else:
        assert provider.find(FP) == key
    assert created(server) == 1


def test_invalid_request_is_rejected_with_reason(server: FakeServer) -> None:
    dest = server.destination()
    broken = {"jira": {"extra": {**dest.extra, "issue_type": "Epic"}},
              "servicenow": {"extra": {"table": "change_request"}},
              "github": {"extra": {"repo": "acme/other"}},
              "webhook": {"base_url": server.url + "/nope"}}[server.provider]
    p = provider_for(replace(dest, **broken))
    with pytest.raises(RejectedError, match=r"HTTP 4\d\d") as info:
        p.open(event(), "k")
    assert_clean(info.value, server)
    if server.provider == "jira":
        assert "issuetype" in str(info.value)


# --------------------------------------------------------------------------- the fakes


def test_fakes_enforce_content_type(server: FakeServer) -> None:
    path = {"jira": f"/rest/api/{getattr(server, 'version', '')}/issue",
            "servicenow": "/api/now/table/incident", "github": "/repos/acme/revenue/issues",
            "webhook": ""}[server.provider]
    auth = (server.login, server.password) if server.login else None
    headers = {"Content-Type": "text/plain"}
    if server.provider == "github":
        headers["Authorization"] = f"Bearer {server.password}"
    url = server.url + path
    assert requests.post(url, data=b"{}", auth=auth, headers=headers, timeout=2).status_code == 415


def test_fake_jira_validates_documented_shapes() -> None:
    with JiraServer("3") as jira:
        fields = {"project": {"key": "REV"}, "issuetype": {"name": "Task"}, "summary": "s",
                  "description": "plain text is not ADF", "duedate": "05/07/2024",
                  "labels": ["has space"]}
        resp = requests.post(f"{jira.url}/rest/api/3/issue", json={"fields": fields},
                             auth=(jira.login, jira.password), timeout=2)
        assert resp.status_code == 400
        assert set(resp.json()["errors"]) == {"description", "duedate", "labels"}
        assert requests.get(f"{jira.url}/rest/api/3/search", timeout=2,
                            auth=(jira.login, jira.password)).status_code == 410


# --------------------------------------------------------------------------- configuration


def test_provider_for_rejects_unknown_and_incomplete_destinations() -> None:
    with JiraServer() as jira:
        dest = jira.destination()
        with pytest.raises(ValueError, match="github, jira, servicenow, webhook"):
            provider_for(replace(dest, provider="zendesk"))
        with pytest.raises(ValueError, match="extra.project"):
            provider_for(replace(dest, extra={}))
        with pytest.raises(ValueError, match="api_version"):
            provider_for(replace(dest, extra={"project": "REV", "api_version": "4"}))
        with pytest.raises(ValueError, match="repo"):
            provider_for(replace(dest, provider="github", extra={"repo": "nope"}))
        unsigned = provider_for(replace(dest, provider="webhook", password=None))
        assert unsigned.sign(b"{}") == "sha256=" + hmac.new(b"", b"{}", hashlib.sha256).hexdigest()
