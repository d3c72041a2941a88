"""Who may see the money: the Revenue leakage page and its reports behind Airflow's own
authorization, in a running Airflow and headless Chromium (Debian's chromium driven by
Playwright), on the demo company run over many dates.

Airflow runs the simple auth manager in multi-team mode: the DAGs come from two DAG bundles
over two folders, `finance` (billed_vs_collected_weekly's DAG file alone, team finance) and
`revops` (the other four, team revops). Users: `admin` (Admin: every DAG), `fiona` (Viewer in
team finance: that one DAG) and `victor` (Viewer in no team: none of them). Airflow's own
REST API confirms what each may read; then each logs in, and the page, its filters, the
ledger, the trends and the reports show exactly the checks Airflow lets them read —
figures compared with the warehouse, computed here — while no figure of another check
reaches them through any route. Every response carries the content security policy and
nosniff; Chromium reports no policy violation; unknown filter values are a 400 naming the
values the page takes; a CSV cell that would run as a spreadsheet formula is defused."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
import requests

from revleak.config import CHECK_IDS
from revleak.reports.charts import CHECK_TITLES
from tests.e2e.airflow_cluster import PASSWORD, ROOT, RunningAirflow
from tests.e2e.test_reports_in_browser import (
    BROWSER_ARGS,
    CHROMIUM,
    EVIL,
    FORMULA,
    demo_with_history,
    victim_reads_as_text,
)

pytestmark = pytest.mark.slow
ONE = "billed_vs_collected_weekly"  # team finance's only DAG
OTHERS = tuple(c for c in CHECK_IDS if c != ONE)
USERS = {"admin": "admin", "fiona": "viewer:finance", "victor": "viewer"}
SCOPE = "h.entity_type <> 'portfolio' and h.gap_amount_base is not null"
# Records every content-security-policy violation a document reports.
CSP_PROBE = ("window.violations = [];"
             "document.addEventListener('securitypolicyviolation', e =>"
             " window.violations.push(e.violatedDirective + ' ' + e.blockedURI));")


@pytest.fixture
def teams_airflow(pg_server, warehouse_uri, tmp_path, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    manifest = demo_with_history(warehouse_uri, tmp_path, monkeypatch)
    bundles = []
    for team, checks in (("finance", (ONE,)), ("revops", OTHERS)):
        folder = tmp_path / "bundles" / team
        folder.mkdir(parents=True)
        for check in checks:
            shutil.copy(ROOT / "dags" / f"{check}.py", folder)
        bundles.append({"name": team, "team_name": team, "kwargs": {"path": str(folder)},
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"})
    with RunningAirflow(
            pg_server, tmp_path / "airflow", "airflow_teams",
            {"AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri, "AIRFLOW__CORE__MULTI_TEAM": "True",
             "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)},
            components=("api-server",), users=USERS) as airflow:
        yield airflow, warehouse_uri, manifest


def open_leakage(conn, checks) -> Decimal:
    """Open gaps at each of the checks' latest run, computed here."""
    return conn.execute(
        "select coalesce(sum(abs(h.gap_amount_base)), 0) from revleak.finding_history h"
        f" where h.status = 'open' and {SCOPE} and h.check_id = any(%s)"
        " and h.as_of = (select max(r.as_of) from revleak.check_runs r"
        "                where r.check_id = h.check_id and r.status = 'succeeded')",
        (list(checks),)).fetchone()[0]


def column(conn, sql: str, *params) -> list:
    return [r[0] for r in conn.execute(sql, params)]


def logged_in(browser, airflow, user: str):
    """A browser page of its own, logged in to Airflow as the user, recording CSP
    violations (the documents' events and Chromium's console)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(CSP_PROBE)
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda m: page.console_messages.append(m.text))
    page.goto(f"{airflow.url}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "login" not in url, timeout=30_000)
    return page


def no_violation(page) -> None:
    assert page.evaluate("window.violations") == [], page.url
    assert not [m for m in page.console_messages if "Content Security Policy" in m], page.url


def guarded(response) -> None:
    """Every response: the content security policy (inline script only by hash) and nosniff."""
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"].startswith("'sha256-") and "unsafe" not in \
        directives["script-src"] + directives["style-src"]
    assert response.headers["x-content-type-options"] == "nosniff"


def options(page, name: str) -> list[str]:
    return page.locator(f"select[name={name}] option").evaluate_all(
        "os => os.map(o => o.value).filter(v => v)")


def shown(page, element_id: str) -> Decimal:
    return Decimal(page.locator(f"#{element_id}").get_attribute("data-value"))


def figures(page, selector: str, attribute: str) -> list[str]:
    return page.locator(selector).evaluate_all(f"es => es.map(e => e.dataset.{attribute})")


def test_each_reader_sees_exactly_the_checks_airflow_lets_them_read(teams_airflow):
    from playwright.sync_api import sync_playwright

    airflow, warehouse_uri, manifest = teams_airflow
    latest = {c: str(d) for c, d in manifest["latest"].items()}
    report = {c: f"{airflow.url}/revleak/reports/{c}/{c}_{latest.get(c, latest[ONE])}"
              for c in CHECK_IDS}
    conn = psycopg.connect(warehouse_uri)

    # Airflow's own API says who may read which DAG: the setup is Airflow's, not ours
    readable = {}
    for user in USERS:
        token = requests.post(f"{airflow.url}/auth/token", timeout=10, json={
            "username": user, "password": PASSWORD}).json()["access_token"]
        dags = requests.get(f"{airflow.url}/api/v2/dags", timeout=10, headers={
            "Authorization": f"Bearer {token}"}).json()["dags"]
        readable[user] = sorted(d["dag_id"] for d in dags)
    assert readable == {"admin": sorted(CHECK_IDS), "fiona": [ONE], "victor": []}

    # a visitor who is not logged in gets nothing, still with the headers
    anonymous = requests.get(f"{airflow.url}/revleak/", timeout=10)
    assert anonymous.status_code == 401
    guarded(anonymous)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        _admin_sees_every_check(logged_in(browser, airflow, "admin"), airflow, conn, report,
                                manifest)
        _fiona_sees_one_check(logged_in(browser, airflow, "fiona"), airflow, conn, report,
                              latest)
        _victor_sees_none(logged_in(browser, airflow, "victor"), airflow, conn, report)
        browser.close()
    conn.close()


def _admin_sees_every_check(page, airflow, conn, report, manifest) -> None:
    response = page.goto(f"{airflow.url}/revleak/")
    assert response.status == 200
    guarded(response)
    assert shown(page, "ledger-open") == open_leakage(conn, CHECK_IDS) > 0
    assert shown(page, "finding-count") == conn.execute(
        "select count(*) from revleak.findings where status = 'open'").fetchone()[0]
    assert options(page, "check") == column(
        conn, "select distinct check_id from revleak.findings order by 1")
    assert sorted(figures(page, "#trends figure", "check")) == sorted(manifest["latest"])
    # choosing a filter applies it (the hashed script runs); the customer named with a
    # script tag reads as text
    with page.expect_navigation():
        page.select_option("select[name=check]", ONE)
    assert shown(page, "ledger-open") == open_leakage(conn, [ONE])
    victim_reads_as_text(page, airflow.url, conn, manifest)
    no_violation(page)

    # the stored report, charts and all, satisfies the policy; the hostile name is text
    response = page.goto(f"{report[ONE]}.html")
    guarded(response)
    assert page.locator("svg.chart").count() >= 1
    assert page.get_by_text(EVIL, exact=True).count() >= 1
    assert page.evaluate("window.owned") is None
    no_violation(page)

    # the CSV: the formula-named customer's cell is text, not a formula
    response = page.request.get(f"{report[ONE]}.csv")
    guarded(response)
    rows = list(csv.DictReader(io.StringIO(response.text())))
    names = {r["customer_name"] for r in rows if r["customer_id"] == manifest["formula"]}
    assert names == {"'" + FORMULA}
    assert rows and not [v for r in rows for v in r.values() if v and v[0] in "=+-@\t\r"
                         and not re.fullmatch(r"-\d+(\.\d+)?", v)]

    # a value the page does not take is a 400: one sentence naming the values it takes
    offered = {name: column(conn, f"select distinct {sql} from revleak.findings f left join"
                                  " revleak.customers c using (customer_id)"
                                  f" where {where} order by 1")
               for name, sql, where in (
                   ("category", "f.category", "true"), ("owner", "f.owner ->> 'name'", "true"),
                   ("segment", "coalesce(c.segment, 'no segment')", "f.customer_id is not null"))}
    takes = {"check": CHECK_IDS, **offered, "status": ["open", "resolved", "all"],
             "sort": ["loss", "customer"], "direction": ["desc", "asc"],
             "period": ["7", "30", "90", "365"], "page": ["whole number"],
             "per_page": ["10", "25", "50", "100"]}
    for name, allowed in takes.items():
        refused = page.request.get(f"{airflow.url}/revleak/?{urlencode({name: 'nope'})}")
        assert refused.status == 400, name
        guarded(refused)
        sentence = refused.text()
        assert sentence.count("\n") == 0 and sentence.endswith("."), sentence
        assert all(a in sentence for a in allowed) and "'nope'" in sentence, sentence
    for odd in ("period=90.0", "page=0", "per_page=7", "colour=red", "status=open&status=all"):
        assert page.request.get(f"{airflow.url}/revleak/?{odd}").status == 400, odd


def _fiona_sees_one_check(page, airflow, conn, report, latest) -> None:
    response = page.goto(f"{airflow.url}/revleak/")
    assert response.status == 200
    # every figure narrowed to her one check
    assert shown(page, "ledger-open") == open_leakage(conn, [ONE]) > 0
    assert shown(page, "finding-count") == conn.execute(
        "select count(*) from revleak.findings where status = 'open' and check_id = %s",
        (ONE,)).fetchone()[0]
    assert options(page, "check") == [ONE]
    for name, sql in (("category", "f.category"), ("owner", "f.owner ->> 'name'"),
                      ("segment", "coalesce(c.segment, 'no segment')")):
        assert options(page, name) == column(
            conn, f"select distinct {sql} from revleak.findings f left join revleak.customers"
                  " c using (customer_id) where f.check_id = %s"
                  + (" and f.customer_id is not null" if name == "segment" else "")
                  + " order by 1", ONE), name
    assert figures(page, "#trends figure", "check") == [ONE]
    assert figures(page, "#ledger-by-check tbody tr", "label") == [ONE]
    assert figures(page, "a.report", "check") == [ONE]
    assert set(figures(page, "#findings tbody tr[data-fingerprint]", "fingerprint")) <= set(
        column(conn, "select fingerprint from revleak.findings where check_id = %s", ONE))
    # choosing a filter applies it (the page's hashed script runs under the policy)
    with page.expect_navigation():
        page.select_option("select[name=status]", "all")
    assert shown(page, "finding-count") == conn.execute(
        "select count(*) from revleak.findings where check_id = %s", (ONE,)).fetchone()[0]
    no_violation(page)

    # her check's report: its ledger narrowed to her check, computed here
    response = page.goto(f"{report[ONE]}.html")
    assert response.status == 200
    guarded(response)
    assert shown(page, "ledger-open") == conn.execute(
        "select coalesce(sum(abs(h.gap_amount_base)), 0) from revleak.finding_history h"
        f" where h.status = 'open' and {SCOPE} and h.check_id = %s and h.as_of = %s",
        (ONE, latest[ONE])).fetchone()[0] > 0
    assert figures(page, "#ledger-by-check tbody tr", "label") == [ONE]
    no_violation(page)

    # every other check: 403, on the page's filter, its reports and its CSVs
    bodies = [page.request.get(f"{airflow.url}/revleak/{q}").text() for q in (
        "", "?status=all&period=365&per_page=100", "?status=resolved&period=365&per_page=100",
        "?sort=gap&direction=asc&per_page=100")]
    bodies += [page.request.get(f"{report[ONE]}.{kind}").text() for kind in ("html", "csv")]
    refusals = []
    for check in OTHERS:
        for url in (f"{report[check]}.html", f"{report[check]}.csv",
                    f"{airflow.url}/revleak/?check={check}"):
            refused = page.request.get(url)
            assert refused.status == 403, url
            guarded(refused)
            assert f"no read access to the DAG {check}" in refused.text()
            refusals.append(refused.text())
    # an owner only the other checks have is not offered to her
    other_owner = column(conn, "select owner ->> 'name' from revleak.findings where"
                               " owner ->> 'name' not in (select owner ->> 'name' from"
                               " revleak.findings where check_id = %s) limit 1", ONE)
    if other_owner:
        refused = page.request.get(f"{airflow.url}/revleak/?{urlencode({'owner': other_owner[0]})}")
        assert refused.status == 400
        refusals.append(refused.text().replace(repr(other_owner[0]), ""))
    no_leak(conn, bodies, refusals)


def no_leak(conn, bodies: list[str], refusals: list[str]) -> None:
    """Nothing of another check in anything she received: no finding, no total; not even its
    name, but in a refusal naming the check she asked for."""
    fingerprints = column(conn, "select fingerprint from revleak.findings where check_id <> %s",
                          ONE)
    totals = [t for t in (open_leakage(conn, [c]) for c in OTHERS) if t]
    assert fingerprints and totals
    for text in bodies + refusals:
        assert not [f for f in fingerprints if f in text]
        assert not [t for t in totals if str(t) in text or f"{t:,.2f}" in text]
    for text in bodies:
        assert not [c for c in OTHERS if c in text or CHECK_TITLES[c] in text]


def _victor_sees_none(page, airflow, conn, report) -> None:
    response = page.goto(f"{airflow.url}/revleak/")
    assert response.status == 403
    guarded(response)
    sentence = page.locator("body").inner_text().strip()
    assert sentence.startswith("Airflow gives victor read access to none of revleak's DAGs")
    assert sentence.count(". ") == 0 and sentence.endswith(".")
    for url in (f"{report[ONE]}.html", f"{report[ONE]}.csv", f"{airflow.url}/revleak/?check={ONE}",
                f"{airflow.url}/revleak/reports/{ONE}/nothing.html"):
        refused = page.request.get(url)
        assert refused.status == 403, url
        guarded(refused)
        assert refused.text() == sentence
    fingerprints = column(conn, "select fingerprint from revleak.findings")
    assert not [f for f in fingerprints if f in sentence]
