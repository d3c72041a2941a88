"""The "Revenue leakage" page: the leakage ledger (found vs recovered), a trend per check,
and the findings — sorted and paged in SQL, with customer names, readable evidence and links
to each finding's ticket and report — narrowed by check, category, owner, segment, status
and period; plus the report store, served by the same app. A FastAPI app the Airflow plugin
mounts under /revleak; it reads the warehouse through the ``revleak_warehouse`` connection
and uses Airflow's authentication."""

from __future__ import annotations

import re
from datetime import date

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from revleak import reports, warehouse
from revleak.config import CHECK_IDS, load_config
from revleak.errors import RevleakError
from revleak.reports import page, render

REPORT_FILE = re.compile(r"(?P<check>[a-z_]+)_(?P<as_of>\d{4}-\d{2}-\d{2})\.(?P<kind>html|csv)")


def _user():
    """Airflow's own authentication: the UI's session cookie or a bearer token."""
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def create_app() -> FastAPI:
    app = FastAPI(title="revleak: revenue leakage", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def leakage(user=Depends(_user()),  # noqa: B008
                check: str | None = Query(None), category: str | None = Query(None),
                owner: str | None = Query(None), segment: str | None = Query(None),
                status: str = Query("open"), period: int = Query(90),
                sort: str = Query("loss"), direction: str = Query("desc"),
                page_no: int = Query(1, alias="page"), per_page: int = Query(50)):
        config = load_config()
        view = page.View.parse(check, category, owner, segment, status, period, sort,
                               direction, page_no, per_page)
        with warehouse.connect() as conn, conn.transaction():
            context = page.view_data(conn, view, config)
        template = render.environment(config).get_template("leakage_page.html.j2")
        return template.render(**context, ticket_url=render.ticket_linker(),
                               user=getattr(user, "get_name", lambda: "")())

    @app.get("/reports/{check_id}/{name}")
    def report(check_id: str, name: str, user=Depends(_user())):  # noqa: B008
        """A check run's report (HTML) or its findings (CSV) from the report store."""
        found = REPORT_FILE.fullmatch(name)
        if check_id not in CHECK_IDS or not found or found["check"] != check_id:
            raise HTTPException(404, "no such report: reports are named "
                                     "<check>/<check>_<YYYY-MM-DD>.html or .csv")
        try:
            as_of = date.fromisoformat(found["as_of"])
            body = reports.stored_or_rendered(check_id, as_of, found["kind"])
        except (ValueError, RevleakError) as e:
            raise HTTPException(404, str(e)) from None
        if found["kind"] == "csv":
            return Response(body, media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="{name}"'})
        return Response(body, media_type="text/html; charset=utf-8")

    return app
