"""The relay killed with SIGKILL at random points of delivery, many times, against each ticket
system's fake (whose writes take effect at once but are answered late, so a kill often lands
after a write the relay never heard of). Then one run to the end: every finding has exactly one
ticket and every event exactly one comment."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revleak.tickets import text
from tests.ticket_fakes import GitHubServer, JiraServer, ServiceNowServer, WebhookServer
from tests.ticket_fakes.scenario import FAST, config_file, lifecycle_events, outbox

REVLEAK = str(Path(sys.executable).with_name("revleak"))
KILLS = 15
FAKES = {"jira": lambda: JiraServer(search_lag=0.3), "servicenow": ServiceNowServer,
         "github": GitHubServer, "webhook": WebhookServer}
LOOKUPS = {"jira": "/search/jql", "servicenow": "sysparm_query",
           "github": "GET /repos/acme/revenue/issues", "webhook": None}


def relay_process(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([REVLEAK, "tickets", "--relay", "--status", "pending"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def written(server, conn, event: tuple) -> int:
    """How many times the ticket system holds what this (non-open) event wrote."""
    _, action, _, _, idem, fingerprint, generation, _, _ = event
    ref = idem[:text.REF_CHARS]
    if isinstance(server, WebhookServer):
        return sum(1 for d in server.deliveries if not d["duplicate"]
                   and d["headers"]["Idempotency-Key"] == idem)
    key = conn.execute("select ticket_key from revleak.tickets where fingerprint = %s"
                       " and generation = %s", (fingerprint, generation)).fetchone()[0]
    if isinstance(server, ServiceNowServer) and action == "resolve":
        return int(text.carries(server.tickets[key]["close_notes"], ref))
    return sum(text.carries(c, ref) for c in server.comments(key))


@pytest.mark.parametrize("kind", FAKES)
def test_sigkill_at_random_points_leaves_one_ticket_and_one_comment_each(conn, tmp_path,
                                                                        warehouse_uri, kind):
    lifecycle_events(conn, tmp_path, more=5)  # opens, updates, escalations, a resolve
    rng = random.Random(f"relay-crash-{kind}")
    with FAKES[kind]() as server:
        server.slow_writes(0.3)
        server.crash_after_create_next(1)
        env = {**os.environ, "AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri,
               "AIRFLOW_CONN_REVLEAK_TICKETS": server.connection_json(timeout=2.0),
               "REVLEAK_CONFIG": str(config_file(
                   tmp_path, **{**FAST, "search_settle_seconds": 0.6, "workers": 2,
                                "relay_budget_seconds": 60, "max_attempts": 100}))}
        kills = 0
        for _ in range(KILLS):
            seen = len(server.requests_log)
            proc = relay_process(env)
            until = time.monotonic() + 30
            while len(server.requests_log) == seen and proc.poll() is None \
                    and time.monotonic() < until:
                time.sleep(0.01)  # wait until it is delivering ...
            time.sleep(rng.uniform(0.0, 0.4))  # ... then kill it somewhere in the middle
            if proc.poll() is not None:
                break  # it delivered everything before the kill
            proc.kill()
            kills += 1
            proc.communicate(timeout=30)
        final = relay_process(env)
        _, err = final.communicate(timeout=180)
        assert final.returncode == 0, err
        events = outbox(conn)
        opens = [e for e in events if e[1] == "open"]
        assert kills >= 10
        assert {e[2] for e in events} == {"delivered"}, events
        assert len(server.tickets) == len(opens) == 8
        for open_event in opens:
            ref = open_event[4][:text.REF_CHARS]
            assert sum(text.carries(t, ref) for t in server.tickets.values()) == 1
        for event in (e for e in events if e[1] != "open"):
            assert written(server, conn, event) == 1, event
        if LOOKUPS[kind]:  # the runs after a kill looked before writing again
            assert any(LOOKUPS[kind] in f"{r.method} {r.path}" for r in server.requests_log)
