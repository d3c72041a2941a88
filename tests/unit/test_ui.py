"""The Revenue leakage page's rules that need no running Airflow: which checks a reader sees
(as Airflow's auth manager answers), the refusals, which report names are served, and a
content security policy that allows the page's own inline code by hash and nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date
from decimal import Decimal

import pytest

from revleak import ui
from revleak.registry import CHECK_IDS
from revleak.reports import charts


class User:
    def get_name(self) -> str:
        return "fiona"


class AuthManager:
    """Answers as Airflow's auth manager does: the DAG ids this user may read."""

    def __init__(self, dag_ids: set[str]):
        self.dag_ids = dag_ids

    def get_authorized_dag_ids(self, *, user, method):
        assert method == "GET"
        return self.dag_ids


def test_a_reader_sees_the_checks_whose_dags_airflow_lets_them_read_in_registry_order():
    readable = {"pricing_drift_quarterly", "billed_vs_collected_weekly", "some_other_dag"}
    who = ui.reader(User(), AuthManager(readable))
    assert who == ui.Reader("fiona", ("billed_vs_collected_weekly", "pricing_drift_quarterly"))
    assert ui.reader(User(), AuthManager(set())).checks == ()


def test_refusals_say_what_to_ask_for():
    who = ui.Reader("victor", ())
    assert who.refusal("funnel_leak_weekly") == (
        "Airflow gives victor no read access to the DAG funnel_leak_weekly, whose findings "
        "this shows; ask an Airflow admin for it.")
    everything = who.refusal()
    assert everything.startswith("Airflow gives victor read access to none of revleak's DAGs (")
    assert all(check in everything for check in CHECK_IDS)


@pytest.mark.parametrize(("name", "served"), [
    ("booked_vs_billed_daily_2026-10-01.html", True),
    ("funnel_leak_weekly_2026-10-04.csv", True),
    ("booked_vs_billed_daily_2026-10-01.pdf", False),
    ("../booked_vs_billed_daily_2026-10-01.html", False),
    ("booked_vs_billed_daily_2026-1-01.html", False),
    ("Booked_2026-10-01.html", False),
])
def test_only_report_and_findings_files_are_served(name, served):
    assert bool(ui.REPORT_FILE.fullmatch(name)) is served


def _sources(policy: str, directive: str) -> list[str]:
    return re.search(rf"(?:^|; ){directive} ([^;]*)", policy)[1].split()


def test_the_policy_allows_inline_code_by_hash_only_and_every_chart_style():
    headers = ui.security_headers()
    policy = headers["Content-Security-Policy"]
    assert _sources(policy, "default-src") == ["'none'"]
    for directive in ("script-src", "style-src"):
        sources = _sources(policy, directive)
        assert sources and all(re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", s) for s in sources)
    assert _sources(policy, "base-uri") == ["'none'"]
    assert (headers["X-Content-Type-Options"], headers["Referrer-Policy"]) == (
        "nosniff", "same-origin")
    chart = charts.money_trend.__wrapped__(
        "trend", "Open leakage", ((date(2026, 9, 7), Decimal("10")),), "USD",
        date(2026, 9, 7), date(2026, 9, 7), "#0072B2")
    for style in re.findall(r"<style[^>]*>(.*?)</style>", chart, re.S):
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in _sources(policy, "style-src")
