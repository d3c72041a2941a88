"""The "Revenue leakage" page inside the Airflow UI, in headless Chromium (Debian's chromium
driven by Playwright), on the demo company run over many dates: anonymous visitors are
refused; after logging in to Airflow the ledger and the findings equal the stored ones,
every filter changes every figure, the table sorts and pages in SQL, a customer named with a
script tag reads as text, evidence reads as a list, and a finding links to its report row.
The screenshot is kept as an artifact (tests/artifacts/leakage-page.png; docs/ holds the
README's copy)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import requests

from tests.e2e.airflow_cluster import PASSWORD, RunningAirflow
from tests.e2e.test_reports_in_browser import (
    ARTIFACTS,
    BROWSER_ARGS,
    CHROMIUM,
    demo_with_history,
    victim_reads_as_text,
)

pytestmark = pytest.mark.slow
SCOPE = "h.entity_type <> 'portfolio' and h.gap_amount_base is not null"


@pytest.fixture
def airflow_ui(pg_server, warehouse_uri, tmp_path, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    manifest = demo_with_history(warehouse_uri, tmp_path, monkeypatch)
    with RunningAirflow(pg_server, tmp_path / "airflow", "airflow_ui",
                        {"AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri},
                        components=("api-server",)) as airflow:
        yield airflow, warehouse_uri, manifest


def open_leakage(conn, owner: str | None = None) -> Decimal:
    """Open gaps at each check's latest run (an owner's only), computed here."""
    return conn.execute(
        "select coalesce(sum(abs(h.gap_amount_base)), 0) from revleak.finding_history h"
        " join revleak.findings f using (fingerprint)"
        f" where h.status = 'open' and {SCOPE} and (%s::text is null or f.owner ->> 'name' = %s)"
        " and h.as_of = (select max(r.as_of) from revleak.check_runs r"
        "                where r.check_id = h.check_id and r.status = 'succeeded')",
        (owner, owner)).fetchone()[0]


def shown(page, element_id: str) -> Decimal:
    return Decimal(page.locator(f"#{element_id}").get_attribute("data-value"))


def rows(page) -> list[str]:
    return page.locator("#findings tbody tr[data-fingerprint]").evaluate_all(
        "rs => rs.map(r => r.dataset.fingerprint)")


def test_leakage_page_in_the_airflow_ui(airflow_ui):
    from playwright.sync_api import sync_playwright

    airflow, warehouse_uri, manifest = airflow_ui
    report = f"/revleak/reports/booked_vs_billed_daily/booked_vs_billed_daily_" \
             f"{manifest['latest']['booked_vs_billed_daily']}.html"
    for path in ("/revleak/", report):
        assert requests.get(f"{airflow.url}{path}", timeout=10).status_code in (401, 403)
    plugins = airflow.api("GET", "/plugins").json()["plugins"]
    views = [v for p in plugins if p["name"] == "revenue_leakage" for v in p["external_views"]]
    assert views and views[0]["href"] == "/revleak/" and views[0]["destination"] == "nav"
    conn = psycopg.connect(warehouse_uri)
    open_count = conn.execute("select count(*) from revleak.findings where status = 'open'")\
        .fetchone()[0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(f"{airflow.url}/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "login" not in url, timeout=30_000)

        # the page is linked from Airflow's navigation and served behind its login
        page.goto(f"{airflow.url}/revleak/")
        assert page.locator("h1").inner_text() == "Revenue leakage"
        assert shown(page, "ledger-open") == open_leakage(conn)
        assert shown(page, "finding-count") == open_count > 20
        assert len(rows(page)) == min(open_count, 50)
        assert page.locator("#trends figure svg.chart").count() == 5  # one per check
        assert page.evaluate("window.owned") is None
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "leakage-page.png"), full_page=True)

        # a finding's evidence reads as a list with the rules in force
        first = page.locator("#findings tbody tr").first
        first.locator("details.evidence summary").click()
        assert "rules in force" in first.locator("details.evidence dl").inner_text()

        # sorted by customer name, in SQL, over every open finding
        page.click("#findings thead a:has-text('Customer')")
        expected = [r[0] for r in conn.execute(
            "select f.fingerprint from revleak.findings f left join revleak.customers c"
            " using (customer_id) where f.status = 'open'"
            " order by c.name asc nulls last, f.fingerprint limit 50")]
        assert rows(page) == expected

        # paged in SQL: the second page of ten by loss is the SQL's rows 11-20
        page.goto(f"{airflow.url}/revleak/?per_page=10")
        assert page.locator("#page-info").inner_text().startswith(f"rows 1–10 of {open_count:,}")
        page.click("#next")
        expected = [r[0] for r in conn.execute(
            "select fingerprint from revleak.findings where status = 'open'"
            " order by time_weighted_loss desc nulls last, fingerprint limit 10 offset 10")]
        assert rows(page) == expected

        # one owner: every figure narrows to that owner's findings
        page.goto(f"{airflow.url}/revleak/")
        with page.expect_navigation():
            page.select_option("select[name=owner]", "Finance lead")
        assert shown(page, "ledger-open") == open_leakage(conn, "Finance lead") > 0
        assert shown(page, "finding-count") == conn.execute(
            "select count(*) from revleak.findings where status = 'open'"
            " and owner ->> 'name' = 'Finance lead'").fetchone()[0]
        charts = page.locator("#trends figure").evaluate_all("fs => fs.map(f => f.dataset.check)")
        assert set(charts) == {"billed_vs_collected_weekly", "pricing_drift_quarterly"}
        owners = page.locator("#findings > tbody > tr > td:nth-child(5)").all_inner_texts()
        assert owners and all(o.startswith("Finance lead") for o in owners)

        # the customer named with a script tag reads as text
        victim_reads_as_text(page, airflow.url, conn, manifest)

        # a finding links to its row in the report that holds it, served by the plugin
        link = page.locator("a.finding-report").first
        fingerprint = link.get_attribute("href").split("#f-")[1]
        link.click()
        page.wait_for_load_state()
        assert page.locator(f"#f-{fingerprint}").count() == 1
        assert page.evaluate("window.owned") is None

        # the latest report's CSV
        page.goto(f"{airflow.url}/revleak/")
        with page.expect_download() as download:
            page.locator("a.report-csv").first.click()
        lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("fingerprint,check,category")
        browser.close()
    conn.close()
