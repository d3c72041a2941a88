"""The ``revleak`` command: load books, make demo data, run checks, read findings.

Problems a user can fix print as one line (exit 2); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import psycopg

from revleak.checks import RULE_VERSIONS
from revleak.errors import RevleakError


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Progress:
    """One status line on stderr for long work (a line every step when not a terminal)."""

    def __init__(self, every: int = 1_000_000):
        self.tty = sys.stderr.isatty()
        self.every = every
        self.last: dict[str, int] = {}

    def __call__(self, what: str, rows: int) -> None:
        if self.tty:
            print(f"\r  {what}: {rows:,} rows", end="", file=sys.stderr, flush=True)
        elif rows // self.every > self.last.get(what, 0) // self.every:
            print(f"  {what}: {rows:,} rows", file=sys.stderr, flush=True)
        self.last[what] = rows

    def done(self) -> None:
        if self.tty and self.last:
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)


def _warehouse():
    """A connection to a warehouse whose revleak schema is current."""
    from revleak import warehouse

    conn = warehouse.connect()
    warehouse.migrate(conn)
    conn.commit()
    return conn


def cmd_migrate(args) -> int:
    from revleak import warehouse

    with warehouse.connect() as conn:
        applied = warehouse.migrate(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied
          else "schema is up to date")
    return 0


def cmd_load(args) -> int:
    from revleak import loader, warehouse

    if not args.directory.is_dir():
        raise RevleakError(f"{args.directory} is not a directory; pass the folder with the CSVs")
    progress = Progress()
    started = time.monotonic()
    with warehouse.connect() as conn:
        warehouse.migrate(conn)
        load_id, results = loader.load(conn, args.directory, progress)
    progress.done()
    print(loader.format_summary(results))
    rows = sum(r.rows for r in results)
    bad = sum(r.quarantined for r in results)
    print(f"load {load_id}: {rows:,} rows in {time.monotonic() - started:.1f}s; "
          f"{bad:,} quarantined" + (" (see `revleak quarantine`)" if bad else ""))
    errors = [r for r in results if r.error]
    for r in errors:
        print(f"error: {r.error}", file=sys.stderr)
    return 1 if errors else 0


def cmd_quarantine(args) -> int:
    with _warehouse() as conn:
        rows = conn.execute(
            "select table_name, source_file, line_no, reason from revleak.quarantine"
            " where load_id = coalesce(%s, (select max(load_id) from revleak.loads))"
            " order by source_file, line_no limit %s", (args.load, args.limit)).fetchall()
    for table, file, line, reason in rows:
        print(f"{Path(file).name}:{line} [{table}] {reason}")
    if not rows:
        print("no quarantined rows")
    return 0


def cmd_demo_data(args) -> int:
    from revleak import demo

    progress = Progress(every=1_000_000)
    started = time.monotonic()
    manifest = demo.generate(args.out, seed=args.seed, scale=args.scale, progress=progress)
    progress.done()
    rows = sum(manifest["rows"].values())
    print(f"wrote {rows:,} rows in {len(manifest['rows'])} files and manifest.json "
          f"({len(manifest['leaks'])} seeded leaks) to {args.out} "
          f"in {time.monotonic() - started:.1f}s")
    return 0


def cmd_check(args) -> int:
    from revleak import pipeline

    overrides = {"tolerance_pct": args.tolerance_pct, "billing_lag_days": args.billing_lag_days}
    summary = pipeline.run_check(args.check, args.as_of, overrides)
    print(pipeline.format_summary(summary))
    return 0


def cmd_findings(args) -> int:
    from revleak import findings
    from revleak.checks import to_json

    with _warehouse() as conn, conn.transaction():
        rows = findings.query(conn, args.check, args.as_of, args.status)
        if args.format == "json":
            for row in rows:
                if not args.evidence:
                    row.pop("evidence")
                print(to_json(row))
            return 0
        print(f"{'check':<24} {'category':<13} {'entity':<22} {'gap':>14} {'ccy':<4} "
              f"{'days':>5} {'loss×days':>14} {'status':<8} owner / due")
        for n, f in enumerate(rows, 1):
            print(f"{f['check']:<24} {f['category']:<13} "
                  f"{f['entity_type'][:5] + ':' + f['entity_id']:<22} "
                  f"{float(f['gap_amount'] or 0):>14,.2f} {f['currency'] or '':<4} "
                  f"{f['days_outstanding'] or 0:>5} {float(f['time_weighted_loss'] or 0):>14,.0f} "
                  f"{f['status']:<8} {f['owner'].get('team', '')} / {f['due_date']}")
            if n >= args.limit:
                print(f"... (first {args.limit}; use --limit or --format json for all)")
                break
    return 0


def cmd_tickets(args) -> int:
    from revleak.tickets import relay

    if args.retry_failed:
        with _warehouse() as conn:
            n = conn.execute("update revleak.ticket_outbox set status = 'pending', attempts = 0,"
                             " next_attempt_at = now() where status = 'failed'").rowcount
        print(f"{n} failed events queued again")
    if args.relay:
        dest = relay.destination()
        if dest is None:
            raise RevleakError(f"no ticket system configured: set AIRFLOW_CONN_REVLEAK_TICKETS "
                               f"(or the Airflow connection {relay.CONN_ID})")
        print(relay.relay(dest))
    with _warehouse() as conn:
        counts = conn.execute("select status, action, count(*) from revleak.ticket_outbox"
                              " group by 1, 2 order by 1, 2").fetchall()
        print("outbox: " + (", ".join(f"{s} {a}: {n}" for s, a, n in counts) or "empty"))
        rows = conn.execute(
            "select e.event_id, e.status, e.action, e.fingerprint, e.attempts, e.ticket_key,"
            " e.last_error from revleak.ticket_outbox e"
            " where %s = 'all' or e.status = %s order by e.event_id limit %s",
            (args.status, args.status, args.limit)).fetchall()
    for event_id, status, action, fp, attempts, key, error in rows:
        print(f"{event_id:>8} {status:<9} {action:<8} {fp[:12]} attempts {attempts:>2} "
              f"{key or '-':<14} {error or ''}")
    return 0


def cmd_demo(args) -> int:
    from revleak import showcase

    return showcase.run(seed=args.seed, scale=args.scale)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="revleak",
        description="Revenue-leakage detection: reconcile booked, billed, collected and "
                    "recognized revenue and open tickets for every gap.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("migrate", help="create or upgrade the warehouse schema",
                       description="Apply pending migrations from sql/schema (idempotent).")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("load", help="load contract CSV files into the warehouse",
                       description="Load <table>.csv files (any subset of the contract's tables). "
                                   "Good rows upsert; bad rows go to quarantine with file, line "
                                   "and reason. Exits non-zero only when input is unreadable.")
    s.add_argument("directory", type=Path, help="folder holding <table>.csv files")
    s.set_defaults(func=cmd_load)

    s = sub.add_parser("quarantine", help="list rows the last load quarantined",
                       description="List quarantined rows with file, line and reason.")
    s.add_argument("--load", type=int, help="load id (default: the latest)")
    s.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100)")
    s.set_defaults(func=cmd_quarantine)

    s = sub.add_parser("demo-data", help="generate a synthetic company with seeded leaks",
                       description="Write the contract's CSV files plus manifest.json (every "
                                   "seeded leak and decoy) for a deterministic demo company.")
    s.add_argument("out", type=Path, help="output folder")
    s.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    s.add_argument("--scale", choices=["small", "medium", "large"], default="small",
                   help="small ≈ 200 customers; large ≈ 1M contracts, 10M+ invoice lines")
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("demo", help="the main job on the embedded default, end to end",
                       description="Generate the demo company, load it, run every DAG through "
                                   "Airflow for the demo's dates and print what was found.")
    s.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    s.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("tickets", help="ticket outbox: pending, delivered, failed",
                       description="List ticket events by state with their last error; "
                                   "--relay delivers pending events now.")
    s.add_argument("--status", choices=["pending", "delivered", "failed", "all"],
                   default="all")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--relay", action="store_true", help="deliver pending events now")
    s.add_argument("--retry-failed", action="store_true", help="queue failed events again")
    s.set_defaults(func=cmd_tickets)

    s = sub.add_parser("check", help="run one check for one as-of date (outside Airflow)",
                       description="Run a check's SQL for an as-of date and record its findings, "
                                   "as the DAG does. Use the DAGs for scheduled work.")
    s.add_argument("check", choices=list(RULE_VERSIONS), help="the check (DAG id)")
    s.add_argument("--as-of", type=_date, required=True, help="check the books as of this date")
    s.add_argument("--tolerance-pct", type=float, help="override the tolerance (%% of expected)")
    s.add_argument("--billing-lag-days", type=int, help="override the billing lag")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("findings", help="print findings (contract §4)",
                       description="Print findings: the current state, or what one as-of date "
                                   "saw (--as-of). JSON lines with --format json.")
    s.add_argument("--check", help="only this check (DAG id)")
    s.add_argument("--as-of", type=_date, help="what this as-of date saw (history)")
    s.add_argument("--status", choices=["open", "resolved", "all"], default="open")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.add_argument("--evidence", action="store_true", help="include evidence in JSON output")
    s.add_argument("--limit", type=int, default=50, help="rows in the table view (default 50)")
    s.set_defaults(func=cmd_findings)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RevleakError as e:
        if args.debug:
            raise
        print(f"revleak: {e}", file=sys.stderr)
        return 2
    except psycopg.Error as e:
        if args.debug:
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"revleak: database error: {first} (rerun with --debug for details)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("revleak: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
