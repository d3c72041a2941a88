"""The "Revenue leakage" page: open findings by check, owner and age with the gap, the
time-weighted loss and the ticket of each, the realization-rate trend, filters by check,
owner and status. A FastAPI app the Airflow plugin mounts under /revleak; it reads the
warehouse through the ``revleak_warehouse`` connection and uses Airflow's authentication."""

from __future__ import annotations

import csv
import io
from datetime import date

import jinja2
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, StreamingResponse

from revleak import findings, warehouse

_page = jinja2.Environment(loader=jinja2.PackageLoader("revleak", "templates"),
                           autoescape=True).get_template("leakage_page.html.j2")


def _user():
    """Airflow's own authentication: the UI's session cookie or a bearer token."""
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def ticket_url(key: str | None) -> str | None:
    """A link into the configured ticket system for a ticket key."""
    if not key:
        return None
    from revleak.tickets.relay import destination

    dest = destination()
    if dest is None:
        return None
    if dest.provider == "jira":
        return f"{dest.base_url}/browse/{key}"
    if dest.provider == "github":
        return f"https://github.com/{dest.extra.get('repo')}/issues/{key}"
    if dest.provider == "servicenow":
        table = dest.extra.get("table", "incident")
        return f"{dest.base_url}/nav_to.do?uri={table}.do?sys_id={key}"
    return None


def realization_chart(points: list[tuple[date, float]]) -> str:
    """The realization-rate trend as an inline SVG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.2), dpi=100)
    if points:
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", color="#0b6e4f")
    ax.axhline(95, color="#c0392b", linewidth=1, linestyle="--", label="95% alarm")
    ax.set_ylabel("billed / due, %")
    ax.set_title("Realization rate (booked vs billed)", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg"):]


def create_app() -> FastAPI:
    app = FastAPI(title="revleak: revenue leakage", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def leakage(user=Depends(_user()), check: str | None = Query(None),  # noqa: B008
                owner: str | None = Query(None), status: str = Query("open")):
        with warehouse.connect() as conn, conn.transaction():
            rows = [f for f in findings.query(conn, check or None, None, status)
                    if not owner or f["owner"].get("name") == owner]
            checks = [r[0] for r in conn.execute(
                "select distinct check_id from revleak.findings order by 1")]
            owners = [r[0] for r in conn.execute(
                "select distinct owner->>'name' from revleak.findings order by 1")]
            trend = conn.execute(
                "select as_of, value from revleak.metrics where metric = 'realization_rate'"
                " and check_id = 'booked_vs_billed_daily' order by as_of desc limit 60"
            ).fetchall()[::-1]
            runs = conn.execute(
                "select check_id, max(as_of) from revleak.check_runs where status = 'succeeded'"
                " group by 1 order by 1").fetchall()
        for f in rows:
            f["ticket_url"] = ticket_url(f["ticket_key"])
        return _page.render(
            rows=rows, checks=checks, owners=owners, runs=runs, check=check, owner=owner,
            status=status, chart=realization_chart([(d, float(v)) for d, v in trend]),
            total_gap=sum(float(f["gap_amount_base"] or 0) for f in rows
                          if f["entity_type"] != "portfolio"),
            total_loss=sum(float(f["time_weighted_loss"] or 0) for f in rows
                           if f["entity_type"] != "portfolio"),
            user=getattr(user, "get_name", lambda: "")())

    @app.get("/reports/{check_id}.csv")
    def latest_report(check_id: str, user=Depends(_user())):  # noqa: B008
        """The latest run of a check as a CSV report: every finding that date saw."""
        with warehouse.connect() as conn:
            as_of = findings.latest_as_of(conn, check_id)
        if as_of is None:
            raise HTTPException(404, f"no successful run of {check_id}")
        return StreamingResponse(
            _csv_rows(check_id, as_of), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{check_id}_{as_of}.csv"'})

    return app


REPORT_COLUMNS = ("fingerprint", "check", "category", "entity_type", "entity_id", "customer_id",
                  "as_of", "expected_amount", "actual_amount", "gap_amount", "currency",
                  "gap_amount_base", "gap_pct", "days_outstanding", "time_weighted_loss",
                  "status", "due_date", "ticket_key")


def _csv_rows(check_id: str, as_of: date):
    """Stream the report a row at a time (memory stays flat)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*REPORT_COLUMNS, "owner"])
    with warehouse.connect() as conn, conn.transaction():
        for f in findings.query(conn, check_id, as_of, "all"):
            writer.writerow([*(f[c] for c in REPORT_COLUMNS), f["owner"].get("name")])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
