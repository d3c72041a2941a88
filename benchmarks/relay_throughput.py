"""Ticket delivery throughput: 1,000 findings → 1,000 `open` events → a webhook receiver on
127.0.0.1 that answers each request after a realistic latency.

    .venv/bin/python benchmarks/relay_throughput.py --findings 1000 --latency-ms 80

Writes benchmarks/results/relay_throughput.json (events/s for 1 and for 4 relay workers).
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
from revleak.tickets import relay  # noqa: E402
from tests.books import Books  # noqa: E402
from tests.ticket_servers import WebhookServer  # noqa: E402

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
                     " revleak.check_results, revleak.ticket_outbox, revleak.tickets cascade")
        conn.commit()
        books.load(conn, Path(tmp))
    pipeline.run_check("booked_vs_billed_daily", date(2026, 3, 10))


def deliver(workers: int, latency: float, n: int) -> dict:
    with warehouse.connect() as conn:
        conn.execute("update revleak.ticket_outbox set status = 'pending', attempts = 0,"
                     " next_attempt_at = now(), delivered_at = null")
        conn.execute("delete from revleak.tickets")
        conn.commit()
        events = conn.execute("select count(*) from revleak.ticket_outbox").fetchone()[0]
    with WebhookServer(secret="bench") as hook:
        hook.delay_next(events * 2, latency)
        started = time.monotonic()
        report = relay.relay(hook.destination(timeout=5), budget_seconds=600, workers=workers)
        seconds = time.monotonic() - started
        assert report.pending == 0 and len(hook.replies) == events, report
    return {"workers": workers, "events": events, "seconds": round(seconds, 1),
            "events_per_second": round(events / seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--findings", type=int, default=1000)
    p.add_argument("--latency-ms", type=int, default=80)
    args = p.parse_args()
    seed_findings(args.findings)
    latency = args.latency_ms / 1000
    runs = [deliver(w, latency, args.findings) for w in (1, 4)]
    figures = {"findings": args.findings, "latency_ms": args.latency_ms, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay_throughput.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
