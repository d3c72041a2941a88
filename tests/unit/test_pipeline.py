"""What the DAG tasks do that needs no warehouse: the run a logical date stands for, and the
run's summary as the task log prints it (every figure with its unit, in the suite's base
currency, USD)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from revleak import pipeline


def test_a_logical_date_is_the_run_of_its_window_and_dry_run_is_no_rule():
    run = pipeline.check_run("booked_vs_billed_daily", datetime(2026, 10, 2, 6, tzinfo=UTC),
                             {"dry_run": True, "tolerance_pct": 2})
    assert (run.check_id, run.as_of) == ("booked_vs_billed_daily", date(2026, 10, 1))
    assert run.overrides == {"tolerance_pct": 2}


def finding(category, entity_id, customer_id, currency, gap, days, loss, gap_pct=None):
    return {"category": category, "entity_type": "opportunity", "entity_id": entity_id,
            "customer_id": customer_id, "currency": currency, "gap_amount": gap,
            "gap_pct": gap_pct, "days_outstanding": days, "time_weighted_loss": loss}


def test_a_summary_names_every_unit_and_aligns_the_largest_losses():
    summary = {"check": "booked_vs_billed_daily", "as_of": "2026-10-01", "findings": 3,
               "resolved": 1, "gap_base": Decimal("4500.5"), "top": [
                   finding("unbilled", "OPP-1", "C-1", "EUR", Decimal("3000"), 12,
                           Decimal("39000.4")),
                   finding("under_billed", "OPP-22", None, "USD", Decimal("1500.5"), 3,
                           Decimal("4501.6"))]}
    assert pipeline.format_summary(summary).splitlines() == [
        "booked_vs_billed_daily as of 2026-10-01: 3 findings (1 resolved on this date), "
        "gap USD 4,500.50",
        "  largest losses (loss = gap in USD × days outstanding, USD·days):",
        "    category      entity              customer           gap  days  loss USD·days",
        "    unbilled      opportunity OPP-1   C-1       EUR 3,000.00    12         39,000",
        "    under_billed  opportunity OPP-22  –         USD 1,500.50     3          4,502",
    ]


def test_a_funnel_summary_shows_rates_not_money():
    zone = {**finding("response", "response", None, None, None, 7, None, Decimal("35")),
            "entity_type": "zone"}
    summary = {"check": "funnel_leak_weekly", "as_of": "2026-10-04", "findings": 1,
               "resolved": 0, "gap_base": Decimal("0"), "top": [zone]}
    lines = pipeline.format_summary(summary).splitlines()
    assert lines[:2] == [
        "funnel_leak_weekly as of 2026-10-04: 1 findings (0 resolved on this date)",
        "  zones past their limits (rate = the zone's measured share):"]
    assert lines[3].split() == ["response", "zone", "response", "–", "rate", "35.00%", "7", "–"]


def test_a_run_without_findings_is_one_line():
    summary = {"check": "booked_vs_billed_daily", "as_of": "2026-10-01", "findings": 0,
               "resolved": 0, "gap_base": Decimal("0"), "top": []}
    assert pipeline.format_summary(summary) == (
        "booked_vs_billed_daily as of 2026-10-01: 0 findings (0 resolved on this date)")
