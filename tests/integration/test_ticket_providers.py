"""Each ticket system's provider against its fake over real HTTP: every request checked against
the vendor's published API description (a violation fails the test as the fake closes)."""

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

from revleak.tickets import text
from revleak.tickets.base import AuthError, DeliveryError, RateLimited, RejectedError
from revleak.tickets.github import GitHubProvider
from revleak.tickets.jira import JiraProvider
from revleak.tickets.providers import provider_for
from revleak.tickets.servicenow import ServiceNowProvider
from revleak.tickets.transport import parse_retry_after
from revleak.tickets.webhook import FIELDS, WebhookProvider
from tests.ticket_fakes import (
    FakeServer,
    GitHubServer,
    JiraServer,
    ServiceNowServer,
    WebhookServer,
)

FP = "5d41402abc4b2a76b9719d911017c592"
KINDS = ("jira3", "jira2", "servicenow", "github", "webhook")
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
DANA = {"team": "billing", "name": "Dana Reyes", "email": "dana@example.com",
        "account_id": "acc-dana"}
LEE = {"team": "finance", "name": "Lee Park", "email": "lee@example.com",
       "account_id": "acc-lee"}


def event(action: str = "open", key: str | None = None, **over: Any) -> dict[str, Any]:
    """An outbox payload as the relay sends it: rendered once, with its marker."""
    payload = {
        "action": action, "fingerprint": FP, "check": "booked_vs_billed_daily",
        "category": "under_billed", "entity_type": "opportunity", "entity_id": "OPP-1042",
        "customer_id": "C-77", "as_of": "2024-06-30", "owner": DANA, "escalation_owner": LEE,
        "due_date": "2024-07-05", "gap_amount": 12500.0, "gap_amount_base": 11500.0,
        "currency": "EUR", "gap_pct": 25.0, "days_outstanding": 12,
        "time_weighted_loss": 138000.0, "expected_amount": 50000.0, "actual_amount": 37500.0,
        "first_seen_as_of": "2024-06-18", "priority": "high", "previous_ticket_key": None,
        "generation": 1, "routed": True, "evidence": {},
        "title": "[revleak] under_billed: opportunity OPP-1042 — gap 12500.00 EUR",
    }
    payload.update(over)
    return text.render(payload, key or hashlib.sha256(f"{action}{over}".encode()).hexdigest())


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
    message = f"{exc!s} {exc!r}"
    for secret in secret_strings(server, *extra):
        assert secret not in message


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
           ) -> Iterator[FakeServer]:
    """Each fake in turn; on teardown it must have seen only conforming requests, and no
    secret may appear in the DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    with make_server(request.param) as srv:
        yield srv
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
    with JiraServer(version, users={"acc-dana", "acc-lee"}) as jira:
        p = provider_for(jira.destination())
        assert isinstance(p, JiraProvider)
        opened = p.open(event())
        key, t = opened.key, jira.tickets[opened.key]
        assert opened.notices == []
        assert t["labels"] == ["revleak", f"revleak-{FP}", "under_billed"]
        assert (t["assignee"], t["duedate"], t["priority"]) == ("acc-dana", "2024-07-05", "High")
        assert "Owner: Dana Reyes (billing, dana@example.com)" in t["description"]
        assert "Due: 2024-07-05" in t["description"]
        assert not any(mark in t["description"] for mark in ("|", "**", "`"))
        sent = next(r for r in jira.requests_log if r.method == "POST").json()["fields"]
        if version == "3":
            assert sent["description"]["type"] == "doc"
            assert sent["assignee"] == {"accountId": "acc-dana"}
        else:
            assert isinstance(sent["description"], str)
            assert sent["assignee"] == {"name": "acc-dana"}

        assert p.find(event(), LONG_AGO) == key
        assert p.find(event(key="another-open-event"), LONG_AGO) is None  # other marker
        p.update(key, event("update", gap_amount=15000.0), None)
        assert "the gap is now EUR 15,000.00" in jira.comments(key)[-1]
        p.escalate(key, event("escalate"), None)
        assert t["assignee"] == "acc-lee"  # escalation = reassign + comment
        assert "Escalation owner: Lee Park" in jira.comments(key)[-1]
        p.resolve(key, event("resolve", resolved_as_of="2024-07-10"), None)
        assert (t["status"], t["transitions"]) == ("Done", ["Done"])
        assert "Resolved as of 2024-07-10" in jira.comments(key)[-1]
        assert len(jira.comments(key)) == 3
        p.resolve(key, event("resolve", resolved_as_of="2024-07-10"), LONG_AGO)  # a retry
        assert t["transitions"] == ["Done"] and len(jira.comments(key)) == 3
        p.close()


def test_jira_custom_and_missing_transition() -> None:
    with JiraServer() as jira:
        p = provider_for(jira.destination(resolve_transition="won't DO"))
        key = p.open(event()).key
        p.resolve(key, event("resolve"), None)
        assert jira.tickets[key]["status"] == "Won't Do"
        q = provider_for(jira.destination(resolve_transition="Closed"))
        key2 = q.open(event(fingerprint="f2")).key
        with pytest.raises(RejectedError, match="no transition named 'Closed'.*Done"):
            q.resolve(key2, event("resolve"), None)


def test_servicenow_lifecycle() -> None:
    with ServiceNowServer(users=[("dana", "dana@example.com"), ("lee", "lee@example.com")]
                          ) as snow:
        p = provider_for(snow.destination())
        assert isinstance(p, ServiceNowProvider)
        opened = p.open(event(owner={**DANA, "servicenow_user": "dana"}))
        key, rec = opened.key, snow.tickets[opened.key]
        assert opened.notices == []
        assert rec["number"].startswith("INC")
        assert (rec["correlation_id"], rec["correlation_display"]) == (FP, "revleak")
        assert (rec["due_date"], rec["assigned_to"]) == ("2024-07-05 23:59:59",
                                                         snow.user_id("dana"))
        assert (rec["urgency"], rec["impact"], rec["priority"]) == ("1", "2", "2")
        assert p.find(event(owner={**DANA, "servicenow_user": "dana"}), LONG_AGO) == key
        assert p.find(event(fingerprint="other"), LONG_AGO) is None
        p.update(key, event("update", gap_amount=15000.0), None)
        assert "the gap is now EUR 15,000.00" in snow.comments(key)[-1]
        # the escalation owner is found by email: no servicenow_user needed
        p.escalate(key, event("escalate", escalation_owner={**LEE, "account_id": ""}), None)
        assert rec["assigned_to"] == snow.user_id("lee") and len(snow.comments(key)) == 2
        p.resolve(key, event("resolve"), None)
        assert (rec["state"], rec["close_code"]) == ("6", "Solved (Permanently)")
        assert rec["close_notes"].startswith("Resolved as of 2024-06-30")
        p.close()


def test_servicenow_custom_table_and_close_code() -> None:
    with ServiceNowServer(table="problem") as snow:
        p = provider_for(snow.destination(resolved_state="7", close_code="Resolved by caller"))
        key = p.open(event(priority="low")).key
        assert (snow.tickets[key]["number"][:3], snow.tickets[key]["priority"]) == ("PRB", "4")
        p.resolve(key, event("resolve"), None)
        assert (snow.tickets[key]["state"], snow.tickets[key]["active"]) == ("7", False)
        assert snow.tickets[key]["close_code"] == "Resolved by caller"


def test_github_lifecycle_one_label_set_and_body_marker() -> None:
    with GitHubServer(assignable={"dana-gh", "lee-gh"}) as gh:
        p = provider_for(gh.destination())
        assert isinstance(p, GitHubProvider)
        first = event(owner={**DANA, "github_login": "dana-gh"},
                      escalation_owner={**LEE, "github_login": "lee-gh"})
        key = p.open(first).key
        issue = gh.tickets[key]
        assert key == "1" and issue["labels"] == ["revleak", "booked_vs_billed_daily",
                                                  "under_billed"]
        assert issue["assignees"] == ["dana-gh"] and issue["body"] == first["body"]
        assert f"Fingerprint: `{FP}`" in issue["body"] and text.carries(issue["body"],
                                                                         first["ref"])
        headers = gh.requests_log[0].headers
        assert headers["Accept"] == "application/vnd.github+json"
        assert headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert not any(h.lower() == "authorization" for h in headers)
        for n in range(2, 5):  # more findings: the label set does not grow
            p.open(event(fingerprint=f"fp-{n}", key=f"open-{n}"))
        assert gh.labels_used == {"revleak", "booked_vs_billed_daily", "under_billed"}
        gh.add_pull_request("a PR quoting the marker", first["body"], ["revleak"])
        assert p.find(first, LONG_AGO) == key
        p.update(key, event("update", gap_amount=15000.0), None)
        p.escalate(key, event("escalate", escalation_owner={**LEE, "github_login": "lee-gh"}),
                   None)
        assert issue["assignees"] == ["lee-gh"] and len(issue["comments"]) == 2
        p.resolve(key, event("resolve"), None)
        assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
        p.close()


def test_webhook_lifecycle_signature_and_idempotency() -> None:
    with WebhookServer() as wh:
        p = provider_for(wh.destination())
        assert isinstance(p, WebhookProvider)
        opening = event()
        assert p.open(opening).key == "WH-1"
        first = wh.deliveries[0]
        raw, headers = first["raw"], first["headers"]
        expected = hmac.new(wh.secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Revleak-Signature"] == f"sha256={expected}"
        assert headers["Idempotency-Key"] == opening["idempotency_key"]
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(raw)
        assert raw == json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        assert set(payload) == set(FIELDS) and payload["action"] == "open"
        assert payload["owner"]["name"] == "Dana Reyes" and payload["gap_amount"] == 12500.0

        assert p.find(opening, LONG_AGO) is None
        assert p.open(opening).key == "WH-1"  # a retried delivery: same reply
        assert len(wh.tickets) == 1 and wh.deliveries[-1]["duplicate"]
        p.update("WH-1", event("update"), None)
        p.escalate("WH-1", event("escalate"), None)
        esc = wh.deliveries[-1]["payload"]
        assert (esc["action"], esc["escalated"]) == ("update", True)
        assert esc["escalation_owner"]["name"] == "Lee Park"
        p.resolve("WH-1", event("resolve"), None)
        assert wh.tickets["WH-1"]["state"] == "resolved" and wh.tickets["WH-1"]["escalated"]
        p.close()


def test_webhook_reply_without_key_uses_fingerprint() -> None:
    with WebhookServer() as wh:
        wh.fail_next(1, status=202)
        p = provider_for(wh.destination())
        assert p.open(event()).key == FP


# --------------------------------------------------------------------------- identity


def assignee(srv: FakeServer, key: str) -> str | None:
    """Who the fake says the ticket is assigned to (login, accountId or user_name)."""
    ticket = srv.tickets[key]
    if isinstance(srv, ServiceNowServer):
        return next((u["user_name"] for u in srv.users
                     if u["sys_id"] == ticket.get("assigned_to")), None)
    if isinstance(srv, GitHubServer):
        return ",".join(ticket["assignees"]) or None
    return ticket["assignee"]


@pytest.mark.parametrize("kind", ["jira3", "servicenow", "github"])
def test_a_refused_assignee_still_opens_the_ticket_and_escalation_reassigns(kind: str) -> None:
    srv = {"jira3": lambda: JiraServer(users={"acc-lee"}),
           "servicenow": lambda: ServiceNowServer(users=[("acc-lee", "lee@example.com")]),
           "github": lambda: GitHubServer(assignable={"acc-lee"})}[kind]()
    with srv:
        p = provider_for(srv.destination())
        opened = p.open(event(owner={**DANA, "email": "dana.unknown@example.com"}))
        system_key = {"jira3": "jira_account_id", "servicenow": "servicenow_user",
                      "github": "github_login"}[kind]
        (notice,) = opened.notices
        assert "refused 'acc-dana' for Dana Reyes" in notice and system_key in notice
        assert created(srv) == 1 and assignee(srv, opened.key) is None
        ticket = srv.tickets[opened.key]
        assert "Dana Reyes" in (ticket.get("description") or ticket.get("body"))
        escalated = p.escalate(opened.key, event("escalate"), None)
        assert escalated.notices == [] and assignee(srv, opened.key) == "acc-lee"
        assert "Escalation owner: Lee Park" in srv.comments(opened.key)[-1]


def test_per_system_ids_win_over_account_id() -> None:
    owner = {**DANA, "jira_account_id": "5b10-dana", "github_login": "dana-gh"}
    with JiraServer(users={"5b10-dana"}) as jira, GitHubServer(assignable={"dana-gh"}) as gh:
        jkey = provider_for(jira.destination()).open(event(owner=owner)).key
        gkey = provider_for(gh.destination()).open(event(owner=owner)).key
        assert jira.tickets[jkey]["assignee"] == "5b10-dana"
        assert gh.tickets[gkey]["assignees"] == ["dana-gh"]


# --------------------------------------------------------------------------- retries in doubt


@pytest.mark.parametrize("kind", ["jira3", "jira2", "servicenow", "github"])
@pytest.mark.parametrize("action", ["update", "escalate", "resolve"])
def test_a_comment_whose_reply_was_lost_is_not_posted_twice(kind: str, action: str) -> None:
    with make_server(kind) as srv:
        p = provider_for(srv.destination(timeout=0.3))
        key = p.open(event()).key
        before = len(srv.comments(key))
        srv.delay_next(1, seconds=0.6, writes_only=True)  # applied, but answered too late
        p.http.begin()
        with pytest.raises(DeliveryError, match="timed out") as info:
            getattr(p, action)(key, event(action), None)
        assert info.value.maybe_applied and p.http.applied
        time.sleep(0.4)  # the delayed write lands
        getattr(p, action)(key, event(action), LONG_AGO)  # the retry looks first
        notes = srv.comments(key)[before:]
        ref = event(action)["ref"]
        if kind == "servicenow" and action == "resolve":  # resolution notes, not a work note
            assert notes == [] and text.carries(srv.tickets[key]["close_notes"], ref)
        else:
            assert len(notes) == 1 and text.carries(notes[0], ref)


def test_crash_after_create_is_found_by_its_marker(server: FakeServer, provider: Any) -> None:
    server.crash_after_create_next()
    with pytest.raises(DeliveryError) as info:
        provider.open(event())
    assert info.value.maybe_applied
    assert_clean(info.value, server)
    assert created(server) == 1
    (key,) = server.tickets
    if isinstance(server, WebhookServer):  # no find(): the receiver dedupes the retry
        assert provider.find(event(), LONG_AGO) is None
        assert provider.open(event()).key == key
    else:
        assert provider.find(event(), LONG_AGO) == key
    assert created(server) == 1


def test_jira_search_lags_behind_creates() -> None:
    """Why the relay waits ``search_settle_seconds`` before trusting an empty Jira search."""
    with JiraServer(search_lag=0.5) as jira:
        p = provider_for(jira.destination())
        key = p.open(event()).key
        assert p.find(event(), LONG_AGO) is None
        time.sleep(0.6)
        assert p.find(event(), LONG_AGO) == key
        assert p.consistent_find is False


# --------------------------------------------------------------------------- failures


def test_wrong_credentials_are_an_auth_error(server: FakeServer) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    p = provider_for(replace(server.destination(), password=wrong))
    with pytest.raises(AuthError, match="401") as info:
        p.open(event())
    assert_clean(info.value, server, wrong)
    assert created(server) == 0


def test_server_error_is_retryable_and_not_retried(server: FakeServer, provider: Any) -> None:
    server.fail_next(1, status=500, writes_only=True)
    with pytest.raises(DeliveryError, match="500") as info:
        provider.open(event())
    assert info.value.retry_after is None and len(server.writes()) == 1
    assert info.value.maybe_applied  # a 500 on a write may have taken effect
    assert_clean(info.value, server)
    assert provider.open(event())  # the next attempt goes through


@pytest.mark.parametrize("retry_after", [2, None])
def test_429_is_a_rate_limit(server: FakeServer, provider: Any, retry_after: int | None) -> None:
    server.fail_next(1, status=429, retry_after=retry_after)
    with pytest.raises(RateLimited, match="429") as info:
        provider.open(event())
    assert info.value.retry_after == retry_after and not info.value.maybe_applied
    assert_clean(info.value, server)


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with JiraServer() as jira:
        jira.fail_next(1, status=429, retry_after=when)
        with pytest.raises(RateLimited) as info:
            provider_for(jira.destination()).find(event(), LONG_AGO)
    assert 25 <= (info.value.retry_after or 0) <= 30


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Mon, 01 Jan 2024 00:01:00 GMT", now) == 60
    assert parse_retry_after("Sun, 31 Dec 2023 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_github_rate_limits_and_a_plain_403() -> None:
    with GitHubServer() as gh:
        p = provider_for(gh.destination())
        gh.secondary_limit_next(1)  # 403, documented message, no Retry-After
        with pytest.raises(RateLimited, match="secondary rate limit") as info:
            p.open(event())
        assert info.value.retry_after is None
        gh.secondary_limit_next(1, status=429)
        with pytest.raises(RateLimited):
            p.open(event())
        reset = str(int(time.time()) + 60)
        gh.fail_next(1, status=403, headers={"X-RateLimit-Remaining": "0",
                                             "X-RateLimit-Reset": reset})
        with pytest.raises(RateLimited) as info:
            p.open(event())
        assert 50 <= (info.value.retry_after or 0) <= 60
        gh.fail_next(1, status=403, message="Resource not accessible by integration")
        with pytest.raises(RejectedError) as denied:  # a permission problem: permanent
            p.open(event())
        assert not isinstance(denied.value, RateLimited) and denied.value.status == 403
        assert created(gh) == 0


def test_an_exhausted_budget_on_a_success_is_remembered() -> None:
    with GitHubServer() as gh:
        p = provider_for(gh.destination())
        p.http.begin()
        p.open(event())
        assert p.http.exhausted_for is None
        reset = str(int(time.time()) + 30)
        gh.fail_next(1, status=201, headers={"X-RateLimit-Remaining": "0",  # the last one
                                             "X-RateLimit-Reset": reset})
        p.http.send("POST", f"{p.path}/1/comments", {"body": "x"})
        assert 20 <= (p.http.exhausted_for or 0) <= 30


def test_timeout_is_retryable(server: FakeServer) -> None:
    p = provider_for(server.destination(timeout=0.2))
    server.delay_next(1, seconds=0.8)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out") as info:
        p.find(event(), LONG_AGO) if server.provider != "webhook" else p.open(event())
    assert time.monotonic() - started < 0.7
    assert_clean(info.value, server)
    p.close()


def test_connection_reset_is_retryable(server: FakeServer, provider: Any) -> None:
    server.reset_next(1)
    with pytest.raises(DeliveryError, match="connection failed") as info:
        provider.open(event())
    assert_clean(info.value, server)


def test_invalid_request_is_rejected_with_reason(server: FakeServer) -> None:
    dest = server.destination()
    broken = {"jira": {"extra": {**dest.extra, "issue_type": "Epic"}},
              "servicenow": {"extra": {"table": "change_request"}},
              "github": {"extra": {"repo": "acme/other"}},
              "webhook": {"base_url": server.url + "/nope"}}[server.provider]
    p = provider_for(replace(dest, **broken))
    with pytest.raises(RejectedError, match=r"HTTP 4\d\d") as info:
        p.open(event())
    assert_clean(info.value, server)
    if server.provider == "jira":
        assert "issuetype" in str(info.value)


# --------------------------------------------------------------------------- the fakes


@pytest.mark.parametrize("kind", ["jira3", "servicenow", "github", "webhook"])
def test_a_request_the_vendor_description_refuses_fails_the_test(kind: str) -> None:
    srv = make_server(kind).start()
    auth = (srv.login, srv.password) if srv.login else None
    headers = {"Authorization": f"Bearer {srv.password}"} if kind == "github" else {}
    bad = {"jira3": ("PUT", "/rest/api/3/issue/REV-1/assignee", {"accountId": 5}),
           "servicenow": ("POST", "/api/now/table/incident", {"urgency": 1}),
           "github": ("POST", "/repos/acme/revenue/issues", {"labels": "not-a-list"}),
           "webhook": ("POST", "", {"action": "open"})}[kind]
    method, path, body = bad
    resp = requests.request(method, srv.url + path, json=body, auth=auth, headers=headers,
                            timeout=2)
    srv.stop()
    assert resp.status_code == 400 and len(srv.violations) == 1
    with pytest.raises(AssertionError, match="refuses"):
        srv.assert_clean()


def test_fake_jira_validates_documented_shapes() -> None:
    jira = JiraServer("3").start()
    fields = {"project": {"key": "REV"}, "issuetype": {"name": "Task"}, "summary": "s",
              "description": "plain text is not ADF", "duedate": "05/07/2024",
              "labels": ["has space"]}
    resp = requests.post(f"{jira.url}/rest/api/3/issue", json={"fields": fields},
                         auth=(jira.login, jira.password), timeout=2)
    assert resp.status_code == 400
    assert set(resp.json()["errors"]) == {"description", "duedate", "labels"}
    jira.stop()
    assert not jira.violations  # the description leaves `fields` untyped: Jira itself refuses


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
