"""Load rate: stream N invoice lines (default 10M) through `revleak load`.

    .venv/bin/python benchmarks/load_rate.py --lines 10000000

Writes synthetic contract CSVs (customers, invoices, invoice_lines: 10 lines per invoice),
loads them into a scratch database (``revleak_load_rate``, dropped afterwards) on the
configured warehouse server (embedded by default) three times — a first load, the same files
delivered again (unchanged: skipped by checksum) and a forced reload (staged, checked and
upserted again, changing nothing) — and records rows/s and the loader's peak Python memory
in benchmarks/results/load_rate.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from revleak import loader, warehouse

RESULTS = Path(__file__).parent / "results"
SCRATCH = "revleak_load_rate"


def write_books(directory: Path, lines: int) -> None:
    invoices = lines // 10
    with open(directory / "customers.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "name", "currency", "created_at"])
        for c in range(1000):
            w.writerow([f"C{c:06d}", f"Customer {c}", "USD", "2024-01-01T00:00:00+00:00"])
    with open(directory / "invoices.csv", "w", newline="") as fi, \
            open(directory / "invoice_lines.csv", "w", newline="") as fl:
        wi, wl = csv.writer(fi), csv.writer(fl)
        wi.writerow(["invoice_id", "customer_id", "issue_date", "due_date", "currency", "status"])
        wl.writerow(["invoice_id", "line_no", "sku", "quantity", "unit_price", "discount_pct",
                     "amount"])
        for i in range(invoices):
            inv = f"INV{i:09d}"
            wi.writerow([inv, f"C{i % 1000:06d}", "2026-01-01", "2026-01-31", "USD", "open"])
            for n in range(1, 11):
                qty, price = n, 10 + (i % 90)
                cents = qty * price * 90  # 10% off, in cents
                wl.writerow([inv, n, f"SKU{n}", qty, f"{price}.00", "10",
                             f"{cents // 100}.{cents % 100:02d}"])


def timed_load(conn, directory: Path, force: bool = False
               ) -> tuple[float, list[loader.TableResult]]:
    started = time.monotonic()
    _, results = loader.load(conn, directory, force=force)
    return time.monotonic() - started, results


@contextmanager
def scratch_database():
    """A fresh, migrated database on the warehouse server, dropped afterwards."""
    params = warehouse.connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f"drop database if exists {SCRATCH} with (force)")
        admin.execute(f"create database {SCRATCH}")
    try:
        with psycopg.connect(**{**params, "dbname": SCRATCH}) as conn:
            warehouse.migrate(conn)
            conn.commit()
            yield conn
    finally:
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute(f"drop database if exists {SCRATCH} with (force)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=10_000_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="revleak-bench-") as tmp:
        directory = Path(tmp)
        started = time.monotonic()
        write_books(directory, args.lines)
        generated = time.monotonic() - started
        with scratch_database() as conn:
            first, results = timed_load(conn, directory)
            unchanged, skipped = timed_load(conn, directory)
            forced, _ = timed_load(conn, directory, force=True)
    assert all(r.unchanged for r in skipped)
    rows = sum(r.rows for r in results)
    figures = {
        "invoice_lines": args.lines, "rows_total": rows,
        "generate_seconds": round(generated, 1),
        "first_load_seconds": round(first, 1), "first_load_rows_per_second": round(rows / first),
        "unchanged_reload_seconds": round(unchanged, 2),
        "unchanged_reload_speedup": round(first / unchanged, 1),
        "forced_reload_seconds": round(forced, 1),
        "forced_reload_rows_per_second": round(rows / forced),
        "peak_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "quarantined": sum(r.quarantined for r in results),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load_rate.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
