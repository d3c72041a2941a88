"""Tickets that never publish finance data where they should not (issue 15): the GitHub
provider refuses a repository others can read unless the connection allows it, asking once per
relay run; ``extra.redact`` keeps customers and amounts out of every request each ticket system
receives, while markers, idempotency and find-after-crash keep working."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from revleak import cli, pipeline, reports
from revleak.config import load_config
from revleak.errors import RevleakError
from revleak.tickets import relay, text
from revleak.tickets.relay import TicketsFailed
from tests.books import Books
from tests.ticket_fakes import (
    FakeServer,
    GitHubServer,
    JiraServer,
    ServiceNowServer,
    WebhookServer,
)
from tests.ticket_fakes.scenario import (
    CHECK,
    FAST,
    bill_later,
    check,
    config_file,
    leaky_books,
    outbox,
)

REPORTS = "https://reports.example.com/revleak"
FAKES = {"jira": JiraServer, "servicenow": ServiceNowServer, "github": GitHubServer,
         "webhook": WebhookServer}
LOOKUPS = {"jira": "/search/jql", "servicenow": "sysparm_query",
           "github": "GET /repos/acme/revenue/issues"}


@pytest.fixture
def relay_log() -> Iterator[list[logging.LogRecord]]:
    """What the relay logs (its logger's own handler: Airflow may set up the root's anew)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(relay.__name__)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def use(monkeypatch, tmp_path):
    """Point the relay at a fake with ``extra`` added to its connection, fast settings."""

    def configure(server: FakeServer, workers: int = 2, **extra: Any) -> None:
        connection = json.loads(server.connection_json(timeout=1.0))
        connection["extra"].update(extra)
        monkeypatch.setenv("AIRFLOW_CONN_REVLEAK_TICKETS", json.dumps(connection))
        monkeypatch.setenv("REVLEAK_CONFIG", str(config_file(
            tmp_path, **{**FAST, "relay_budget_seconds": 30, "workers": workers})))

    return configure


# --------------------------------------------------------------------------- visibility


@pytest.mark.parametrize(("visibility", "readers"), [("public", "anyone"),
                                                      ("internal", "every member of the "
                                                                   "enterprise")])
def test_a_repository_others_can_read_is_refused_in_one_line(conn, tmp_path, use, capsys,
                                                             relay_log, visibility, readers):
    leaky_books(conn, tmp_path)
    with GitHubServer(visibility=visibility) as gh:
        use(gh, workers=4)
        check(date(2026, 3, 10))
        refusal = (f"github repository acme/revenue is {visibility} ({readers} can read its "
                   "issues): set extra.allow_public: true in the revleak_tickets connection to "
                   "post findings there anyway (extra.redact: true leaves customers and amounts "
                   "out)")
        with pytest.raises(TicketsFailed) as info:
            pipeline.relay_tickets()  # what the DAG's relay_tickets task runs
        assert str(info.value) == (f"ticket delivery stopped: {refusal}; 3 events wait in the "
                                   "outbox and go out on the next run (`revleak tickets` lists "
                                   "them)")
        said = [r.levelname for r in relay_log if refusal in r.getMessage()]
        assert said.count("ERROR") == 1  # the task log; other workers' events wait quietly
        assert gh.writes() == [] and gh.tickets == {}  # nothing sent
        assert [row[2:4] for row in outbox(conn)] == [("pending", 0)] * 3  # nothing used up
        assert refusal in {row[7] for row in outbox(conn)}  # `revleak tickets` shows it
        assert gh.repository_lookups == 1  # asked once, for four workers

        capsys.readouterr()
        assert cli.main(["tickets", "--relay"]) == 2  # the CLI: one line too
        said = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("revleak:")]
        assert said == [f"revleak: {info.value}"]
        assert gh.writes() == [] and gh.repository_lookups == 2  # a new run asks again


@pytest.mark.parametrize("allow", [True, "true"])  # JSON, or text as Airflow's URI form gives
def test_allow_public_posts_to_a_public_repository(conn, tmp_path, use, allow):
    leaky_books(conn, tmp_path)
    with GitHubServer(visibility="public") as gh:
        use(gh, allow_public=allow)
        check(date(2026, 3, 10))
        assert "delivered 3 open" in pipeline.relay_tickets()
        assert len(gh.tickets) == 3
        assert gh.repository_lookups == 0  # allowed whatever it is: nothing to ask


def test_a_private_repository_posts_and_is_asked_once_per_run(conn, tmp_path, use):
    leaky_books(conn, tmp_path, more=9)  # 12 findings
    with GitHubServer() as gh:  # private
        use(gh, workers=4)
        check(date(2026, 2, 10))
        assert "delivered 12 open" in pipeline.relay_tickets()
        assert len(gh.tickets) == 12 and gh.repository_lookups == 1
        first = min(r.at for r in gh.writes())
        lookup = next(r.at for r in gh.requests_log if r.path == "/repos/acme/revenue")
        assert lookup < first  # asked before the first write
        check(date(2026, 3, 10))  # updates and escalations: a second run asks again, once
        assert "0 failed, 0 pending" in pipeline.relay_tickets()
        assert gh.repository_lookups == 2
        pipeline.relay_tickets()  # nothing pending: nothing to ask
        assert gh.repository_lookups == 2


def test_a_rate_limit_on_the_lookup_waits_like_any_other(conn, tmp_path, use):
    leaky_books(conn, tmp_path)
    with GitHubServer() as gh:
        use(gh, workers=1)  # (with more, each worker holding an event asks, as for events)
        check(date(2026, 3, 10))
        reset = str(int(time.time()) + 120)
        gh.fail_repository_next(1, status=403, headers={"X-RateLimit-Remaining": "0",
                                                        "X-RateLimit-Reset": reset})
        line = pipeline.relay_tickets()  # no failure: the events wait
        assert "3 pending for the next run (rate-limited: github until" in line
        assert [row[2:4] for row in outbox(conn)] == [("pending", 0)] * 3
        assert gh.writes() == [] and gh.repository_lookups == 1


@pytest.mark.parametrize(("fault", "line"), [
    ("token", "ticket delivery stopped: 401 from github — check the revleak_tickets "
              "connection's login/password (token);"),
    ("repo", "ticket delivery stopped: github repository acme/other not found: check "
             "extra.repo in the revleak_tickets connection and that its token can read the "
             "repository;"),
])
def test_a_lookup_the_repository_refuses_stops_delivery(conn, tmp_path, use, fault, line):
    leaky_books(conn, tmp_path)
    with GitHubServer() as gh:
        if fault == "token":
            use(gh)
            gh.password = "rotated-" + gh.password
        else:
            use(gh, repo="acme/other")
        check(date(2026, 3, 10))
        with pytest.raises(TicketsFailed) as info:
            pipeline.relay_tickets()
        assert str(info.value).startswith(line) and gh.password not in str(info.value)
        assert gh.writes() == [] and [row[2] for row in outbox(conn)] == ["pending"] * 3


def test_a_yes_or_no_extra_that_is_neither_is_one_clear_line(conn, tmp_path, use):
    leaky_books(conn, tmp_path)
    with GitHubServer() as gh:
        for key in ("allow_public", "redact"):
            use(gh, **{key: "maybe"})
            with pytest.raises(RevleakError, match=(
                    rf"^connection revleak_tickets: extra.{key} must be true or false "
                    r"\(got 'maybe'\)$")):
                relay.relay()
        assert gh.requests_log == []


# --------------------------------------------------------------------------- redaction

CUSTOMERS = {"CUST-HOOLI-7731": "Hooli Holdings Ltd", "CUST-GLOBEX-5108": "Globex Corporation",
             "CUST-INITECH-4410": "Initech Software"}


def private_books(conn, tmp_path: Path) -> None:
    """Hooli (14,237.40 a year, monthly) and Globex (7,345.80 EUR, quarterly) are never
    billed; Initech is billed in full."""
    b = Books()
    b.contract("OPP-HOOLI-2291", "14237.40", "2026-01-01", "2026-12-31", "monthly",
               customer_id="CUST-HOOLI-7731") \
        .contract("OPP-GLOBEX-3377", "7345.80", "2026-01-01", "2026-12-31", "quarterly",
                  currency="EUR", customer_id="CUST-GLOBEX-5108") \
        .contract("OPP-INITECH-4410", "1000.00", "2026-01-01", "2026-12-31", "one_time",
                  customer_id="CUST-INITECH-4410") \
        .invoice("INV-INITECH-0001", "OPP-INITECH-4410", "2026-01-01", "1000.00") \
        .fx("EUR", "2026-01-01", "1.10")
    for row in b.rows["customers"]:
        row["name"] = CUSTOMERS[row["customer_id"]]
    b.load(conn, tmp_path)


def bill_hooli(conn, tmp_path: Path) -> None:
    """Hooli's three started months (3 × 1,186.45), billed on 2026-03-12."""
    bill_later(conn, tmp_path / "fix", "INV-HOOLI-0003", "OPP-HOOLI-2291", "CUST-HOOLI-7731",
               "2026-03-12", "3559.35")


def checked_and_linked(conn, day: date) -> None:
    """A run of ``day``, its events linked to the run's report (as ``publish_report`` does)."""
    check(day)
    config = load_config()
    config = config.model_copy(update={"reports": config.reports.model_copy(
        update={"url": REPORTS})})
    reports.link_tickets(conn, CHECK, day, config)
    conn.commit()


def amounts(value: Any) -> set[Decimal]:
    """Every non-zero number with a fraction or of 100 and more in ``value`` (evidence JSON)."""
    if isinstance(value, dict):
        return set().union(*map(amounts, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(amounts, value)) if value else set()
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        d = Decimal(str(value))
        return {d} if d and (d != d.to_integral_value() or abs(d) >= 100) else set()
    return set()


def forbidden(conn) -> set[str]:
    """What must not reach the ticket system, read from the books and the findings: customer
    ids and names, opportunity and invoice ids, and every amount in the forms revleak writes
    (1,186.45 · 1186.45 · 1186.45 as a JSON float)."""
    conn.commit()
    words = {w for row in conn.execute("select customer_id, name from revleak.customers")
             for w in row}
    words |= {r[0] for r in conn.execute("select opportunity_id from revleak.opportunities")}
    words |= {r[0] for r in conn.execute("select invoice_id from revleak.invoices")}
    money: set[Decimal] = set()
    for *figures, evidence in conn.execute(
            "select expected_amount, actual_amount, gap_amount, gap_amount_base,"
            " time_weighted_loss, evidence from revleak.finding_history"):
        money |= {abs(Decimal(f)) for f in figures if f} | amounts(evidence)
    money |= {Decimal(r[0]) for r in conn.execute(
        "select amount from revleak.opportunities where amount is not null")}
    money |= {Decimal(r[0]) for r in conn.execute("select amount from revleak.invoice_lines")}
    assert len(money) >= 10  # the test means something
    return words | {form for m in money
                    for form in (f"{m:,.2f}", f"{m:.2f}", repr(float(m)))}


def carried(server: FakeServer, key: str) -> list[str]:
    """The ticket's own text (description, body) and its comments / notes."""
    t = server.tickets[key]
    if isinstance(server, WebhookServer):
        return [e.get("body") or "" for e in t["events"]]
    own = t.get("body") if isinstance(server, GitHubServer) else t.get("description")
    return [own or "", t.get("close_notes") or "", *server.comments(key)]


@pytest.mark.parametrize("kind", FAKES)
def test_redact_keeps_customers_and_amounts_out_of_every_request(conn, tmp_path, use, kind):
    private_books(conn, tmp_path)
    with FAKES[kind]() as server:
        use(server, redact=True)
        checked_and_linked(conn, date(2026, 2, 10))  # opens
        server.crash_after_create_next()  # the first ticket is created, its reply lost
        assert "0 failed, 0 pending" in pipeline.relay_tickets()
        checked_and_linked(conn, date(2026, 3, 10))  # updates, escalations
        bill_hooli(conn, tmp_path)
        checked_and_linked(conn, date(2026, 3, 12))  # Hooli's gap closes
        assert "0 failed, 0 pending" in pipeline.relay_tickets()

        events = outbox(conn)
        assert {"open", "update", "escalate", "resolve"} <= {e[1] for e in events}
        assert {e[2] for e in events} == {"delivered"}
        secret = forbidden(conn)
        for r in server.requests_log:
            sent = r.path + r.body.decode()
            assert not [s for s in secret if s in sent], (r.method, r.path)

        # one ticket per open event (the crash did not duplicate), each carrying its marker
        # and the link to its row in the report; every later event's text is there once
        opens = [e for e in events if e[1] == "open"]
        assert len(server.tickets) == len(opens) == 3
        keys = dict(conn.execute("select fingerprint, ticket_key from revleak.tickets"))
        for _, action, _, _, idem, fp, _, _, _ in events:
            ref = idem[:text.REF_CHARS]
            texts = carried(server, keys[fp])
            assert sum(text.carries(t, ref) for t in texts) == 1, (action, fp)
            mine = next(t for t in texts if text.carries(t, ref))
            assert "Customers, amounts and evidence are not sent to this ticket system" in mine
            if action == "open":
                assert f"{REPORTS}/" in mine and f"#f-{fp}" in mine
                assert f"Fingerprint: {fp}" in mine.replace("`", "")
        if kind in LOOKUPS:
            assert any(LOOKUPS[kind] in f"{r.method} {r.path}" for r in server.requests_log)
        if kind == "webhook":  # the contract's fields all there, the money ones null
            for d in server.deliveries:
                p = d["payload"]
                assert p["customer_id"] is None and p["entity_id"] in ("withheld", "all")
                assert [p[f] for f in ("gap_amount", "gap_amount_base", "gap_pct",
                                       "time_weighted_loss")] == [None] * 4
                assert p["currency"] in ("USD", "EUR") and p["owner"]["name"]


def test_a_redacted_funnel_zone_keeps_its_rate_and_drops_money_and_ids():
    zone = {"action": "open", "fingerprint": "f" * 32, "check": "funnel_leak_weekly",
            "category": "routing", "entity_type": "zone", "entity_id": "routing",
            "customer_id": None, "as_of": "2026-03-08", "currency": "USD",
            "owner": {"team": "Sales Ops", "name": "Sam", "email": "sam@example.com"},
            "due_date": "2026-03-13", "gap_amount": 48213.55, "gap_amount_base": 48213.55,
            "gap_pct": 14.5, "days_outstanding": 7, "time_weighted_loss": 337494.85,
            "routed": True, "title": "[revleak] routing: zone routing — 14.5% (limit 10%), "
                                     "lost 48213.55 USD",
            "evidence": {"value_pct": 14.5, "limit_pct": 10, "problems": 29, "population": 200,
                         "rule": "new opportunities unassigned past the limit",
                         "cells_past_limit": ["high-intent calls: 20% (4 of 20; limit 10%): "
                                              "OPP-7781, OPP-7782"],
                         "states": {"unassigned": {"count": 20, "ids": ["OPP-7781"]}},
                         "trend": {"sentence": "worse 3 weeks in a row: 8% → 11% → 14.5%",
                                   "weeks": [{"as_of": "2026-03-08", "problem_pct": 14.5}]},
                         "value": {"amount_base": 48213.55}}}
    sent = text.render(zone, "k" * 64, redact=True)
    assert sent["title"] == "[revleak] routing: zone routing"
    body = sent["body"]
    for gone in ("48,213.55", "48213.55", "337,494.85", "OPP-778"):
        assert gone not in body + json.dumps(sent["evidence"])
    for kept in ("| Rate this week | 14.5% (new opportunities unassigned past the limit; limit "
                 "10%) |", "| Affected | 29 of 200 |", "Trend: worse 3 weeks in a row",
                 "Leak states: unassigned 20.", "`revleak findings --evidence` shows them",
                 text.marker("k" * text.REF_CHARS)):
        assert kept in body
    assert (sent["gap_pct"], sent["gap_amount"], sent["entity_id"]) == (14.5, None, "routing")
    plain = text.render(zone, "k" * 64)["body"]  # without redact: as before
    assert "48,213.55" in plain and "OPP-7781" in plain
