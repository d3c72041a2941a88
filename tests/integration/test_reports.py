"""Reports from stored findings on a real PostgreSQL: the weekly collections report of
hand-built books against hand-computed figures (aging, realization, top gaps, what changed,
the ledger); every report type of the demo rendered twice gives the same bytes, offline;
values are escaped; tickets link to the report row of their finding; the report store takes
a folder or a URL; `revleak report` prints what it wrote."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from revleak import cli, pipeline, reports
from revleak.config import load_config
from revleak.reports import storage
from tests.books import Books
from tests.integration.test_ledger import demo_history  # noqa: F401  (a shared fixture)

CHECK = "billed_vs_collected_weekly"
PREVIOUS, SUNDAY = date(2026, 9, 13), date(2026, 9, 20)
EVIL = "<script>alert('owned')</script> & Co"
REPORT_URL = "https://reports.example.com/revleak"
REPORT_TYPES = ("booked_vs_billed_daily", "billed_vs_collected_weekly", "funnel_leak_weekly",
                "recognized_vs_collected_quarterly", "pricing_drift_quarterly")


def element(html: str, element_id: str) -> str:
    """The markup of the element with this id, nested elements of its kind included."""
    start = html.rindex("<", 0, html.index(f'id="{element_id}"'))
    tag = re.match(r"<(\w+)", html[start:]).group(1)
    depth = 0
    for m in re.finditer(rf"<(/?){tag}[\s>]", html[start:]):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            return html[start:start + m.end()]
    raise AssertionError(f"#{element_id} is not closed")


def value(html: str, element_id: str, attribute: str = "data-value") -> Decimal:
    return Decimal(re.search(rf'id="{element_id}" {attribute}="([^"]*)"', html).group(1))


@pytest.fixture
def collections(conn, tmp_path, monkeypatch):
    """Invoices of one customer each, two Sunday runs (Sep 13, Sep 20):

    A due Sep 1, 1,000: 300 paid Sep 15 → shrunk to 700 (19 days)   — customer EVIL
    B due Sep 5,   500: paid in full Sep 16 → resolved on Sep 20
    C due Sep 15,  800: unpaid → new on Sep 20 (5 days)
    D due Jul 1, 2,000: unpaid (81 days, 61–90)
    E due May 1,   400: unpaid (142 days, 90+)
    H due Sep 1, 1,000: 400 + 300 paid Sep 5–6; the 300 refunded after the first run → grown
      from 300 to 600 (19 days)
    F due Oct 15,  600: issued Sep 15, 100 paid Sep 18 → 500 current (not yet due)"""
    config = tmp_path / "revleak.yaml"
    config.write_text(f"reports: {{location: {tmp_path / 'store'}, url: '{REPORT_URL}'}}\n")
    monkeypatch.setenv("REVLEAK_CONFIG", str(config))
    b = Books()
    for inv, due, amount in (("A", "2026-09-01", "1000.00"), ("B", "2026-09-05", "500.00"),
                             ("C", "2026-09-15", "800.00"), ("D", "2026-07-01", "2000.00"),
                             ("E", "2026-05-01", "400.00"), ("H", "2026-09-01", "1000.00"),
                             ("F", "2026-10-15", "600.00")):
        issued = "2026-09-15" if inv == "F" else "2026-04-01"
        b.bill(f"I-{inv}", f"C-{inv}", issued, due, amount)
    b.rows["customers"][0]["name"] = EVIL
    b.payment("P-A", "I-A", "300.00", "2026-09-15T10:00:00+00:00")
    b.payment("P-B", "I-B", "500.00", "2026-09-16T10:00:00+00:00")
    b.payment("P-H1", "I-H", "400.00", "2026-09-05T10:00:00+00:00")
    b.payment("P-H2", "I-H", "300.00", "2026-09-06T10:00:00+00:00")
    b.payment("P-F", "I-F", "100.00", "2026-09-18T10:00:00+00:00")
    b.load(conn, tmp_path / "first")
    pipeline.run_check(CHECK, PREVIOUS)
    next(p for p in b.rows["payments"] if p["payment_id"] == "P-H2")["status"] = "refunded"
    b.load(conn, tmp_path / "second")
    pipeline.run_check(CHECK, SUNDAY)
    conn.commit()
    html_path, csv_path = reports.publish(CHECK, SUNDAY)
    return Path(html_path).read_text(encoding="utf-8"), Path(csv_path).read_text(encoding="utf-8")


def test_weekly_collections_report_shows_the_hand_computed_figures(collections, conn):
    html, _ = collections
    assert value(html, "open-count") == 5  # the realization alarm (portfolio) is not counted
    assert value(html, "open-gap") == 700 + 800 + 2000 + 400 + 600
    assert value(html, "resolved-count") == 1
    # realization: collected 300 + 500 + 400 of billed 5,700 past due
    assert value(html, "realization-rate") == Decimal("0.210526")
    assert "21.1%" in element(html, "realization")
    aging = dict(re.findall(r'data-bucket="([^"]+)"><td>[^<]+</td><td class="num">(\d+)</td>'
                            r'<td class="num">USD [\d,.]+</td>', element(html, "aging-table")))
    assert aging == {"current": "1", "1–30": "3", "31–60": "0", "61–90": "1", "90+": "1"}
    amounts = re.findall(r"USD ([\d,.]+)</td></tr>", element(html, "aging-table"))
    assert amounts == ["500.00", "2,100.00", "0.00", "2,000.00", "400.00"]
    top = re.findall(r"invoice I-(\w)", element(html, "top-findings"))
    assert top == ["D", "E", "A", "H", "C"]  # by loss: 162,000 · 56,800 · 13,300 · 11,400 · 4,000
    for kind in ("new", "resolved", "grown", "shrunk"):
        assert value(html, f"changes-{kind}", "data-count") == 1, kind
    changes = element(html, "changes")
    assert re.search(r"Grown</span><b[^>]*>1</b><span>USD 300.00", changes)
    assert re.search(r"Shrunk</span><b[^>]*>1</b><span>USD 300.00", changes)
    # the ledger of the week Sep 14–20: B came back (500 after 7 days), C was found
    assert value(html, "ledger-open") == 4500
    assert value(html, "ledger-found") == 800
    assert value(html, "ledger-recovered") == 500
    assert "10.0%" in element(html, "ledger-rate") and "7.0 days" in element(html, "ledger-days")


def test_every_finding_of_the_run_is_in_the_report_and_the_csv(collections, conn):
    html, text = collections
    history = conn.execute("select fingerprint, status from revleak.finding_history"
                           " where check_id = %s and as_of = %s", (CHECK, SUNDAY)).fetchall()
    assert len(history) == 7  # A C D E H, the alarm, and B resolved
    for fp, status in history:
        assert f'id="f-{fp}" data-status="{status}"' in html
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted((r["fingerprint"], r["status"]) for r in rows) == sorted(history)
    assert {(r["owner_team"], r["owner_name"]) for r in rows} == {("Finance", "Finance lead")}
    assert next(r for r in rows if r["entity_id"] == "I-A")["customer_name"] == EVIL


def test_values_are_escaped(collections):
    html, _ = collections
    assert EVIL not in html and "<script" not in html
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; &amp; Co" in html


def test_tickets_link_to_the_report_row_of_their_finding(collections, conn):
    from revleak.tickets import text

    html, _ = collections
    events = conn.execute("select fingerprint, idempotency_key, payload from revleak.ticket_outbox"
                          " where as_of = %s", (SUNDAY,)).fetchall()
    assert events
    name = storage.file_name(CHECK, SUNDAY, "html")
    for fp, key, payload in events:
        assert payload["report_url"] == f"{REPORT_URL}/{name}#f-{fp}"
        assert f'id="f-{fp}"' in html
        assert payload["report_url"] in text.render(payload, key)["body"]


def test_each_report_renders_twice_to_the_same_bytes_and_needs_nothing_online(
        demo_history, conn, tmp_path):  # noqa: F811
    config = load_config()
    runs = dict(conn.execute("select check_id, max(as_of) from revleak.check_runs"
                             " where status = 'succeeded' group by 1").fetchall())
    assert set(runs) == set(REPORT_TYPES)
    for check in REPORT_TYPES:
        first = reports.publish(check, runs[check], str(tmp_path / "one"), config)
        second = reports.publish(check, runs[check], f"file://{tmp_path / 'two'}", config)
        for a, b in zip(first, second, strict=True):
            assert Path(a).read_bytes() == Path(b).read_bytes(), a
        html = Path(first[0]).read_text(encoding="utf-8")
        assert html.count("<svg") >= 1, check
        assert not re.search(r"""(src|href)=["'](https?:)?//|<link|<script|@import|url\(http""",
                             html), check
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), f"{check}: an id repeats, charts would clash"
        assert "@media print" in html and "@page" in html


def test_the_store_takes_a_folder_or_a_url_and_says_when_it_cannot(collections, tmp_path,
                                                                   capsys):
    name = storage.file_name(CHECK, SUNDAY, "html")
    stored = tmp_path / "store" / name  # reports.location of the fixture's config
    assert stored.read_text(encoding="utf-8") == collections[0]
    assert reports.stored_or_rendered(CHECK, SUNDAY, "html") == stored.read_bytes()
    stored.unlink()  # never stored: rendered from the findings, the same bytes
    assert reports.stored_or_rendered(CHECK, SUNDAY, "html").decode() == collections[0]

    assert cli.main(["report", CHECK, "--as-of", str(SUNDAY), "--out",
                     str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "out" / name),
                       str(tmp_path / "out" / storage.file_name(CHECK, SUNDAY, "csv"))]
    assert (tmp_path / "out" / name).read_text(encoding="utf-8") == collections[0]

    assert cli.main(["report", CHECK, "--as-of", "2026-09-19"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no successful run of billed_vs_collected_weekly as of " \
        "2026-09-19" in err
    assert not (tmp_path / "store" / storage.file_name(CHECK, date(2026, 9, 19), "html")).exists()
    assert cli.main(["report", CHECK, "--as-of", str(SUNDAY), "--out", "s3://bucket/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "apache-airflow-providers-amazon" in err


def test_the_page_serves_the_store_and_refuses_other_paths(collections, conn):
    """The Revenue leakage app (Airflow's login and authorization stubbed: a reader of every
    check): reports by their stable names only, a never-run date is a clear 404, a query
    value the page does not offer is a 400 naming the ones it does."""
    from fastapi.testclient import TestClient

    from revleak.config import CHECK_IDS
    from revleak.ui import Reader, create_app

    app = create_app()
    app.dependency_overrides[app.state.authorized] = lambda: Reader("tester", CHECK_IDS)
    client = TestClient(app)
    name = storage.file_name(CHECK, SUNDAY, "html")
    served = client.get(f"/reports/{name}")
    assert served.status_code == 200 and served.text == collections[0]
    assert client.get(f"/reports/{storage.file_name(CHECK, SUNDAY, 'csv')}").text \
        == collections[1]
    missing = client.get(f"/reports/{storage.file_name(CHECK, date(2026, 9, 19), 'html')}")
    assert missing.status_code == 404 and "no successful run" in missing.text
    for bad in (f"{CHECK}/..%2F..%2Fetc%2Fpasswd", f"{CHECK}/{CHECK}_2026-09-20.exe",
                f"funnel_leak_weekly/{CHECK}_2026-09-20.html", "nope/nope_2026-09-20.html"):
        assert client.get(f"/reports/{bad}").status_code == 404, bad
    for query, offered in (({"sort": "drop table"}, "loss"), ({"status": "weird"}, "resolved"),
                           ({"period": 3}, "7, 30, 90, 365"), ({"per_page": 7}, "10, 25"),
                           ({"page": -4}, "whole number")):
        refused = client.get("/", params=query)
        assert refused.status_code == 400 and offered in refused.text, query
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="finding-count" data-value="6"' in page.text  # open (+ the alarm), page 1
    assert page.text.index("I-D") < page.text.index("I-E") < page.text.index("I-C")
    assert EVIL not in page.text
