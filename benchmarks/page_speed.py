"""The Revenue leakage page on the demo company: how long each view takes to answer, and how
long each report takes to render.

    .venv/bin/python benchmarks/page_speed.py --scale large

Generates the demo company (unless benchmarks/out/page-<scale>/books already holds it), loads
it into the warehouse (AIRFLOW_CONN_REVLEAK_WAREHOUSE, else an embedded server in
benchmarks/out/page-<scale>), runs every check for its last --history periods up to the
demo's dates (so the ledger and the trends have history), then requests the page's
views through its FastAPI app in this process (Airflow's login stubbed; the app, its SQL and
its charts are what is timed): the first request of a fresh process, then per view the
median and worst of --repeat requests as after a new run (the page's summaries — ledger,
trends, filter options — read again; they are kept until the next run or load) and the
median of the same view asked again. Writes benchmarks/results/page_speed_<scale>.json.

The large demo's books take ≈ 20 GB on disk once loaded; where that does not fit,
``--skip-load --multiply 20`` after a medium run copies the medium demo's findings, history
and episodes 20 times over (page_speed_medium_x20.json): the page's tables at the large
demo's size, the books left as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
from datetime import date, timedelta
from pathlib import Path

from bench import timed

HERE = Path(__file__).parent
VIEWS = {  # what a reader does on the page
    "default (open, by loss, 90 days)": "",
    "one check": "?check=booked_vs_billed_daily",
    "one owner": "?owner=RevOps+on+call",
    "one segment, all statuses": "?segment=enterprise&status=all",
    "sorted by customer": "?sort=customer&direction=asc",
    "page 20 of 100 rows": "?per_page=100&page=20",
    "a year, resolved": "?period=365&status=resolved",
}


def multiply(conn, times: int) -> None:
    """Copies of every finding, its history and episodes under new fingerprints: the page's
    tables at ``times`` the demo's size (the books stay as they are). Made once."""
    if conn.execute("select 1 from revleak.findings where fingerprint like '%:%' limit 1"
                    ).fetchone():
        return
    for table in ("findings", "finding_history", "finding_generations"):
        conn.execute(
            f"insert into revleak.{table} select (jsonb_populate_record(null::revleak.{table},"
            f" to_jsonb(t) || jsonb_build_object('fingerprint', t.fingerprint || ':' || k))).*"
            f" from revleak.{table} t, generate_series(1, %s) k"
            f" where t.fingerprint not like '%%:%%'", (times - 1,))
    conn.execute("analyze")
    conn.commit()


def history_dates(check: str, as_of: date, runs: int) -> list[date]:
    """The check's last ``runs`` as-of dates up to the demo's (quarterly: at most two)."""
    from revleak import periods
    from revleak.registry import CHECKS

    cadence = CHECKS[check].cadence
    if cadence == "quarterly":
        previous = periods.window_start(check, as_of) - timedelta(days=1)
        return [previous, as_of][-min(runs, 2):]
    step = timedelta(days=1 if cadence == "daily" else 7)
    return [as_of - k * step for k in range(runs - 1, -1, -1)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="large", choices=["small", "medium", "large"])
    p.add_argument("--repeat", type=int, default=7, help="warm requests per view (default 7)")
    p.add_argument("--history", type=int, default=4,
                   help="runs per check, its latest periods (default 4; quarterly at most 2)")
    p.add_argument("--multiply", type=int, default=1,
                   help="copy the findings this many times over, to measure the page at a "
                        "larger demo's number of findings when its books do not fit")
    p.add_argument("--books", type=Path, help="a demo folder made earlier (revleak demo-data)")
    p.add_argument("--skip-load", action="store_true",
                   help="the warehouse already holds the demo and its runs")
    args = p.parse_args()
    os.environ.setdefault("REVLEAK_HOME", str(HERE / "out" / f"page-{args.scale}"))

    from revleak import demo, loader, pipeline, reports, warehouse

    out = args.books or HERE / "out" / f"page-{args.scale}" / "books"
    if not (out / "manifest.json").exists():
        demo.generate(out, seed=7, scale=args.scale)
    manifest = json.loads((out / "manifest.json").read_text())
    setup = {}
    if not args.skip_load:
        with warehouse.connect() as conn:
            warehouse.migrate(conn)
            setup["load_seconds"], _ = timed(lambda: loader.load(conn, out))
            conn.execute("analyze")
            conn.commit()
        for check, run in manifest["runs"].items():
            for day in history_dates(check, date.fromisoformat(run["as_of"]), args.history):
                setup[f"{check}_{day}_seconds"], _ = timed(
                    lambda check=check, day=day: pipeline.run_check(check, day))
    if args.multiply > 1:
        with warehouse.connect() as conn:
            multiply(conn, args.multiply)
    with warehouse.connect() as conn:
        counts = dict(conn.execute(
            "select status, count(*) from revleak.findings group by 1").fetchall())
        history = conn.execute("select count(*) from revleak.finding_history").fetchone()[0]

    from fastapi.testclient import TestClient

    from revleak.config import CHECK_IDS
    from revleak.reports import page
    from revleak.ui import Reader, create_app

    app = create_app()
    app.dependency_overrides[app.state.authorized] = lambda: Reader("bench", CHECK_IDS)
    client = TestClient(app)
    cold, first = timed(lambda: client.get("/"))
    assert first.status_code == 200, first.text[:300]
    views = {}
    for name, query in VIEWS.items():
        after_run, again = [], []
        for _ in range(args.repeat):
            page._summaries.clear()  # as after a new run: ledger, trends, options read again
            took, response = timed(lambda query=query: client.get(f"/{query}"))
            assert response.status_code == 200, (name, response.text[:300])
            after_run.append(took)
            took, _ = timed(lambda query=query: client.get(f"/{query}"))
            again.append(took)
        views[name] = {"after_a_run_median_seconds": round(statistics.median(after_run), 3),
                       "after_a_run_worst_seconds": round(max(after_run), 3),
                       "again_median_seconds": round(statistics.median(again), 3),
                       "bytes": len(response.content)}
    rendered = {}
    for check, run in manifest["runs"].items():
        took, _ = timed(lambda check=check, run=run: reports.publish(
            check, date.fromisoformat(run["as_of"])))
        rendered[check] = round(took, 2)

    figures = {
        "scale": args.scale,
        "findings_multiplied_by": args.multiply,
        "open_findings": counts.get("open", 0),
        "resolved_findings": counts.get("resolved", 0),
        "history_rows": history,
        "setup": {k: round(v, 1) for k, v in setup.items()} or "reused",
        "first_request_seconds (imports, template compile)": round(cold, 2),
        "views": views,
        "slowest_view_after_a_run_median_seconds": max(
            v["after_a_run_median_seconds"] for v in views.values()),
        "slowest_view_again_median_seconds": max(
            v["again_median_seconds"] for v in views.values()),
        "report_render_seconds (HTML + CSV)": rendered,
        "peak_python_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }
    (HERE / "results").mkdir(exist_ok=True)
    name = args.scale + (f"_x{args.multiply}" if args.multiply > 1 else "")
    (HERE / "results" / f"page_speed_{name}.json").write_text(
        json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
