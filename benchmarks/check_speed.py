"""booked_vs_billed_daily on the large demo: wall time, and its ratio to a plain count(*) scan
of the tables it reads.

    .venv/bin/python benchmarks/check_speed.py --scale large

Generates the demo company (unless benchmarks/out/<scale> already holds it), loads the
tables the check reads, runs the check for the demo's as-of date twice (first run and an
idempotent rerun) and writes benchmarks/results/check_speed_<scale>.json.
"""

from __future__ import annotations

import argparse
import json
import resource
from datetime import date
from pathlib import Path

from bench import demo_tables, timed

from revleak import loader, pipeline, warehouse

HERE = Path(__file__).parent
READS = ("customers", "opportunities", "invoices", "invoice_lines", "fx_rates")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="large", choices=["small", "medium", "large"])
    args = p.parse_args()
    subset, manifest, generated = demo_tables(args.scale, READS, "bvb")
    with warehouse.connect() as conn:
        warehouse.migrate(conn)
        loaded, (_, results) = timed(lambda: loader.load(conn, subset))
        conn.execute("analyze")
        conn.commit()
        scan, _ = timed(lambda: [conn.execute(f"select count(*) from revleak.{t}").fetchone()
                                 for t in READS])
    as_of = date.fromisoformat(manifest["runs"]["booked_vs_billed_daily"]["as_of"])
    first, summary = timed(lambda: pipeline.run_check("booked_vs_billed_daily", as_of))
    rerun, _ = timed(lambda: pipeline.run_check("booked_vs_billed_daily", as_of))
    expected = sum(1 for leak in manifest["leaks"] if leak["check"] == "booked_vs_billed_daily")
    figures = {
        "scale": args.scale,
        "rows_loaded": sum(r.rows for r in results),
        "generate_seconds": round(generated, 1) if generated else "reused",
        "load_seconds": round(loaded, 1),
        "check_seconds": round(first, 1),
        "rerun_seconds": round(rerun, 1),
        "count_scan_seconds": round(scan, 2),
        "check_to_scan_ratio": round(first / scan, 1),
        "findings": summary["findings"],
        "manifest_leaks": expected,
        "peak_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"check_speed_{args.scale}.json").write_text(
        json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
