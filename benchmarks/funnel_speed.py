"""funnel_leak_weekly on the demo's events: the weekly run's wall time, and its ratio to a
plain scan of the week's events (count(*) of the week's opportunity events and signals), the
two measured alternately in the same run (min and median of --repeat), so machine noise
cancels in the ratio.

    .venv/bin/python benchmarks/funnel_speed.py --scale large

Generates the demo company (unless benchmarks/out/<scale> already holds it), loads the
tables the check reads into a warehouse of its own (an embedded PostgreSQL in
benchmarks/out/funnel-<scale>-home, stopped at the end), runs the demo's checked week (each run
also measures the two weeks before it for the trend) and writes
benchmarks/results/funnel_speed_<scale>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
from datetime import date
from pathlib import Path

from bench import demo_tables, timed

HERE = Path(__file__).parent
CHECK = "funnel_leak_weekly"
READS = ("customers", "fx_rates", "inbound_signals", "opportunities", "opportunity_events")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="large", choices=["small", "medium", "large"])
    p.add_argument("--repeat", type=int, default=3, help="alternated runs of each (default 3)")
    args = p.parse_args()
    os.environ["REVLEAK_HOME"] = str((HERE / "out" / f"funnel-{args.scale}-home").resolve())
    os.environ.pop("AIRFLOW_CONN_REVLEAK_WAREHOUSE", None)
    from revleak import checks, loader, pipeline, warehouse
    from revleak.config import load_config

    subset, manifest, generated = demo_tables(args.scale, READS, "funnel")
    as_of = date.fromisoformat(manifest["runs"][CHECK]["as_of"])
    run = checks.CheckRun(CHECK, as_of, load_config())
    try:
        with warehouse.connect() as conn:
            warehouse.migrate(conn)
            loaded, (_, results) = timed(lambda: loader.load(conn, subset))
            conn.execute("analyze")
            conn.commit()
            week = (run.params["window_start_at"], run.params["as_of_end"])

            def scan_week():
                counts = [conn.execute(sql, week).fetchone()[0] for sql in (
                    "select count(*) from revleak.opportunity_events"
                    " where occurred_at >= %s and occurred_at < %s",
                    "select count(*) from revleak.inbound_signals"
                    " where received_at >= %s and received_at < %s")]
                conn.commit()
                return counts

            scans, checks_run = [], []
            for _ in range(args.repeat):  # alternated: the floor and the check in turn
                scan, rows = timed(scan_week)
                scans.append(scan)
                took, summary = timed(lambda: pipeline.run_check(CHECK, as_of))
                checks_run.append(took)
    finally:
        warehouse.stop_embedded()
    seeded = [x for x in manifest["leaks"] if x["check"] == CHECK]
    figures = {
        "scale": args.scale,
        "as_of": str(as_of),
        "rows_loaded": sum(r.rows for r in results),
        "generate_seconds": round(generated, 1) if generated else "reused",
        "load_seconds": round(loaded, 1),
        "week_events": rows[0],
        "week_signals": rows[1],
        "week_scan_seconds": {"min": round(min(scans), 3),
                              "median": round(statistics.median(scans), 3)},
        "check_seconds": {"min": round(min(checks_run), 1),
                          "median": round(statistics.median(checks_run), 1)},
        "check_to_week_scan_ratio": {
            "min": round(min(checks_run) / min(scans), 1),
            "median": round(statistics.median(checks_run) / statistics.median(scans), 1)},
        "open_findings": summary["findings"] - summary["resolved"],
        "manifest_leaks": len(seeded),
        "peak_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"funnel_speed_{args.scale}.json").write_text(
        json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
