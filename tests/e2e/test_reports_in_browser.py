"""Every report type of the demo company in headless Chromium (Debian's chromium driven by
Playwright), opened from the report store as a file with the network cut off: the headline
figures equal the stored findings, nothing is fetched from anywhere, and the report prints
on A4 and Letter without running off the page. Screenshots are kept as artifacts
(tests/artifacts/report-<check>.png; docs/ holds the README's copies)."""

from __future__ import annotations

import csv
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from revleak import demo, loader, pipeline, reports

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
EVIL = "<script>window.owned = 1</script> Ltd"
FORMULA = "=SUM(1, 2) Formula Ltd"  # a CSV cell a spreadsheet would run as a formula
PRINTABLE_PX = {"A4": (210 - 24) / 25.4 * 96, "Letter": (215.9 - 24) / 25.4 * 96}  # 12 mm margins


def demo_with_history(warehouse_uri: str, tmp_path: Path, monkeypatch) -> dict:
    """The demo company (one customer renamed to a script tag, one with an unpaid invoice to a
    spreadsheet formula) run over many dates: booked vs billed daily for three weeks (two
    over-billings close on Sep 14), collections and funnel weekly for 13 weeks, the quarterly
    audits for two quarters; reports in a store of the test's own. Returns the manifest with
    the customers renamed (victim, formula)."""
    config = tmp_path / "revleak.yaml"
    config.write_text(f"reports: {{location: {tmp_path / 'reports'}}}\n")
    monkeypatch.setenv("REVLEAK_CONFIG", str(config))
    books = tmp_path / "demo"
    manifest = demo.generate(books, seed=7, scale="small")
    victim = next(leak["customer_id"] for leak in manifest["leaks"] if leak.get("customer_id"))
    formula = next(leak["customer_id"] for leak in manifest["leaks"] if leak.get("customer_id")
                   not in (None, victim) and leak["category"] == "unpaid")
    with open(books / "customers.csv", encoding="utf-8") as fh:
        customers = list(csv.DictReader(fh))
    for c in customers:
        c["name"] = {victim: EVIL, formula: FORMULA}.get(c["customer_id"], c["name"])
    with open(books / "customers.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(customers[0]))
        writer.writeheader()
        writer.writerows(customers)
    with psycopg.connect(warehouse_uri) as conn:
        loader.load(conn, books)
    runs = {check: date.fromisoformat(r["as_of"]) for check, r in manifest["runs"].items()}
    dates = {"booked_vs_billed_daily": [runs["booked_vs_billed_daily"] - timedelta(days=d)
                                        for d in range(20, -1, -1)],
             "recognized_vs_collected_quarterly": [date(2026, 6, 30), date(2026, 9, 30)],
             "pricing_drift_quarterly": [date(2026, 6, 30), date(2026, 9, 30)]}
    for check in ("billed_vs_collected_weekly", "funnel_leak_weekly"):
        dates[check] = [runs[check] - timedelta(weeks=w) for w in range(12, -1, -1)]
    for check, days in dates.items():
        for day in days:
            pipeline.run_check(check, day)
    for check, days in dates.items():
        reports.publish(check, days[-1])
    manifest["victim"], manifest["formula"] = victim, formula
    manifest["latest"] = {check: days[-1] for check, days in dates.items()}
    return manifest


def victim_reads_as_text(page, airflow_url: str, conn, manifest: dict) -> None:
    """The Revenue leakage page on a check holding the customer named with a script tag
    (sorted by customer, every row on one page): the name reads as text, its script never
    ran."""
    victim_check = conn.execute(
        "select check_id from revleak.findings where customer_id = %s and status = 'open'"
        " limit 1", (manifest["victim"],)).fetchone()[0]
    page.goto(f"{airflow_url}/revleak/?check={victim_check}&per_page=100&sort=customer")
    assert page.get_by_text(EVIL, exact=True).count() >= 1
    assert page.evaluate("window.owned") is None


@pytest.fixture
def demo_reports(warehouse_uri, tmp_path, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    manifest = demo_with_history(warehouse_uri, tmp_path, monkeypatch)
    return manifest, tmp_path / "reports", warehouse_uri


def stored_headline(conn, check: str, as_of: date) -> dict:
    """The headline of a run, computed here from the stored history."""
    count, gap, resolved = conn.execute(
        "select count(*) filter (where status = 'open' and entity_type <> 'portfolio'),"
        " sum(abs(gap_amount_base)) filter (where status = 'open' and entity_type <> 'portfolio'),"
        " count(*) filter (where status = 'resolved')"
        " from revleak.finding_history where check_id = %s and as_of = %s",
        (check, as_of)).fetchone()
    ledger_open = conn.execute(
        "select sum(abs(h.gap_amount_base)) from revleak.finding_history h"
        " where h.status = 'open' and h.entity_type <> 'portfolio'"
        " and h.as_of = (select max(r.as_of) from revleak.check_runs r where r.status ="
        " 'succeeded' and r.check_id = h.check_id and r.as_of <= %s)", (as_of,)).fetchone()[0]
    return {"open-count": count, "open-gap": gap or 0, "resolved-count": resolved,
            "ledger-open": ledger_open or 0}


def test_every_report_opens_offline_shows_the_stored_figures_and_prints(demo_reports):
    from playwright.sync_api import sync_playwright

    manifest, store, warehouse_uri = demo_reports
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw, psycopg.connect(warehouse_uri) as conn:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        fetched = []
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            "file://") else (fetched.append(route.request.url), route.abort()))
        for check, as_of in manifest["latest"].items():
            path = store / check / f"{check}_{as_of}.html"
            page.goto(path.as_uri())
            headline = stored_headline(conn, check, as_of)
            for element_id, expected in headline.items():
                shown = page.locator(f"#{element_id}").get_attribute("data-value")
                assert Decimal(shown) == Decimal(expected), (check, element_id)
            assert page.locator("#findings tbody tr[data-status]").count() == conn.execute(
                "select count(*) from revleak.finding_history where check_id = %s and as_of = %s",
                (check, as_of)).fetchone()[0]
            assert page.locator("svg.chart").count() >= 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 1200, check
            assert page.evaluate("window.owned") is None  # the script-tag customer is text
            page.screenshot(path=str(ARTIFACTS / f"report-{check}.png"), full_page=True)
            _check_specifics(page, conn, check, as_of)
            page.emulate_media(media="print")
            for paper, width in PRINTABLE_PX.items():
                page.set_viewport_size({"width": int(width), "height": 1000})
                overflow = page.evaluate("document.documentElement.scrollWidth") - int(width)
                assert overflow <= 1, f"{check} runs {overflow}px off a {paper} page"
                pdf = page.pdf(format=paper, margin={k: "12mm" for k in
                                                     ("top", "bottom", "left", "right")})
                assert pdf.startswith(b"%PDF")
            page.emulate_media(media="screen")
            page.set_viewport_size({"width": 1200, "height": 900})
        assert fetched == []
        browser.close()


def _check_specifics(page, conn, check: str, as_of: date) -> None:
    """Each report type's own headline figure against the stored metrics and findings."""

    def metric(name):
        return conn.execute("select value from revleak.metrics where check_id = %s and as_of = %s"
                            " and metric = %s", (check, as_of, name)).fetchone()[0]

    if check == "billed_vs_collected_weekly":
        assert Decimal(page.locator("#realization-rate").get_attribute("data-value")) \
            == metric("realization_rate")
        assert page.locator("#realization-weeks th.num").count() == 13
    elif check == "booked_vs_billed_daily":
        assert Decimal(page.locator("#billed-due-rate").get_attribute("data-value")) \
            == metric("realization_rate")
    elif check == "funnel_leak_weekly":
        zones = conn.execute("select count(*) from revleak.metrics where check_id = %s and"
                             " as_of = %s and metric like '%%_problem_pct'",
                             (check, as_of)).fetchone()[0]
        assert page.locator("#zone-table tbody tr").count() == zones == 5
        leaking = conn.execute("select count(*) from revleak.finding_history where check_id = %s"
                               " and as_of = %s and status = 'open' and entity_type = 'zone'",
                               (check, as_of)).fetchone()[0]
        assert page.locator("#zone-findings h3").count() == leaking
        assert page.locator("#zone-findings table.worst tbody tr").count() >= leaking
    elif check == "pricing_drift_quarterly":
        gap = conn.execute("select sum(abs(gap_amount_base)) from revleak.finding_history where"
                           " check_id = %s and as_of = %s and status = 'open'",
                           (check, as_of)).fetchone()[0]
        assert Decimal(page.locator("#annualized").get_attribute("data-value")) == 4 * gap
        drift = conn.execute("select count(*) from revleak.finding_history where check_id = %s"
                             " and as_of = %s and status = 'open'"
                             " and (evidence ->> 'subscription_drift')::boolean",
                             (check, as_of)).fetchone()[0]
        assert int(page.locator("#subscription-drift-count").get_attribute("data-value")) == drift
    elif check == "recognized_vs_collected_quarterly":
        amount = conn.execute("select count(*), coalesce(sum(abs(gap_amount_base)), 0) from"
                              " revleak.finding_history where check_id = %s and as_of = %s"
                              " and status = 'open' and category = 'recognized_not_collected'",
                              (check, as_of)).fetchone()
        rows = page.locator("#aging-table tbody tr")
        counts = [int(rows.nth(i).locator("td").nth(1).inner_text().replace(",", ""))
                  for i in range(rows.count())]
        assert sum(counts) == amount[0]
