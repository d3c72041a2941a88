"""Rate limits, lost replies and failures through the relay, as the Airflow task sees them
(``pipeline.relay_tickets``): nothing lost, nothing duplicated, the task fails when a person
has to act and only then."""

from __future__ import annotations

import time
from datetime import date

import pytest

from revleak import cli, pipeline
from revleak.tickets import relay, text
from revleak.tickets.relay import TicketsFailed
from tests.ticket_fakes import GitHubServer, JiraServer, ServiceNowServer
from tests.ticket_fakes.scenario import (
    FAST,
    check,
    config_file,
    leaky_books,
    lifecycle_events,
    many_leaks,
    outbox,
)


@pytest.fixture
def use(monkeypatch, tmp_path):
    """Point the relay at a fake (the revleak_tickets connection) with fast test settings."""

    def configure(server, timeout=1.0, **tickets):
        monkeypatch.setenv("AIRFLOW_CONN_REVLEAK_TICKETS", server.connection_json(timeout))
        settings = {**FAST, "relay_budget_seconds": 30, "workers": 4, **tickets}
        monkeypatch.setenv("REVLEAK_CONFIG", str(config_file(tmp_path, **settings)))

    return configure


def one_ticket_per_open_event(conn, server) -> None:
    """Every open event has exactly one ticket carrying its marker, and nothing else exists."""
    opens = [row[4][:text.REF_CHARS] for row in outbox(conn) if row[1] == "open"]
    bodies = [t.get("fields", {}).get("description") or t.get("description") or t.get("body")
              for t in server.tickets.values()]
    assert len(server.tickets) == len(opens)
    assert sorted(sum(text.carries(b, ref) for b in bodies) for ref in opens) == [1] * len(opens)


def test_429_with_retry_after_pauses_every_worker_and_uses_no_attempts(conn, tmp_path, use):
    many_leaks(conn, tmp_path, 12)
    with JiraServer() as jira:
        use(jira, max_attempts=1)  # a 429 that counted as an attempt would fail its event
        check(date(2026, 3, 10))
        jira.fail_next(6, status=429, retry_after=1)
        line = pipeline.relay_tickets()
        events = outbox(conn)
        assert {row[2] for row in events} == {"delivered"} and len(events) == 13
        assert {row[3] for row in events} == {1}  # the 429s cost no attempt
        assert "0 failed, 0 pending" in line
        assert sum(1 for r in jira.requests_log if r.method == "POST") >= 13
        one_ticket_per_open_event(conn, jira)


def test_429_without_retry_after_waits_the_minimum_doubling(conn, tmp_path, use):
    leaky_books(conn, tmp_path)
    with ServiceNowServer() as snow:
        use(snow, workers=1)
        check(date(2026, 3, 10))
        snow.fail_next(2, status=429)  # no Retry-After: 1 s, then 2 s
        started = time.monotonic()
        pipeline.relay_tickets()
        assert time.monotonic() - started >= 3  # it waited as told, not hammering
        assert [row[2:4] for row in outbox(conn)] == [("delivered", 1)] * 3
        streak = conn.execute("select pause_streak from revleak.ticket_destinations").fetchone()
        assert streak == (0,)  # a delivery ends the streak
        one_ticket_per_open_event(conn, snow)


@pytest.mark.parametrize("status", [403, 429])
def test_github_secondary_limit_pauses_and_writes_are_paced(conn, tmp_path, use, status):
    many_leaks(conn, tmp_path, 5)
    with GitHubServer() as gh:
        use(gh, write_interval_seconds={"github": 0.3})
        check(date(2026, 3, 10))
        gh.secondary_limit_next(2, status=status)  # no Retry-After: GitHub's "wait a minute"
        line = pipeline.relay_tickets()
        assert "0 failed, 0 pending" in line
        assert {row[2:4] for row in outbox(conn)} == {("delivered", 1)}
        writes = [r.at for r in gh.writes()]
        assert len(writes) == 6 + 2  # six creates and the two refused by the limit
        # paced across all four workers: at least ~0.3 s between writes on average
        assert writes[-1] - writes[0] >= (len(writes) - 1) * 0.3 * 0.8
        one_ticket_per_open_event(conn, gh)


def test_a_limit_past_the_budget_leaves_events_pending_and_the_task_green(conn, tmp_path,
                                                                          use):
    leaky_books(conn, tmp_path)
    with GitHubServer() as gh:
        use(gh, relay_budget_seconds=3)
        check(date(2026, 3, 10))
        reset = str(int(time.time()) + 120)
        # the quota is spent until the reset: GitHub refuses every write, also one a second
        # worker sent before the first refusal was recorded
        gh.fail_next(4, status=403, writes_only=True,
                     headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
        line = pipeline.relay_tickets()  # does not raise
        assert "3 pending for the next run (rate-limited: github until" in line
        assert [row[2:4] for row in outbox(conn)] == [("pending", 0)] * 3
        assert not gh.tickets and gh.repository_lookups == 1
        writes = gh.writes()
        # no worker kept sending: at most the writes already under way when the limit was
        # recorded, one per worker, never one per event and retry within the budget
        assert 1 <= len(writes) <= 3


def test_401_fails_the_task_with_one_line_and_keeps_every_event(conn, tmp_path, use,
                                                                monkeypatch):
    leaky_books(conn, tmp_path)
    with JiraServer() as jira:
        use(jira)
        right = jira.password
        jira.password = "rotated-" + right  # the token in the connection is no longer valid
        check(date(2026, 3, 10))
        with pytest.raises(TicketsFailed) as info:
            pipeline.relay_tickets()
        assert str(info.value) == (
            "ticket delivery stopped: 401 from jira — check the revleak_tickets connection's "
            "login/password (token); 3 events wait in the outbox and go out on the next run "
            "(`revleak tickets` lists them)")
        assert right not in str(info.value) and jira.password not in str(info.value)
        assert [row[2:4] for row in outbox(conn)] == [("pending", 0)] * 3
        assert len(jira.requests_log) <= 4  # one per worker at most, then it stopped
        jira.password = right  # fixed: the next run delivers everything
        assert "delivered 3 open" in pipeline.relay_tickets()
        one_ticket_per_open_event(conn, jira)


def test_a_permanent_rejection_fails_loudly_and_retry_failed_requeues(conn, tmp_path, use,
                                                                     monkeypatch, capsys):
    leaky_books(conn, tmp_path)
    with JiraServer(issue_types=("Bug",)) as jira:  # the project has no "Task" issue type
        use(jira)
        check(date(2026, 3, 10))
        with pytest.raises(TicketsFailed, match=(
                r"^3 ticket events failed: jira POST /rest/api/3/issue: HTTP 400 issuetype: "
                r"valid issue type is required; `revleak tickets` lists them, "
                r"`revleak tickets --retry-failed` re-queues$")):
            pipeline.relay_tickets()
        assert [row[2:4] for row in outbox(conn)] == [("failed", 1)] * 3
        assert cli.main(["tickets"]) == 0
        listing = capsys.readouterr().out
        assert "failed open: 3" in listing and "valid issue type is required" in listing
        jira.issue_types = ("Task",)  # the project is fixed
        assert cli.main(["tickets", "--retry-failed", "--relay"]) == 0
        assert "3 failed events queued again" in capsys.readouterr().out
        assert [row[2] for row in outbox(conn)] == ["delivered"] * 3
        one_ticket_per_open_event(conn, jira)


def test_events_past_their_attempts_fail_the_task(conn, tmp_path, use):
    leaky_books(conn, tmp_path)
    with GitHubServer() as gh:
        use(gh, max_attempts=2, workers=1)
        check(date(2026, 3, 10))
        gh.fail_next(100, status=503, retry_after=0, writes_only=True)
        with pytest.raises(TicketsFailed, match=r"^3 ticket events failed: gave up after 2 "
                                                r"attempts: github POST .*HTTP 503"):
            pipeline.relay_tickets()
        assert [row[2:4] for row in outbox(conn)] == [("failed", 2)] * 3
        # a 503 may hide a write that happened: the second attempt looked before sending
        assert sum(1 for r in gh.requests_log if r.method == "GET") == 3 + 1  # + visibility
        assert gh.repository_lookups == 1


def test_lost_replies_never_duplicate_tickets_or_comments(conn, tmp_path, use):
    lifecycle_events(conn, tmp_path)
    with GitHubServer() as gh:
        use(gh, timeout=0.4)
        gh.delay_next(8, seconds=0.8, writes_only=True)  # applied, answered too late
        assert "0 failed, 0 pending" in pipeline.relay_tickets()
        events = outbox(conn)
        one_ticket_per_open_event(conn, gh)
        for _, action, _, _, idem, fp, gen, _, _ in events:
            if action == "open":
                continue
            key = conn.execute("select ticket_key from revleak.tickets where fingerprint = %s"
                               " and generation = %s", (fp, gen)).fetchone()[0]
            ref = idem[:text.REF_CHARS]
            assert sum(text.carries(c, ref) for c in gh.comments(key)) == 1, (action, key)


def test_an_owner_the_system_refuses_is_reported_and_the_ticket_still_opens(conn, tmp_path,
                                                                          use):
    leaky_books(conn, tmp_path)
    with JiraServer(users={"someone-else"}) as jira:
        use(jira)
        check(date(2026, 3, 10))
        line = pipeline.relay_tickets()
        assert ("to fix (3×): jira refused 'revops-oncall' for RevOps on call "
                "<revops@example.com>: set jira_account_id on this owner in config routing "
                "(issue created unassigned)") in line
        assert len(jira.tickets) == 3 and not any(t["assignee"] for t in jira.tickets.values())
        assert {row[8] for row in outbox(conn)} == {
            "jira refused 'revops-oncall' for RevOps on call <revops@example.com>: set "
            "jira_account_id on this owner in config routing (issue created unassigned)"}


def test_relay_report_line_reads_well():
    report = relay.RelayReport()
    report.delivered.update({"open": 2, "update": 1})
    report.pending, report.retried = 4, 1
    report.paused = "github until 2026-03-10 12:00:03 UTC"
    assert str(report) == ("delivered 2 open, 1 update; 1 retries scheduled, 0 failed, 4 "
                           "pending for the next run (rate-limited: github until 2026-03-10 "
                           "12:00:03 UTC)")
    report.raise_if_failed()  # waiting on a rate limit is not a failure
