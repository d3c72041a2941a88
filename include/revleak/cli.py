"""The ``revleak`` command: load books, make demo data, run checks, read findings.

Problems a user can fix print as one line (exit 2); ``--debug`` shows the traceback. Output
closed early (``revleak findings | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg

from revleak.config import CHECK_IDS
from revleak.errors import RevleakError


class Parser(argparse.ArgumentParser):
    """argparse with usage mistakes in one line that points at the help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535)")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above 0")
    return int(value)


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

    def warn(message: str) -> None:
        progress.done()
        print(f"warning: {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    with warehouse.connect() as conn:
        warehouse.migrate(conn)
        load_id, results = loader.load(conn, args.directory, progress, warn, force=args.force)
    progress.done()
    print(loader.format_summary(results))
    rows = sum(r.rows for r in results)
    bad = sum(r.quarantined for r in results)
    unchanged = sum(r.unchanged for r in results)
    print(f"load {load_id}: {rows:,} rows in {time.monotonic() - started:.1f}s; "
          f"{bad:,} quarantined" + (" (see `revleak quarantine`)" if bad else "")
          + (f"; {unchanged} unchanged file(s) not staged again (--force reloads them)"
             if unchanged else ""))
    errors = [r for r in results if r.error]
    for r in errors:
        print(f"error: {r.error}", file=sys.stderr)
    return 2 if errors else 0


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


def cmd_report(args) -> int:
    from revleak import reports

    out = args.out if args.out is None or "://" in args.out else str(Path(args.out).resolve())
    for written in reports.publish(args.check, args.as_of, out):
        print(written)
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
        print("\n".join(_findings_table(conn, rows, args)))
    return 0


def _customer_names(conn, ids) -> dict[str, str]:
    ids = sorted(i for i in ids if i)
    return dict(conn.execute("select customer_id, name from revleak.customers"
                             " where customer_id = any(%s)", (ids,)).fetchall()) if ids else {}


def _findings_table(conn, rows, args) -> list[str]:
    """The largest losses (--limit) grouped by check, owner and deadline, then totals per
    check over every finding the filters select; rows stream, only the shown ones are kept."""
    from revleak import display
    from revleak.config import load_config

    base = load_config().base_currency
    unit = display.loss_unit(base)
    groups: dict[tuple, list[dict]] = {}
    totals: dict[str, list] = {}  # check → [findings, Σ gap base, Σ loss, portfolio alarms]
    count = 0
    for f in rows:
        count += 1
        t = totals.setdefault(f["check"], [0, None, None, 0])
        t[0] += 1
        if f["entity_type"] == "portfolio":  # restates the gaps of its invoices
            t[3] += 1
        elif f["gap_amount_base"] is not None:  # a rate without a value adds nothing
            t[1] = (t[1] or Decimal(0)) + f["gap_amount_base"]
            t[2] = (t[2] or Decimal(0)) + (f["time_weighted_loss"] or 0)
        if count <= args.limit:
            owner = f["owner"] or {}
            key = (f["check"], owner.get("name"), owner.get("team"), f["due_date"], f["status"])
            groups.setdefault(key, []).append(f)
    what = (f"{args.status} findings" if args.status != "all" else "findings") + \
        (f" as of {args.as_of}" if args.as_of else "") + (f" of {args.check}" if args.check else "")
    if not count:
        return [f"no {what}"]
    names = _customer_names(conn, {f["customer_id"] for g in groups.values() for f in g})
    out = [f"{count:,} {what}; the base currency is {base}",
           f"gap in the finding's currency; loss = gap in {base} × days outstanding ({unit})"]
    for (check, name, team, due, status), found in groups.items():
        out += ["", f"{check} · owner {name} ({team}) · due {due}"
                    + (f" · {status}" if args.status == "all" else "")]
        header = ["category", "entity", "customer", "gap", "days", f"loss {unit}"]
        lines = [[f["category"], f"{f['entity_type']} {f['entity_id']}",
                  names.get(f["customer_id"], f["customer_id"] or display.NONE),
                  display.gap(f), display.whole(f["days_outstanding"]),
                  display.whole(f["time_weighted_loss"])] for f in found]
        out += display.table(header, lines, right={3, 4, 5}, flex=2)
    if count > args.limit:
        out += ["", f"the {args.limit} largest losses of {count:,} shown; "
                    "--limit N or --format json for all"]
    portfolio = sum(t[3] for t in totals.values())
    out += ["", f"totals per check: gap = Σ gap in {base} (over-billing counts negative), "
                f"loss = Σ {unit}"]
    out += display.table(["check", "findings", f"gap {base}", f"loss {unit}"],
                         [[c, f"{t[0]:,}", display.money(t[1], None), display.whole(t[2])]
                          for c, t in totals.items()], right={1, 2, 3})
    if portfolio:
        out.append(f"  ({portfolio} portfolio alarm(s) counted, not summed: "
                   "they restate their invoices' gaps)")
    if len(totals) == 1:
        out.append(f"total: {count:,} {what}")
    else:  # one invoice can be unpaid and recognized_not_collected, say
        out += textwrap.wrap(f"total: {count:,} {what} in {len(totals)} checks; their sums are "
                             "not added up, as one invoice can be a finding of several checks",
                             display.WIDTH)
    return out


def cmd_tickets(args) -> int:
    from revleak.tickets import relay

    if args.retry_failed:
        from revleak import audit

        with _warehouse() as conn, conn.transaction():
            ids = [i for (i,) in conn.execute(
                "update revleak.ticket_outbox set status = 'pending', attempts = 0,"
                " next_attempt_at = now() where status = 'failed' returning event_id")]
            if ids:
                audit.record(conn, "tickets.retry_failed", "ticket outbox",
                             {"events": len(ids), "event_ids": sorted(ids)[:200]})
        print(f"{len(ids)} failed events queued again")
    if args.relay:
        dest = relay.destination()
        if dest is None:
            raise RevleakError(f"no ticket system configured: set AIRFLOW_CONN_REVLEAK_TICKETS "
                               f"(or the Airflow connection {relay.CONN_ID})")
        report = relay.relay(dest)
        print(report)
    with _warehouse() as conn:
        counts = conn.execute("select status, action, count(*) from revleak.ticket_outbox"
                              " group by 1, 2 order by 1, 2").fetchall()
        print("outbox: " + (", ".join(f"{s} {a}: {n}" for s, a, n in counts) or "empty"))
        for until, reason in conn.execute("select paused_until, pause_reason"
                                          " from revleak.ticket_destinations"
                                          " where paused_until > now()"):
            print(f"rate-limited until {until:%Y-%m-%d %H:%M:%S %Z}: {reason}")
        rows = conn.execute(
            "select e.event_id, e.status, e.action, e.payload->>'check',"
            " coalesce(c.name, e.payload->>'customer_id'), (e.payload->>'gap_amount')::numeric,"
            " e.payload->>'currency', (e.payload->>'gap_pct')::numeric, e.ticket_key, e.attempts,"
            " coalesce(e.last_error, 'to fix: ' || e.notice) from revleak.ticket_outbox e"
            " left join revleak.customers c on c.customer_id = e.payload->>'customer_id'"
            " where %s = 'all' or e.status = %s order by e.event_id limit %s",
            (args.status, args.status, args.limit)).fetchall()
    print("\n".join(_tickets_table(rows)))
    if args.relay:
        report.raise_if_failed()
    return 0


def _tickets_table(rows) -> list[str]:
    """Events grouped by check: customer and gap per event, its last error on the line below."""
    from revleak import display

    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row[3] or display.NONE, []).append(row)
    out = []
    for check, events in groups.items():
        lines, errors = [], {}
        for event_id, status, action, _, customer, gap, ccy, pct, key, attempts, error in events:
            lines.append([str(event_id), status, action, customer or display.NONE,
                          display.gap({"gap_amount": gap, "currency": ccy, "gap_pct": pct}),
                          key or display.NONE, str(attempts)])
            if error:
                errors[len(lines)] = textwrap.shorten(error, display.WIDTH - 20,
                                                      placeholder="…")
        table = display.table(["event", "state", "action", "customer", "gap", "ticket", "tries"],
                              lines, right={0, 4, 6}, flex=3)
        out += ["", check] + [line for n, text in enumerate(table) for line in
                              [text, *([f"{'':8}last error: {errors[n]}"] if n in errors else [])]]
    return out


def cmd_audit(args) -> int:
    from revleak import audit, display
    from revleak.checks import to_json

    since = datetime.combine(args.since, datetime.min.time(), UTC) if args.since else None
    with _warehouse() as conn:
        rows = audit.entries(conn, since, args.limit)
    if args.format == "json":
        for row in rows:
            print(to_json({**row, "at": row["at"].isoformat()}))
        return 0
    if not rows:
        print("no audited actions" + (f" since {args.since}" if args.since else ""))
        return 0
    print(f"{len(rows)} latest audited actions, latest first (times in UTC)")
    print("\n".join(display.table(
        ["when", "who", "via", "action", "subject", "what"],
        [[f"{r['at'].astimezone(UTC):%Y-%m-%d %H:%M}", r["actor"], r["via"],
          r["action"], r["subject"], to_json(r["detail"])] for r in rows], flex=5)))
    return 0


def cmd_demo(args) -> int:
    from revleak import showcase

    return showcase.run(seed=args.seed, scale=args.scale, fresh=args.fresh)


def cmd_ui(args) -> int:
    from revleak import showcase

    return showcase.ui(port=args.port, host=args.host)


def cmd_stop(args) -> int:
    from revleak import showcase, warehouse

    if pid := showcase.ui_pid(warehouse.revleak_home()):
        raise RevleakError(f"the Airflow UI (pid {pid}) uses the embedded PostgreSQL; stop it "
                           "with Ctrl-C first")
    pgdata = warehouse.revleak_home() / "pgdata"
    print(f"stopped the embedded PostgreSQL ({pgdata})" if warehouse.stop_embedded()
          else f"the embedded PostgreSQL ({pgdata}) is not running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
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
                                   "and reason; a column a file lacks keeps its stored values. "
                                   "A file whose header is wrong is refused (exit 2) and the "
                                   "others still load. A file unchanged since its last load "
                                   "(same sha256) is not staged again.")
    s.add_argument("directory", type=Path, help="folder holding <table>.csv files")
    s.add_argument("--force", action="store_true",
                   help="stage and check unchanged files again")
    s.set_defaults(func=cmd_load)

    s = sub.add_parser("quarantine", help="list rows the last load quarantined",
                       description="List quarantined rows with file, line and reason.")
    s.add_argument("--load", type=int, help="load id (default: the latest)")
    s.add_argument("--limit", type=_positive, default=100,
                   help="at most this many rows (default 100)")
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
                                   "Airflow for the demo's dates and print what was found. "
                                   "Run it again: same books, same findings.")
    s.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    s.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    s.add_argument("--fresh", action="store_true",
                   help="start over: stop the embedded PostgreSQL and wipe its data, the demo "
                        "books and the local Airflow")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("ui", help="the Airflow UI on the embedded server (Ctrl-C stops it)",
                       description="Start Airflow's API server, scheduler and DAG processor on "
                                   "the embedded PostgreSQL, print the URL and the login, and "
                                   "stop all of them on Ctrl-C.")
    s.add_argument("--port", type=_port, default=8080, help="port of the UI (default 8080)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    s.set_defaults(func=cmd_ui)

    s = sub.add_parser("stop", help="stop the embedded PostgreSQL server",
                       description="Stop the embedded PostgreSQL server (data stays in "
                                   ".revleak/pgdata; any revleak command starts it again).")
    s.set_defaults(func=cmd_stop)

    s = sub.add_parser("tickets", help="ticket outbox: pending, delivered, failed",
                       description="List ticket events by state with their last error; "
                                   "--relay delivers pending events now.")
    s.add_argument("--status", choices=["pending", "delivered", "failed", "all"],
                   default="all")
    s.add_argument("--limit", type=_positive, default=50)
    s.add_argument("--relay", action="store_true", help="deliver pending events now")
    s.add_argument("--retry-failed", action="store_true", help="queue failed events again")
    s.set_defaults(func=cmd_tickets)

    s = sub.add_parser("check", help="run one check for one as-of date (outside Airflow)",
                       description="Run a check's SQL for an as-of date and record its findings, "
                                   "as the DAG does. Use the DAGs for scheduled work.")
    s.add_argument("check", choices=CHECK_IDS, help="the check (DAG id)")
    s.add_argument("--as-of", type=_date, required=True, help="check the books as of this date")
    s.add_argument("--tolerance-pct", type=float, help="override the tolerance (%% of expected)")
    s.add_argument("--billing-lag-days", type=int, help="override the billing lag")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("report", help="write a check run's report (HTML) and findings (CSV)",
                       description="Render the report of one check run from stored findings "
                                   "(the same bytes for the same findings) and print where it "
                                   "was written: the report store (reports.location) or --out.")
    s.add_argument("check", choices=CHECK_IDS, help="the check (DAG id)")
    s.add_argument("--as-of", type=_date, required=True, help="the run's as-of date")
    s.add_argument("--out", help="a folder or an object storage URL (default: the report store)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("findings", help="print findings (contract §4)",
                       description="Print findings: the current state, or what one as-of date "
                                   "saw (--as-of). JSON lines with --format json.")
    s.add_argument("--check", choices=CHECK_IDS, help="only this check (DAG id)")
    s.add_argument("--as-of", type=_date, help="what this as-of date saw (history)")
    s.add_argument("--status", choices=["open", "resolved", "all"], default="open")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.add_argument("--evidence", action="store_true", help="include evidence in JSON output")
    s.add_argument("--limit", type=_positive, default=50,
                   help="rows in the table view, largest loss first (default 50)")
    s.set_defaults(func=cmd_findings)

    s = sub.add_parser("audit", help="who changed what: manual actions that changed state",
                       description="Manual actions that changed state (failed ticket events "
                                   "queued again, runs with overridden rules, loads that "
                                   "replaced stored rows): who, when, what; latest first.")
    s.add_argument("--since", type=_date, help="only entries from this date on")
    s.add_argument("--limit", type=_positive, default=50)
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.set_defaults(func=cmd_audit)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # the reader (e.g. `head`) has what it wanted: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a Unix tool ended by SIGPIPE
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
    except Exception as e:  # a bug, not a user mistake: still one line unless --debug
        if args.debug:
            raise
        first = (str(e).strip().splitlines() or [""])[0][:300]
        print(f"revleak: unexpected {type(e).__name__}: {first} (rerun with --debug for the "
              "traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
