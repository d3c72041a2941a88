"""Load rate: stream N invoice lines (default 10M) through `revleak load`.

    .venv/bin/python benchmarks/load_rate.py --lines 10000000

Writes synthetic contract CSVs (customers, invoices, invoice_lines: 10 lines per invoice),
loads them into the configured warehouse (embedded by default) twice — a first load and an
idempotent reload — and records rows/s and the loader's peak Python memory in
benchmarks/results/load_rate.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import tempfile
import time
from pathlib import Path

from revleak import loader, warehouse

RESULTS = Path(__file__).parent / "results"


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
                wl.writerow([inv, n, f"SKU{n}", qty, f"{price}.00", "10",
                             f"{qty * price * 0.9:.2f}"])


def timed_load(conn, directory: Path) -> tuple[float, list[loader.TableResult]]:
    started = time.monotonic()
    _, results = loader.load(conn, directory)
    return time.monotonic() - started, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=10_000_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="revleak-bench-") as tmp:
        directory = Path(tmp)
        started = time.monotonic()
        write_books(directory, args.lines)
        generated = time.monotonic() - started
        with warehouse.connect() as conn:
            warehouse.migrate(conn)
            conn.execute("truncate revleak.invoice_lines, revleak.invoices cascade")
            conn.commit()
            first, results = timed_load(conn, directory)
            again, _ = timed_load(conn, directory)
    rows = sum(r.rows for r in results)
    figures = {
        "invoice_lines": args.lines, "rows_total": rows,
        "generate_seconds": round(generated, 1),
        "first_load_seconds": round(first, 1), "first_load_rows_per_second": round(rows / first),
        "reload_seconds": round(again, 1), "reload_rows_per_second": round(rows / again),
        "peak_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "quarantined": sum(r.quarantined for r in results),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load_rate.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
