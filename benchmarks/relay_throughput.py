"""Ticket delivery throughput with the relay's settings in force (pacing on): 1,000 findings →
1,000 `open` events → a webhook receiver on 127.0.0.1 that answers each request after a
realistic latency, with 1 and 4 relay workers; then a slice of the same events to the GitHub
fake, where the relay keeps GitHub's >= 1 s between writes (``tickets.write_interval_seconds``)
whatever the number of workers.

    .venv/bin/python benchmarks/relay_throughput.py --findings 1000 --latency-ms 80

Writes benchmarks/results/relay_throughput.json. The fakes' API-description checks are off
here (they cost the fake several ms a request, in this process): the figure is the relay's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from revleak import pipeline, warehouse  # noqa: E402
from revleak.config import load_config  # noqa: E402
from revleak.tickets import relay  # noqa: E402
from tests.books import Books  # noqa: E402
from tests.ticket_fakes import GitHubServer, WebhookServer  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def seed_findings(n: int) -> None:
    books = Books()
    for i in range(n):
        books.contract(f"B{i:05d}", "1200.00", "2026-01-01", "2026-12-31", "monthly")
    books.heartbeat("2026-03-09")
    with tempfile.TemporaryDirectory() as tmp, warehouse.connect() as conn:
        warehouse.migrate(conn)
        conn.execute("truncate revleak.opportunities, revleak.customers, revleak.invoices,"
                     " revleak.findings, revleak.finding_history, revleak.check_runs,"
                     " revleak.check_results, revleak.ticket_outbox, revleak.tickets,"
                     " revleak.ticket_destinations cascade")
        conn.commit()
        books.load(conn, Path(tmp))
    pipeline.run_check("booked_vs_billed_daily", date(2026, 3, 10))


def reset(events: int | None) -> int:
    """The first ``events`` events (all when None) pending again, the rest left delivered."""
    with warehouse.connect() as conn:
        first = conn.execute("select min(event_id) from revleak.ticket_outbox").fetchone()[0]
        conn.execute("update revleak.ticket_outbox set status = case when %s::int is null"
                     " or event_id < %s + %s then 'pending' else 'delivered' end,"
                     " attempts = 0, next_attempt_at = now(), delivered_at = null,"
                     " attempt_started_at = null, in_doubt_since = null",
                     (events, first, events))
        conn.execute("delete from revleak.tickets")
        conn.execute("delete from revleak.ticket_destinations")
        conn.commit()
        return conn.execute("select count(*) from revleak.ticket_outbox"
                            " where status = 'pending'").fetchone()[0]


def deliver(server, workers: int, latency: float, events: int | None = None) -> dict:
    pending = reset(events)
    server.spec = None
    with server:
        server.delay_next(pending * 2, latency)
        started = time.monotonic()
        report = relay.relay(server.destination(timeout=5), budget_seconds=3600,
                             workers=workers)
        seconds = time.monotonic() - started
        assert report.pending == 0 and not report.failures, report
        assert len(server.tickets) == pending, (len(server.tickets), pending)
    paced = load_config().tickets.write_interval_seconds.get(server.provider, 0)
    return {"system": server.provider, "workers": workers, "events": pending,
            "write_interval_seconds": paced, "seconds": round(seconds, 1),
            "events_per_second": round(pending / seconds, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--findings", type=int, default=1000)
    p.add_argument("--latency-ms", type=int, default=80)
    p.add_argument("--github-events", type=int, default=60,
                   help="events sent to the GitHub fake (paced: about one a second)")
    args = p.parse_args()
    seed_findings(args.findings)
    latency = args.latency_ms / 1000
    runs = [deliver(WebhookServer(secret="bench"), w, latency) for w in (1, 4)]
    runs.append(deliver(GitHubServer(), 4, latency, args.github_events))
    figures = {"findings": args.findings, "latency_ms": args.latency_ms, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay_throughput.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
