"""The "Revenue leakage" page: the leakage ledger (found vs recovered), a trend per check,
and the findings — sorted and paged in SQL, with customer names, readable evidence and links
to each finding's ticket and report — narrowed by check, category, owner, segment, status
and period; plus the report store, served by the same app. A FastAPI app the Airflow plugin
mounts under /revleak; it reads the warehouse through the ``revleak_warehouse`` connection.

Airflow decides who sees what: every route needs Airflow's login, and a reader sees the
findings of the checks whose DAG Airflow's auth manager lets them read — the page's every
figure, its filters and the reports — and nothing of the others. Every response carries a
content security policy its own styles, charts and script satisfy."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from revleak import reports, warehouse
from revleak.config import CHECK_IDS, load_config
from revleak.errors import RevleakError
from revleak.reports import charts, page, render

REPORT_FILE = re.compile(r"(?P<check>[a-z_]+)_(?P<as_of>\d{4}-\d{2}-\d{2})\.(?P<kind>html|csv)")
# The page's and the reports' own inline styles and script, allowed by their hashes.
INLINE = ("report_style.html.j2", "leakage_page_style.html.j2", "leakage_page_script.html.j2")


@dataclass(frozen=True)
class Reader:
    """Who reads, and the checks whose findings they may see."""

    name: str
    checks: tuple[str, ...]

    def refusal(self, check: str | None = None) -> str:
        if check:
            return (f"Airflow gives {self.name} no read access to the DAG {check}, whose "
                    "findings this shows; ask an Airflow admin for it.")
        return (f"Airflow gives {self.name} read access to none of revleak's DAGs "
                f"({', '.join(CHECK_IDS)}), so there are no findings to show; ask an Airflow "
                "admin for read access to the DAGs of the checks you need.")


def reader(user, auth_manager) -> Reader:
    """The checks a user may see: those whose DAG (named as the check) the auth manager lets
    them read — the simple auth manager's roles and teams, FAB's or Keycloak's permissions."""
    dags = auth_manager.get_authorized_dag_ids(user=user, method="GET")
    return Reader(user.get_name(), tuple(c for c in CHECK_IDS if c in dags))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def security_headers() -> dict[str, str]:
    """Every response's headers: a content security policy allowing only the page's and the
    reports' own inline styles and script (by hash) — and matplotlib's chart style — with no
    other source of anything, and no content-type sniffing."""
    env = render.environment(load_config())
    inline: dict[str, list[str]] = {"style": [], "script": []}
    for name in INLINE:
        for tag, body in re.findall(r"<(style|script)>(.*?)</\1>", env.get_template(name).render(),
                                    re.S):
            inline[tag].append(_sha256(body))
    chart = charts.category_bars("csp", "csp", (("csp", Decimal(1)),), "USD")
    inline["style"] += [_sha256(s) for s in re.findall(r"<style[^>]*>(.*?)</style>", chart, re.S)]
    policy = {
        "default-src": "'none'", "script-src": " ".join(inline["script"]),
        "style-src": " ".join(inline["style"]),
        "style-src-attr": "'unsafe-inline'",  # colour swatches, matplotlib's SVG attributes
        "img-src": "'self' data:", "form-action": "'self'", "base-uri": "'none'",
        "frame-ancestors": "'self'"}  # Airflow's UI shows the page in a frame of its own
    return {"Content-Security-Policy": "; ".join(f"{k} {v}" for k, v in policy.items()),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def create_app() -> FastAPI:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    def authorized(user=Depends(get_user)) -> Reader:  # noqa: B008
        """Every route's dependency: Airflow's login (session cookie or bearer token), then
        its auth manager's answer; 403 for a reader of none of the checks."""
        who = reader(user, get_auth_manager())
        if not who.checks:
            raise HTTPException(403, who.refusal())
        return who

    app = FastAPI(title="revleak: revenue leakage", docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[Depends(authorized)])
    app.state.authorized = authorized  # what a test that stubs Airflow's login replaces

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(security_headers())
        return response

    @app.exception_handler(StarletteHTTPException)
    async def sentence(request: Request, e: StarletteHTTPException) -> Response:
        """A refusal as the one sentence it is."""
        return PlainTextResponse(str(e.detail), e.status_code, headers=e.headers)

    @app.get("/", response_class=HTMLResponse)
    def leakage(request: Request, who: Reader = Depends(authorized)):  # noqa: B008
        check = request.query_params.get("check")
        if check in CHECK_IDS and check not in who.checks:
            raise HTTPException(403, who.refusal(check))
        config = load_config()
        with warehouse.connect() as conn, conn.transaction():
            try:
                view = page.View.parse(request.query_params.multi_items(), who.checks,
                                       page.options(conn, who.checks))
            except page.Refused as e:
                raise HTTPException(400, f"{e}.") from None
            context = page.view_data(conn, view, config)
        template = render.environment(config).get_template("leakage_page.html.j2")
        return template.render(**context, ticket_url=render.ticket_linker(), user=who.name)

    @app.get("/reports/{check_id}/{name}")
    def report(check_id: str, name: str, who: Reader = Depends(authorized)):  # noqa: B008
        """A check run's report (HTML) or its findings (CSV) from the report store; for a
        reader who may not see every check, the report's ledger covers their checks only."""
        found = REPORT_FILE.fullmatch(name)
        if check_id not in CHECK_IDS or not found or found["check"] != check_id:
            raise HTTPException(404, "no such report: reports are named "
                                     "<check>/<check>_<YYYY-MM-DD>.html or .csv")
        if check_id not in who.checks:
            raise HTTPException(403, who.refusal(check_id))
        try:
            as_of = date.fromisoformat(found["as_of"])
            body = (reports.stored_or_rendered(check_id, as_of, found["kind"])
                    if found["kind"] == "csv" or who.checks == CHECK_IDS
                    else _narrowed(check_id, as_of, who.checks))
        except (ValueError, RevleakError) as e:
            raise HTTPException(404, str(e)) from None
        if found["kind"] == "csv":
            return Response(body, media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="{name}"'})
        return Response(body, media_type="text/html; charset=utf-8")

    return app


def _narrowed(check: str, as_of: date, checks: tuple[str, ...]) -> bytes:
    """A run's report rendered from stored findings with the ledger of ``checks`` only."""
    config = load_config()
    with warehouse.connect() as conn, conn.transaction():
        return "".join(render.html(conn, check, as_of, config, checks)).encode()
