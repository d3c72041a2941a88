"""Side by side, in one run: revleak's five checks against their scan floor, booked-vs-billed
and billed-vs-collected against the same rules in pandas and in DuckDB, the daily cost with
three times the closed history, and `revleak load` against a raw COPY.

    .venv/bin/pip install -e '.[bench]'   # pandas and duckdb, for the peers only
    .venv/bin/python benchmarks/compare.py --scale medium
    .venv/bin/python benchmarks/compare.py --scale large --load-repeat 1

Writes benchmarks/results/compare_<scale>.md and .json: the machine (cores, memory, CPU,
PostgreSQL and its memory settings, load average before and after), the command, every
timing of every run, and min / median of each. The books are the demo company
(`revleak demo-data`, kept in benchmarks/out/<scale>); the warehouse is an embedded PostgreSQL
the harness starts in a temporary folder, or the server of AIRFLOW_CONN_REVLEAK_WAREHOUSE if
set (then it creates and drops databases named revleak_bench_* there and touches nothing else).

What is timed. Every figure is measured --repeat times, ALTERNATED in one run (floor, check,
floor, check, …), so the noise of a shared machine hits both sides of a ratio alike:

- check: `pipeline.run_check` in this process (source guard, the check's SQL, findings and
  ticket events recorded: a DAG run without the relay) and, separately, `checks.reconcile`
  alone (the check's SQL), each on a connection of its own. The first run of each check on
  each database (it opens the findings) is reported apart. Spill = temporary files PostgreSQL
  wrote during `reconcile` (pg_stat_database.temp_bytes).
- scan floor: per table the check reads, one `count(*)` with `sum()` of every numeric column
  and `count()` of every other column the check's SQL reads, on the same database.
- peers: `revleak check` (a whole process, over the loaded warehouse) against
  benchmarks/peers/pandas_peer.py and duckdb_peer.py (whole processes, reading the CSV
  exports, rules from the same config); wall time and peak RSS (os.wait4) of each process —
  revleak's RSS is its Python, the server's memory is bounded by work_mem. All three must
  report the same findings: category, entity, currency, expected, actual and gap to the cent,
  days outstanding.
- load: `revleak load DIR` (a whole process) into a fresh database, then again with the files
  unchanged, against benchmarks/peers/copy_load.py: a raw COPY of the same files into tables
  of the same types without keys, checks, indexes or foreign keys. rows/s = rows in the files
  / wall seconds.

The 3× history books (benchmarks/out/<scale>-history3) are the same books plus two older
copies of their closed history: every contract, lost deal, invoice (with its lines, payments,
deposits and GL entries), event and signal whose every date lies more than HORIZON days
before the earliest as-of date, and that is no seeded leak, is copied with new ids (H1-…,
H2-…) and every date moved back a whole number of 4-year leap cycles per copy (so month
arithmetic — Jan 31 + 1 month — and day counts are unchanged), fx rates alongside, the copies
older than the original's first fx rate. A contract is copied only with all of its invoices
and with the contracts it renews (renewal chains are copied from their start); the last
copied contract of a chain is renewed by the first of the next newer layer (in the original
books: the chain's first contract, whose renewal_of is set — the one change to a 1× row).
Customers, reference tables and everything active stay as they are, so every check must
find exactly what it finds in the 1× books: the harness checks that as well.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import traceback
import warnings
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
from bench import current, mark, timed
from psycopg import sql

from revleak import checks, pipeline, warehouse
from revleak.config import Config, load_config
from revleak.errors import RevleakError
from revleak.registry import CHECK_IDS, CHECKS
from revleak.tables import TABLES

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PEERS = HERE / "peers"
BIN = Path(sys.executable).parent

PEER_CHECKS = ("booked_vs_billed_daily", "billed_vs_collected_weekly")
HORIZON = 120  # days: longer than any rule looks back (collection lag 90, billing lag 31, …)
LEAP_CYCLE = 4  # years
PREFIX = "revleak_bench_"
NUMERIC = ("money", "decimal", "int", "pct")
FINDING = ("category", "entity_type", "entity_id", "currency", "expected_amount",
           "actual_amount", "gap_amount", "days_outstanding")

# The columns each check reads (include/revleak/sql/checks/<check>.sql), per table: its floor.
READS = {
    "booked_vs_billed_daily": {
        "opportunities": ("opportunity_id", "customer_id", "stage", "amount", "currency",
                          "contract_start", "contract_end", "billing_frequency", "auto_renew",
                          "owner", "closed_at", "renewal_of", "created_at"),
        "invoices": ("invoice_id", "opportunity_id", "issue_date", "currency", "kind",
                     "status"),
        "invoice_lines": ("invoice_id", "amount"),
        "fx_rates": ("currency", "rate_date", "rate_to_base"),
    },
    "billed_vs_collected_weekly": {
        "invoices": ("invoice_id", "customer_id", "opportunity_id", "currency", "due_date",
                     "kind", "status", "issue_date"),
        "invoice_lines": ("invoice_id", "amount"),
        "payments": ("payment_id", "invoice_id", "customer_id", "amount", "currency",
                     "attempted_at", "status", "failure_code"),
        "fx_rates": ("currency", "rate_date", "rate_to_base"),
    },
    "funnel_leak_weekly": {
        "opportunities": ("opportunity_id", "created_at", "signal_id", "intent", "stage",
                          "expected_close_date"),
        "inbound_signals": ("signal_id", "received_at"),
        "opportunity_events": ("opportunity_id", "occurred_at", "event_type", "next_step_due"),
    },
    "recognized_vs_collected_quarterly": {
        "gl_entries": ("entry_id", "invoice_id", "amount", "posted_date", "account"),
        "invoices": ("invoice_id", "kind", "status", "customer_id", "currency"),
        "payments": ("payment_id", "invoice_id", "customer_id", "amount", "currency",
                     "attempted_at", "status"),
        "bank_transactions": ("reference", "booked_date"),
        "fx_rates": ("currency", "rate_date", "rate_to_base"),
    },
    "pricing_drift_quarterly": {
        "invoices": ("invoice_id", "customer_id", "currency", "issue_date", "kind", "status"),
        "invoice_lines": ("invoice_id", "line_no", "sku", "quantity", "unit_price",
                          "discount_pct", "promo_code", "amount"),
        "rate_cards": ("sku", "currency", "list_price", "effective_from", "effective_to"),
        "promotions": ("promo_code", "discount_pct", "valid_from", "valid_to", "stackable"),
        "discount_approvals": ("customer_id", "sku", "valid_from", "valid_to",
                               "max_discount_pct"),
        "fx_rates": ("currency", "rate_date", "rate_to_base"),
    },
}


class BenchError(RevleakError):
    """A step of the benchmark failed: one line saying which and why."""


# ---------------------------------------------------------------- the warehouse it runs on

class Warehouse:
    """A PostgreSQL server with one database per measured state (revleak_bench_*)."""

    def __init__(self) -> None:
        self.server = None
        if not os.environ.get(warehouse.ENV_VAR):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver

                logging.getLogger("pgserver").setLevel(logging.WARNING)

                self.tmp = tempfile.TemporaryDirectory(prefix="revleak-compare-")
                self.server = pgserver.get_server(Path(self.tmp.name) / "pgdata",
                                                  cleanup_mode="delete")
            os.environ[warehouse.ENV_VAR] = self.server.get_uri()
        self.params = warehouse.connection_params()
        self.created: list[str] = []
        self.template = self.create("template")
        with self.connect(self.template) as conn:
            warehouse.migrate(conn)

    def connection(self, db: str) -> str:
        """The warehouse connection (Airflow JSON form) of one database."""
        p = self.params
        extra = {k: v for k, v in p.items() if k not in ("host", "port", "user", "password",
                                                         "dbname")}
        return json.dumps({"conn_type": "postgres", "host": p.get("host"), "port": p.get("port"),
                           "login": p.get("user"), "password": p.get("password"),
                           "schema": db, "extra": extra})

    def env(self, db: str) -> dict[str, str]:
        """The environment of a process working on one database."""
        return {**os.environ, warehouse.ENV_VAR: self.connection(db),
                "REVLEAK_BENCH_DSN": psycopg.conninfo.make_conninfo(**{**self.params,
                                                                       "dbname": db})}

    def use(self, db: str) -> None:
        """Point this process's revleak (pipeline, checks) at one database."""
        os.environ[warehouse.ENV_VAR] = self.connection(db)

    def connect(self, db: str | None = None, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(autocommit=autocommit,
                               **{**self.params, **({"dbname": db} if db else {})})

    def create(self, name: str, template: str | None = None) -> str:
        db = PREFIX + name
        with self.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(db)))
            admin.execute(sql.SQL("create database {}{}").format(
                sql.Identifier(db),
                sql.SQL(" template {}").format(sql.Identifier(template)) if template
                else sql.SQL("")))
        if db not in self.created:
            self.created.append(db)
        return db

    def facts(self) -> dict:
        with self.connect(autocommit=True) as conn:
            return {name: conn.execute(f"show {name}").fetchone()[0] for name in
                    ("server_version", "shared_buffers", "work_mem",
                     "max_parallel_workers_per_gather")}

    def close(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.tmp.cleanup()
            return
        with self.connect(autocommit=True) as admin:
            for db in self.created:
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(
                    sql.Identifier(db)))


# ---------------------------------------------------------------- processes and timings

# Forks and times one command from a bare interpreter, so that the peak RSS the kernel reports
# for the child is the child's own (a child's peak starts from its parent's size at fork).
LAUNCHER = """import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - started} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_process(what: str, cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run one whole process: its wall seconds, its peak RSS in MB and its output."""
    with tempfile.TemporaryDirectory(prefix="revleak-run-") as tmp:
        usage, out, err = (Path(tmp) / name for name in ("usage", "out", "err"))
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            code = subprocess.call([sys.executable, "-I", "-S", "-c", LAUNCHER, str(usage), *cmd],
                                   stdout=stdout, stderr=stderr, env=env)
        text = out.read_text(errors="replace")
        if code:
            last = (err.read_text(errors="replace").strip() or text.strip()
                    or "no output").splitlines()[-1]
            raise BenchError(f"{what} failed (exit {code}): {last}")
        seconds, kib = usage.read_text().split()
    return float(seconds), int(kib) / 1024, text


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "runs": values}


def ratio(a: dict, b: dict) -> float:
    return a["median"] / b["median"] if b["median"] else float("inf")


# ---------------------------------------------------------------- the books

def demo_books(scale: str, seed: int) -> Path:
    """The demo company's exports (generated once per scale and seed)."""
    books = HERE / "out" / (scale if seed == 7 else f"{scale}-seed{seed}")
    if not current(books):  # none yet, or made by an earlier generator
        shutil.rmtree(books, ignore_errors=True)
        print(f"generating the {scale} demo books into {books} …", flush=True)
        run_process("revleak demo-data", [str(BIN / "revleak"), "demo-data", str(books),
                                          "--scale", scale, "--seed", str(seed)])
        mark(books)
    return books


def csv_rows(books: Path) -> dict[str, int]:
    """Rows in each export (lines less the header; the demo writes no embedded newlines)."""
    rows = {}
    for path in sorted(books.glob("*.csv")):
        with open(path, "rb") as fh:
            rows[path.stem] = sum(block.count(b"\n") for block in iter(
                lambda fh=fh: fh.read(1 << 20), b"")) - 1
    return rows


HISTORY_SQL = """
create macro older(x, years) as
    case when x is null then null
         else lpad((substr(x, 1, 4)::int - years)::varchar, 4, '0') || substr(x, 5) end;
create macro late(x) as x is not null and x::timestamptz >= $cutoff::timestamptz;

-- an invoice is settled history when none of its rows is recent and none is a seeded leak
create table invoice_late as
select invoice_id from invoices
where late(issue_date) or late(due_date) or late(period_start) or late(period_end)
   or invoice_id in (select id from leaks)
union select invoice_id from payments
where invoice_id is not null and (late(attempted_at) or payment_id in (select id from leaks))
union select invoice_id from gl_entries where invoice_id is not null and late(posted_date)
union select reference from bank_transactions where reference is not null and late(booked_date)
union select p.invoice_id from payments p join bank_transactions t on t.reference = p.payment_id
where p.invoice_id is not null and late(t.booked_date);

create table opportunity_late as
select opportunity_id from opportunities
where stage not in ('closed_won', 'closed_lost') or opportunity_id in (select id from leaks)
   or coalesce(auto_renew, 'false') = 'true' or closed_at is null
   or late(created_at) or late(closed_at) or late(contract_end) or late(expected_close_date)
union select opportunity_id from invoices
where opportunity_id is not null and invoice_id in (select invoice_id from invoice_late)
union select opportunity_id from opportunity_events
where late(occurred_at) or late(next_step_due)
union select o.opportunity_id from opportunities o join inbound_signals s using (signal_id)
where late(s.received_at);

create table opportunity_ok as
select opportunity_id from opportunities
where opportunity_id not in (select opportunity_id from opportunity_late);

-- renewal chains copied from their start: a deal is copied when it and all it renews are
create table copied as
with recursive chain(opportunity_id, head) as (
    select opportunity_id, opportunity_id from opportunities
    where renewal_of is null and opportunity_id in (select opportunity_id from opportunity_ok)
    union all
    select o.opportunity_id, c.head from opportunities o join chain c
      on o.renewal_of = c.opportunity_id
    where o.opportunity_id in (select opportunity_id from opportunity_ok)
)
select * from chain;

-- the last copied contract of each chain, when nothing copied renews it
create table tails as
select c.head, c.opportunity_id as tail
from copied c join opportunities o using (opportunity_id)
where o.stage = 'closed_won'
  and c.opportunity_id not in (select renewal_of from opportunities join copied
                               using (opportunity_id) where renewal_of is not null);

create table copied_invoices as
select invoice_id from invoices
where opportunity_id in (select opportunity_id from copied)
   or (opportunity_id is null and invoice_id not in (select invoice_id from invoice_late));
create table copied_payments as
select payment_id from payments where invoice_id in (select invoice_id from copied_invoices);
create table copied_signals as
select signal_id from inbound_signals s
where not late(s.received_at)
  and (s.signal_id in (select o.signal_id from opportunities o join copied using (opportunity_id))
       or s.signal_id not in (select signal_id from opportunities where signal_id is not null));
"""


def history_books(books: Path, copies: int = 2) -> tuple[Path, dict]:
    """The 3× history books (see the module docstring), built once per source books."""
    import duckdb

    out = books.parent / f"{books.name}-history{copies + 1}"
    manifest = json.loads((books / "manifest.json").read_text())
    source = hashlib.sha256((books / "manifest.json").read_bytes() + HISTORY_SQL.encode()
                            + inspect.getsource(history_books).encode()).hexdigest()
    stamp = out / "history.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("source") == source:
        return out, json.loads(stamp.read_text())
    print(f"building the {copies + 1}× history books into {out} …", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for path in books.glob("*.csv"):
        quoted = str(path).replace("'", "''")
        con.execute(f"create table {path.stem} as select * from read_csv('{quoted}', "
                    "header = true, all_varchar = true)")
    con.execute("create table leaks (id varchar)")
    con.executemany("insert into leaks values (?)",
                    [[leak["entity_id"]] for leak in manifest["leaks"]
                     if leak["entity_type"] in ("opportunity", "invoice", "payment")])
    as_of = min(date.fromisoformat(r["as_of"]) for c, r in manifest["runs"].items()
                if CHECKS[c].cadence != "on_change")  # the scheduled checks' dates
    cutoff = as_of - timedelta(days=HORIZON)
    first = con.execute("select least((select min(rate_date) from fx_rates),"
                        " (select min(created_at) from opportunities))").fetchone()[0]
    last = con.execute("select max(rate_date) from fx_rates").fetchone()[0]
    span = int(last[:4]) - int(first[:4]) + 1
    years = LEAP_CYCLE * -(-span // LEAP_CYCLE)  # whole leap cycles past the books' span
    con.execute(HISTORY_SQL.replace("$cutoff", f"'{cutoff.isoformat()}'"))

    def layer(table: str, k: int, keep: str, ids: dict[str, str]) -> str:
        """Copy k of a table: its kept rows, ids prefixed, dates moved back k × years."""
        dates = [c.name for c in TABLES[table].columns if c.type in ("date", "ts")]
        replace = {c: f"older({c}, {k * years})" for c in dates}
        replace |= {c: f"'H{k}-' || {c}" for c in ids} | {
            c: f"case when {c} in (select {src}) then 'H{k}-' || {c} end"
            for c, src in ids.items() if src}
        if table == "opportunities":  # a chain's last copy is renewed by the newer layer's head
            newer = (f"(select 'H{k + 1}-' || tail from tails where head = opportunity_id)"
                     if k < copies else "null")
            replace["renewal_of"] = (f"case when renewal_of is not null then 'H{k}-' || "
                                     f"renewal_of else {newer} end")
        body = ", ".join(f"{expr} as {col}" for col, expr in replace.items())
        return f"select * replace ({body}) from {table} where {keep}"

    ids = {  # table: (rows copied, id columns: '' = always its copy, else the copies it names)
        "opportunities": ("opportunity_id in (select opportunity_id from copied)",
                          {"opportunity_id": "", "signal_id": "signal_id from copied_signals"}),
        "invoices": ("invoice_id in (select invoice_id from copied_invoices)",
                     {"invoice_id": "", "opportunity_id": ""}),
        "invoice_lines": ("invoice_id in (select invoice_id from copied_invoices)",
                          {"invoice_id": ""}),
        "payments": ("payment_id in (select payment_id from copied_payments)",
                     {"payment_id": "", "invoice_id": ""}),
        "bank_transactions": (
            "reference in (select payment_id from copied_payments union all "
            "select invoice_id from copied_invoices) "
            "or (reference is null and not late(booked_date))",
            {"txn_id": "", "reference": "payment_id from copied_payments union all "
                                        "select invoice_id from copied_invoices"}),
        "gl_entries": ("invoice_id in (select invoice_id from copied_invoices) "
                       "or (invoice_id is null and not late(posted_date))",
                       {"entry_id": "", "invoice_id": "invoice_id from copied_invoices"}),
        "opportunity_events": ("opportunity_id in (select opportunity_id from copied)",
                               {"event_id": "", "opportunity_id": ""}),
        "inbound_signals": ("signal_id in (select signal_id from copied_signals)",
                            {"signal_id": ""}),
        "fx_rates": ("true", {}),
    }
    rows = {}
    for path in sorted(books.glob("*.csv")):
        target = out / path.name
        target.unlink(missing_ok=True)
        table = path.stem
        if table not in ids:  # customers and reference tables: as they are
            target.symlink_to(path.resolve())
            rows[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
            continue
        keep, id_columns = ids[table]
        parts = [f"select * from {table}"]
        if table == "opportunities":  # the original chain heads renew the newest copies
            parts = ["select * replace (coalesce(renewal_of, (select 'H1-' || tail from tails"
                     " where head = opportunity_id)) as renewal_of) from opportunities"]
        parts += [layer(table, k, keep, id_columns) for k in range(1, copies + 1)]
        quoted = str(target).replace("'", "''")
        con.execute(f"copy ({' union all '.join(parts)}) to '{quoted}' (header, delimiter ',')")
        rows[table] = con.execute(f"select count(*) from read_csv('{quoted}', header = true,"
                                  " all_varchar = true)").fetchone()[0]
    (out / "manifest.json").unlink(missing_ok=True)
    (out / "manifest.json").symlink_to((books / "manifest.json").resolve())
    facts = {"source": source, "copies": copies, "years_back_per_copy": years,
             "settled_before": cutoff.isoformat(), "rows": rows}
    stamp.write_text(json.dumps(facts, indent=1) + "\n")
    return out, facts


# ---------------------------------------------------------------- measurements

def floor_queries(check: str) -> list[sql.Composable]:
    """The scan floor of a check: per table it reads, count(*), sum() of its numeric columns
    and count() of the others it reads."""
    queries = []
    for table, columns in READS[check].items():
        types = {c.name: c.type for c in TABLES[table].columns}
        exprs = [sql.SQL("count(*)")] + [
            sql.SQL("{}({})").format(sql.SQL("sum" if types[c] in NUMERIC else "count"),
                                     sql.Identifier(c)) for c in columns]
        queries.append(sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(exprs), sql.Identifier("revleak", table)))
    return queries


def scan_floor(wh: Warehouse, db: str, check: str) -> tuple[float, int]:
    """Seconds to scan what the check reads (on a connection of its own), and the rows."""
    def scan() -> int:
        with wh.connect(db) as conn:
            return sum(conn.execute(q).fetchone()[0] for q in floor_queries(check))
    return timed(scan)


def temp_bytes(conn: psycopg.Connection) -> int:
    """Temporary-file bytes this database has written, this session's included."""
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select pg_stat_clear_snapshot()")
    return conn.execute("select temp_bytes from pg_stat_database"
                        " where datname = current_database()").fetchone()[0]


def reconcile(wh: Warehouse, db: str, check: str, as_of: date) -> tuple[float, float]:
    """Seconds of the check's SQL alone (checks.reconcile), and the MB it spilled."""
    wh.use(db)
    run = checks.CheckRun(check, as_of, load_config())
    with warehouse.connect(autocommit=True) as conn:
        before = temp_bytes(conn)
        seconds, _ = timed(lambda: checks.reconcile(conn, run))
        spilled = temp_bytes(conn) - before
    return seconds, spilled / 2**20


def run_check(wh: Warehouse, db: str, check: str, as_of: date) -> tuple[float, dict]:
    wh.use(db)
    return timed(lambda: pipeline.run_check(check, as_of))


def as_of_dates(manifest: dict) -> dict[str, date]:
    """Each check with SQL of its own (pricing_drift_on_change runs the quarterly's) and the
    date the demo's manifest checks it as of."""
    return {check: date.fromisoformat(manifest["runs"][check]["as_of"]) for check in CHECK_IDS
            if CHECKS[check].same_as is None}


def findings_in(wh: Warehouse, db: str, check: str, as_of: date) -> set[tuple]:
    """What revleak found (check_results of the check and date), as comparable tuples."""
    with wh.connect(db) as conn:
        rows = conn.execute(
            sql.SQL("select {} from revleak.check_results where check_id = %s and as_of = %s")
            .format(sql.SQL(", ").join(map(sql.Identifier, FINDING))), (check, as_of))
        return {comparable(dict(zip(FINDING, row, strict=True))) for row in rows}


def comparable(f: dict) -> tuple:
    """A finding as (category, entity, currency, expected, actual, gap, days), amounts to the
    cent as text."""
    def cents(v) -> str | None:
        return None if v is None else str(Decimal(str(v)).quantize(Decimal("0.01")))
    return tuple(cents(f[k]) if k.endswith("_amount") else f[k] for k in FINDING)


def difference(reference: set, other: set, limit: int = 5) -> dict:
    return {"only_in_revleak": sorted(reference - other, key=str)[:limit],
            "only_in_peer": sorted(other - reference, key=str)[:limit],
            "count_only_in_revleak": len(reference - other),
            "count_only_in_peer": len(other - reference)}


def manifest_leaks(manifest: dict, check: str, found: set[tuple]) -> dict:
    """How many of the demo's seeded leaks of the check the findings hold: same category and
    entity, and the same gap and days where the manifest states them."""
    got = {(f[0], f[2]): f for f in found}
    seeded = [leak for leak in manifest["leaks"] if leak["check"] == check]
    missed = [(leak["category"], leak["entity_id"]) for leak in seeded
              if not _holds(got.get((leak["category"], leak["entity_id"])), leak)]
    return {"seeded": len(seeded), "found": len(seeded) - len(missed), "missed": missed[:10]}


def _holds(finding: tuple | None, leak: dict) -> bool:
    if finding is None:
        return False
    return ((leak.get("gap_amount") is None or finding[6] == leak["gap_amount"])
            and (leak.get("days_outstanding") is None or finding[7] == leak["days_outstanding"]))


def quarantined(wh: Warehouse, db: str, what: str) -> None:
    """The demo books are valid row for row: a quarantined row means broken books."""
    with wh.connect(db) as conn:
        row = conn.execute("select count(*), min(table_name || ': ' || reason)"
                           " from revleak.quarantine").fetchone()
    if row[0]:
        raise BenchError(f"{what}: {row[0]} rows quarantined (e.g. {row[1]}); the books are "
                         "broken: delete benchmarks/out/ and run again")


def measure_loads(wh: Warehouse, books: Path, rows: int, repeat: int) -> tuple[str, dict]:
    """revleak load (first, then unchanged) against a raw COPY, alternated; the database the
    last first load filled is kept for the checks."""
    revleak, copy = str(BIN / "revleak"), [sys.executable, str(PEERS / "copy_load.py")]
    runs: dict[str, list] = {k: [] for k in ("first", "reload", "raw_copy")}
    rss: dict[str, list] = {k: [] for k in runs}
    for n in range(repeat):
        print(f"  load round {n + 1}/{repeat}", flush=True)
        db = wh.create("1x", wh.template)
        for kind, what in (("first", "revleak load"), ("reload", "revleak load (unchanged)")):
            seconds, peak, _ = run_process(what, [revleak, "load", str(books)], wh.env(db))
            runs[kind].append(seconds)
            rss[kind].append(peak)
        raw = wh.create("raw", wh.template)
        seconds, peak, out = run_process("raw COPY", [*copy, str(books)], wh.env(raw))
        if int(out.split()[-1]) != rows:
            raise BenchError(f"raw COPY copied {out.split()[-1]} rows, the files hold {rows}")
        runs["raw_copy"].append(seconds)
        rss["raw_copy"].append(peak)
    quarantined(wh, db, "revleak load of the demo books")
    figures = {"rows": rows}
    for kind, seconds in runs.items():
        figures[kind] = {"seconds": spread(seconds), "peak_rss_mb": max(rss[kind]),
                         "rows_per_second": rows / statistics.median(seconds)}
    return db, figures


def measure_checks(wh: Warehouse, dbs: dict[str, str], manifest: dict, repeat: int,
                   out: dict, save) -> None:
    """Each check against its scan floor on every database, alternated, into ``out``; the
    results are saved after each check."""
    for check, as_of in as_of_dates(manifest).items():
        print(f"  {check} as of {as_of}", flush=True)
        try:
            out[check] = measure_check(wh, dbs, manifest, check, as_of, repeat)
        except (RevleakError, psycopg.Error) as e:  # one broken check leaves the others
            out[check] = {"as_of": as_of.isoformat(), "error": one_line(e)}
            print(f"  {check} failed: {out[check]['error']}", flush=True)
        save()


def measure_check(wh: Warehouse, dbs: dict[str, str], manifest: dict, check: str,
                  as_of: date, repeat: int) -> dict:
    """One check: first run, then floor, reconcile and run_check on each database, --repeat
    times; its findings on each database compared."""
    entry: dict = {"as_of": as_of.isoformat()}
    runs = {label: {"floor": [], "reconcile": [], "run_check": [], "spill_mb": []}
            for label in dbs}
    for label, db in dbs.items():
        entry[label] = {"first_run_seconds": run_check(wh, db, check, as_of)[0]}
    for _ in range(repeat):
        for label, db in dbs.items():
            seconds, entry[label]["rows_read"] = scan_floor(wh, db, check)
            runs[label]["floor"].append(seconds)
            seconds, spilled = reconcile(wh, db, check, as_of)
            runs[label]["reconcile"].append(seconds)
            runs[label]["spill_mb"].append(spilled)
            runs[label]["run_check"].append(run_check(wh, db, check, as_of)[0])
    found = {label: findings_in(wh, db, check, as_of) for label, db in dbs.items()}
    for label in dbs:
        e = entry[label]
        e.update({k: spread(v) for k, v in runs[label].items()})
        e["reconcile_to_floor"] = ratio(e["reconcile"], e["floor"])
        e["run_check_to_floor"] = ratio(e["run_check"], e["floor"])
        e["findings"] = len(found[label])
    entry["seeded_leaks"] = manifest_leaks(manifest, check, found["1x"])
    if "3x" in dbs:
        entry["history"] = {
            "same_findings": found["3x"] == found["1x"],
            **difference(found["1x"], found["3x"]),
            "rows_read_ratio": entry["3x"]["rows_read"] / entry["1x"]["rows_read"],
            "reconcile_ratio": ratio(entry["3x"]["reconcile"], entry["1x"]["reconcile"]),
            "run_check_ratio": ratio(entry["3x"]["run_check"], entry["1x"]["run_check"])}
    return entry


def measure_peers(wh: Warehouse, db: str, books: Path, manifest: dict, repeat: int) -> dict:
    """revleak check, the pandas peer and the DuckDB peer as whole processes, alternated, and
    whether they found the same leaks."""
    config, out = load_config(), {}
    dates = as_of_dates(manifest)
    with tempfile.TemporaryDirectory(prefix="revleak-peers-") as tmp:
        for check in PEER_CHECKS:
            print(f"  {check}: revleak, pandas, DuckDB", flush=True)
            try:
                out[check] = side_by_side(wh, db, books, manifest, check, dates[check],
                                          config, repeat, Path(tmp))
            except (RevleakError, psycopg.Error) as e:  # one broken check leaves the other
                out[check] = {"as_of": dates[check].isoformat(), "error": one_line(e)}
                print(f"  {check} failed: {out[check]['error']}", flush=True)
    return out


def side_by_side(wh: Warehouse, db: str, books: Path, manifest: dict, check: str,
                 as_of: date, config: Config, repeat: int, tmp: Path) -> dict:
    """One check by revleak, pandas and DuckDB, --repeat times, alternated."""
    rules = json.dumps(checks.CheckRun(check, as_of, config).rules, default=str)
    files = {tool: tmp / f"{tool}-{check}.jsonl" for tool in ("pandas", "duckdb")}
    commands = {"revleak": [str(BIN / "revleak"), "check", check,
                            "--as-of", as_of.isoformat()]}
    for tool, path in files.items():
        commands[tool] = [sys.executable, str(PEERS / f"{tool}_peer.py"), check,
                          "--books", str(books), "--as-of", as_of.isoformat(),
                          "--rules", rules, "--base-currency", config.base_currency,
                          "--timezone", config.timezone, "--out", str(path)]
    seconds: dict[str, list] = {tool: [] for tool in commands}
    rss: dict[str, list] = {tool: [] for tool in commands}
    for _ in range(repeat):
        for tool, cmd in commands.items():
            s, peak, _ = run_process(f"{tool} {check}", cmd, wh.env(db))
            seconds[tool].append(s)
            rss[tool].append(peak)
    reference = findings_in(wh, db, check, as_of)
    entry = {"as_of": as_of.isoformat()}
    for tool in commands:
        found = reference if tool == "revleak" else {
            comparable(json.loads(line)) for line in files[tool].read_text().splitlines()}
        entry[tool] = {"seconds": spread(seconds[tool]), "peak_rss_mb": max(rss[tool]),
                       "findings": len(found), "same_as_revleak": found == reference,
                       **({} if tool == "revleak" else difference(reference, found))}
        entry[tool]["to_revleak"] = ratio(entry[tool]["seconds"],
                                          entry["revleak"]["seconds"])
    entry["seeded_leaks"] = manifest_leaks(manifest, check, reference)
    return entry


def machine(wh: Warehouse) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines()
                if line.startswith("MemTotal:")), 0)
    return {"cores": os.cpu_count(), "memory_gib": round(kib / 2**20, 1), "cpu": cpu,
            "os": platform.platform(), "python": platform.python_version(),
            "postgresql": wh.facts(),
            "warehouse": "embedded (pgserver, temporary)" if wh.server else warehouse.ENV_VAR,
            "pandas": installed("pandas"), "duckdb": installed("duckdb"),
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="medium", choices=["small", "medium", "large"])
    p.add_argument("--seed", type=int, default=7, help="demo seed (default 7)")
    p.add_argument("--repeat", type=int, default=3, help="runs of every timing (default 3)")
    p.add_argument("--load-repeat", type=int,
                   help="runs of the load comparison (default: --repeat, 1 at large scale)")
    p.add_argument("--skip", action="append", default=[],
                   choices=["load", "checks", "peers", "history"],
                   help="leave a part out (repeatable); a skipped load still loads once")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args()
    airflow_home = tempfile.TemporaryDirectory(prefix="revleak-compare-airflow-")
    os.environ.setdefault("AIRFLOW_HOME", airflow_home.name)  # revleak may import Airflow
    try:
        figures = compare(args)
    except (RevleakError, psycopg.Error, OSError, ImportError) as e:
        if args.debug:
            traceback.print_exc()
        message = one_line(e)
        if isinstance(e, ImportError):
            message += " (install the peers: .venv/bin/pip install -e '.[bench]')"
        print(f"compare: {message}", file=sys.stderr)
        sys.exit(1)
    finally:
        airflow_home.cleanup()
    print(markdown(figures))


def compare(args: argparse.Namespace) -> dict:
    import duckdb  # noqa: F401  (fail early when the bench extra is missing)
    import pandas  # noqa: F401

    if args.repeat < 1 or (args.load_repeat is not None and args.load_repeat < 1):
        raise BenchError("--repeat and --load-repeat take a whole number of runs, 1 or more")
    load_repeat = 0 if "load" in args.skip else (
        args.load_repeat or (1 if args.scale == "large" else args.repeat))
    started = datetime.now(UTC)
    books = demo_books(args.scale, args.seed)
    manifest = json.loads((books / "manifest.json").read_text())
    rows = csv_rows(books)
    figures: dict = {"scale": args.scale, "command": " ".join(
        [Path(sys.executable).relative_to(Path.cwd()).as_posix()
         if Path(sys.executable).is_relative_to(Path.cwd()) else sys.executable,
         *sys.argv]), "started": started.isoformat(timespec="seconds"),
        "books": {"folder": str(books.relative_to(HERE.parent)), "rows": rows}}
    history = None
    if not {"history", "checks"} & set(args.skip):  # the 3× books serve the checks only
        history, facts = history_books(books)
        figures["history_books"] = {**facts, "folder": str(history.relative_to(HERE.parent))}
    stem = RESULTS / f"compare_{args.scale}"

    def save() -> None:
        """Write what is measured so far (a long run killed midway keeps its figures)."""
        figures["seconds"] = round((datetime.now(UTC) - started).total_seconds())
        RESULTS.mkdir(exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(figures, indent=1, default=str) + "\n")
        stem.with_suffix(".md").write_text(markdown(figures) + "\n")

    wh = Warehouse()
    try:
        figures["machine"] = machine(wh)
        if load_repeat:
            print("load: revleak load vs raw COPY", flush=True)
            db, figures["load"] = measure_loads(wh, books, sum(rows.values()), load_repeat)
        else:
            db = wh.create("1x", wh.template)
            run_process("revleak load", [str(BIN / "revleak"), "load", str(books)], wh.env(db))
            quarantined(wh, db, "revleak load of the demo books")
        dbs = {"1x": db}
        if history is not None:
            print("load: the 3× history books", flush=True)
            dbs["3x"] = wh.create("3x", wh.template)
            seconds, peak, _ = run_process("revleak load (3× history)",
                                           [str(BIN / "revleak"), "load", str(history)],
                                           wh.env(dbs["3x"]))
            quarantined(wh, dbs["3x"], "revleak load of the 3× history books")
            history_rows = sum(figures["history_books"]["rows"].values())
            figures["history_books"]["load"] = {
                "seconds": seconds, "rows_per_second": history_rows / seconds,
                "peak_rss_mb": peak}
        save()
        for name in dbs.values():
            with wh.connect(name, autocommit=True) as conn:
                conn.execute("vacuum analyze")
        print(f"checks: each against its scan floor ({', '.join(dbs)} alternated)"
              if "checks" not in args.skip else "", flush=True)
        save()
        if "checks" not in args.skip:
            figures["checks"] = {}
            measure_checks(wh, dbs, manifest, args.repeat, figures["checks"], save)
        if "peers" not in args.skip:
            print("peers: side by side", flush=True)
            figures["peers"] = measure_peers(wh, dbs["1x"], books, manifest, args.repeat)
        figures["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        figures["complete"] = True
        save()
    finally:
        wh.close()
    print(f"wrote {stem.with_suffix('.md').relative_to(HERE.parent)} and .json", flush=True)
    return figures


# ---------------------------------------------------------------- the table

def _mm(s: dict, digits: int = 2) -> str:
    return f"{s['min']:.{digits}f} / {s['median']:.{digits}f}"


def markdown(f: dict) -> str:
    m, pg = f["machine"], f["machine"]["postgresql"]
    rows = f["books"]["rows"]
    out = [f"# revleak side by side: the {f['scale']} demo", "",
           f"`{f['command']}` — started {f['started']}, took {f['seconds']} s"
           + ("." if f.get("complete") else " so far (incomplete: still running or stopped)."),
           "",
           f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; {m['os']}. "
           f"PostgreSQL {pg['server_version']} ({m['warehouse']}; shared_buffers "
           f"{pg['shared_buffers']}, work_mem {pg['work_mem']}, "
           f"{pg['max_parallel_workers_per_gather']} parallel workers per gather). Python "
           f"{m['python']}, pandas {m['pandas']}, DuckDB {m['duckdb']}. Load average "
           f"{m['load_average_before']} before, {m.get('load_average_after')} after (a shared "
           "machine: compare ratios measured in the same run, not seconds across runs).", "",
           f"Books: `{f['books']['folder']}`, {sum(rows.values()):,} rows "
           f"({rows['opportunities']:,} opportunities, {rows['invoices']:,} invoices, "
           f"{rows['invoice_lines']:,} invoice lines, {rows['payments']:,} payments). Seconds "
           "are min / median of the runs; ratios are of medians.", "",
           "## Each check against its scan floor (1×)", "",
           "| check | as of | rows read | floor s | reconcile s | × floor | run_check s "
           "| × floor | spill MB | first run s | findings | seeded leaks found |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for check, e in f.get("checks", {}).items():
        if "error" in e:
            out.append(f"| `{check}` | {e['as_of']} | failed: {e['error']} |" + " |" * 9)
            continue
        x, seeded = e["1x"], e["seeded_leaks"]
        out.append(f"| `{check}` | {e['as_of']} | {x['rows_read']:,} | {_mm(x['floor'], 3)} | "
                   f"{_mm(x['reconcile'])} | {x['reconcile_to_floor']:.0f}× | "
                   f"{_mm(x['run_check'])} | {x['run_check_to_floor']:.0f}× | "
                   f"{x['spill_mb']['median']:.0f} | {x['first_run_seconds']:.2f} | "
                   f"{x['findings']} | {seeded['found']} of {seeded['seeded']} |")
    out += ["", "reconcile = the check's SQL alone (`checks.reconcile`); run_check = "
            "`pipeline.run_check` (source guard, SQL, findings and ticket events recorded); "
            "floor = `count(*)`, `sum()` of the numeric and `count()` of the other columns the "
            "check reads, per table; spill = temporary files written by reconcile. The first "
            "run (it opens every finding) is apart; the timed runs are reruns."]
    measured = {c: e for c, e in f.get("checks", {}).items() if "error" not in e}
    missed = [f"`{c}`: {e['seeded_leaks']['missed']}" for c, e in measured.items()
              if e["seeded_leaks"]["missed"]]
    if missed:
        out += ["", "Seeded leaks of the manifest not found (category, entity): "
                + "; ".join(missed) + "."]
    if "history_books" in f and measured:
        h = f["history_books"]
        grown = ", ".join(f"{t} {h['rows'][t] / rows[t]:.2f}×" for t in
                          ("opportunities", "invoices", "invoice_lines", "payments",
                           "gl_entries") if t in h["rows"])
        out += ["", "## The daily cost with 3× the closed history", "",
                f"Same active books plus {h['copies']} older copies of everything settled before "
                f"{h['settled_before']} ({h['years_back_per_copy']} years back per copy; see "
                f"`benchmarks/compare.py`): {grown}. Loaded by `revleak load` in "
                f"{h['load']['seconds']:.0f} s ({h['load']['rows_per_second']:,.0f} rows/s).",
                "", "| check | rows read 3×/1× | reconcile s 1× | 3× | 3×/1× | run_check s 1× "
                "| 3× | 3×/1× | same findings |", "|---|--:|--:|--:|--:|--:|--:|--:|---|"]
        for check, e in measured.items():
            hx = e["history"]
            same = "yes" if hx["same_findings"] else (
                f"no: {hx['count_only_in_revleak']} only 1×, {hx['count_only_in_peer']} only 3×")
            one, three = e["1x"], e["3x"]
            out.append(f"| `{check}` | {hx['rows_read_ratio']:.2f}× | "
                       f"{one['reconcile']['median']:.2f} | {three['reconcile']['median']:.2f} | "
                       f"{hx['reconcile_ratio']:.2f}× | {one['run_check']['median']:.2f} | "
                       f"{three['run_check']['median']:.2f} | {hx['run_check_ratio']:.2f}× | "
                       f"{same} |")
    if "peers" in f:
        out += ["", "## Side by side with pandas and DuckDB (whole processes)", "",
                "| check | tool | wall s | × revleak | peak RSS MB | findings | same leaks as "
                "revleak |", "|---|---|--:|--:|--:|--:|---|"]
        for check, e in f["peers"].items():
            if "error" in e:
                out.append(f"| `{check}` | failed: {e['error']} |" + " |" * 5)
                continue
            for tool, label in (("revleak", "`revleak check` (warehouse loaded)"),
                                ("pandas", "pandas (reads the CSVs)"),
                                ("duckdb", "DuckDB (reads the CSVs)")):
                t = e[tool]
                same = "—" if tool == "revleak" else ("yes" if t["same_as_revleak"] else (
                    f"**no**: {t['count_only_in_revleak']} only revleak, "
                    f"{t['count_only_in_peer']} only {tool}"))
                out.append(f"| `{check}` | {label} | {_mm(t['seconds'])} | "
                           f"{t['to_revleak']:.2f} | {t['peak_rss_mb']:.0f} | {t['findings']} | "
                           f"{same} |")
        out += ["", "Same leaks = the same set of (category, entity, currency, expected, "
                "actual, gap to the cent, days outstanding). revleak's RSS is its Python "
                "process; the server's own memory is bounded by work_mem."]
    if "load" in f:
        ld = f["load"]
        out += ["", "## Load against a raw COPY (whole processes)", "",
                "| what | rows | s | rows/s (median) | peak RSS MB |", "|---|--:|--:|--:|--:|"]
        for kind, label in (("first", "`revleak load` into an empty warehouse"),
                            ("reload", "`revleak load` again, files unchanged"),
                            ("raw_copy", "raw `COPY` into tables without keys or checks")):
            x = ld[kind]
            out.append(f"| {label} | {ld['rows']:,} | {_mm(x['seconds'], 1)} | "
                       f"{x['rows_per_second']:,.0f} | {x['peak_rss_mb']:.0f} |")
        first = ld["first"]["seconds"]
        out += ["", f"raw COPY is {ratio(first, ld['raw_copy']['seconds']):.1f}× faster than a "
                "first `revleak load`; an unchanged reload takes "
                f"{ratio(ld['reload']['seconds'], first):.2f}× the first load's time."]
    return "\n".join(out)


if __name__ == "__main__":
    main()
