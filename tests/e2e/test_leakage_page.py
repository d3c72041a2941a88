"""The "Revenue leakage" page inside the Airflow UI, in headless Chromium (Debian's chromium
driven by Playwright): anonymous visitors are refused; after logging in to Airflow the page
shows the demo's findings with owners, gaps and filters. The screenshot is kept as an
artifact (tests/artifacts/leakage-page.png)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import requests

from revleak import connections, demo, loader, pipeline
from tests.e2e.airflow_cluster import PASSWORD, RunningAirflow

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


@pytest.fixture
def airflow_ui(pg_server, warehouse_uri, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    books = tmp_path / "demo"
    manifest = demo.generate(books, seed=7, scale="small")
    with psycopg.connect(warehouse_uri) as conn:
        loader.load(conn, books)
    as_of = date.fromisoformat(manifest["runs"]["booked_vs_billed_daily"]["as_of"])
    for back in (6, 4, 2, 0):  # a few dates for the realization trend
        pipeline.run_check("booked_vs_billed_daily", as_of - timedelta(days=back))
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists airflow_ui with (force)")
        admin.execute("create database airflow_ui")
    socket = connections.parse(pg_server.get_uri(), "x").extra["host"]
    home = tmp_path / "airflow"
    home.mkdir()
    airflow = RunningAirflow(home, f"postgresql+psycopg2://postgres@/airflow_ui?host={socket}",
                             {"AIRFLOW_CONN_REVLEAK_WAREHOUSE": warehouse_uri},
                             components=("api-server",))
    airflow.start()
    try:
        yield airflow, warehouse_uri
    finally:
        airflow.stop()


def test_leakage_page_in_the_airflow_ui(airflow_ui):
    from playwright.sync_api import sync_playwright

    airflow, warehouse_uri = airflow_ui
    assert requests.get(f"{airflow.url}/revleak/", timeout=10).status_code in (401, 403)
    plugins = airflow.api("GET", "/plugins").json()["plugins"]
    views = [v for p in plugins if p["name"] == "revenue_leakage" for v in p["external_views"]]
    assert views and views[0]["href"] == "/revleak/" and views[0]["destination"] == "nav"
    with psycopg.connect(warehouse_uri) as conn:
        open_findings = conn.execute("select count(*) from revleak.findings"
                                     " where status = 'open'").fetchone()[0]
    assert open_findings
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{airflow.url}/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "login" not in url, timeout=30_000)
        # the page is linked from Airflow's navigation and served behind its login
        page.goto(f"{airflow.url}/revleak/")
        assert page.locator("h1").inner_text() == "Revenue leakage"
        assert page.locator("#findings tbody tr").count() == open_findings
        assert page.locator("#finding-count").inner_text() == str(open_findings)
        assert "renewal_miss" in page.locator("#findings").inner_text()
        assert page.locator("svg").count() >= 1  # the realization-rate trend
        with page.expect_download() as download:
            page.click("a.report")
        report = Path(download.value.path()).read_text().splitlines()
        assert report[0].startswith("fingerprint,check,category")
        assert sum(",open," in line for line in report[1:]) == open_findings
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "leakage-page.png"), full_page=True)
        # filters: one check, resolved only
        page.goto(f"{airflow.url}/revleak/?check=booked_vs_billed_daily&status=resolved")
        resolved = page.locator("#findings tbody tr").count()
        with psycopg.connect(warehouse_uri) as conn:
            assert resolved == conn.execute("select count(*) from revleak.findings"
                                             " where status = 'resolved'").fetchone()[0]
        browser.close()
