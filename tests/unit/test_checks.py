"""One check run's rules and parameters, before any SQL runs: configuration plus the run's
overrides (exact decimals, unknown keys ignored), the window's instants in the company's
timezone, and JSON that keeps amounts and dates readable."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from revleak import checks
from revleak.checks import CheckRun
from revleak.config import parse_config
from revleak.errors import RevleakError

DEFAULTS = parse_config(None)
BERLIN = parse_config({"company": {"timezone": "Europe/Berlin", "base_currency": "EUR"}})


def test_overrides_replace_configured_rules_as_exact_decimals():
    run = CheckRun("booked_vs_billed_daily", date(2026, 10, 1), DEFAULTS,
                   {"tolerance_pct": 0.1, "billing_lag_days": 45, "tolerance_min": None,
                    "dry_run": True, "no_such_rule": 3})
    rules = run.rules
    assert rules["tolerance_pct"] == Decimal("0.1")  # not 0.1000000000000000055511151231257827
    assert rules["billing_lag_days"] == 45
    assert rules["tolerance_min"] == Decimal("1.00")  # None: the configured value
    assert "dry_run" not in rules and "no_such_rule" not in rules
    assert run.overridden() == {
        "tolerance_pct": {"configured": Decimal("0.5"), "used": Decimal("0.1")},
        "billing_lag_days": {"configured": 31, "used": 45}}


def test_an_override_equal_to_the_configuration_is_no_override():
    run = CheckRun("booked_vs_billed_daily", date(2026, 10, 1), DEFAULTS,
                   {"tolerance_pct": 0.5, "billing_lag_days": 31})
    assert run.overridden() == {}


def test_a_check_on_change_runs_with_the_rules_configured_for_the_check_it_borrows():
    config = parse_config({"checks": {"pricing_drift_quarterly": {"tolerance_min": 0.05}}})
    run = CheckRun("pricing_drift_on_change", date(2026, 11, 24), config)
    assert run.rules["tolerance_min"] == Decimal("0.05")
    assert run.rule_version == CheckRun("pricing_drift_quarterly", run.as_of, config).rule_version
    assert checks.steps("pricing_drift_on_change") == checks.steps("pricing_drift_quarterly")


def test_a_weekly_runs_parameters_in_the_company_timezone():
    params = CheckRun("billed_vs_collected_weekly", date(2026, 10, 4), BERLIN).params
    berlin = ZoneInfo("Europe/Berlin")
    assert params["window_start"] == date(2026, 9, 28)  # the Monday of the as-of week
    # activity counts from Monday 00:00 to the end of Sunday, Berlin time (CEST, UTC+2)
    assert params["window_start_at"] == datetime(2026, 9, 28, tzinfo=berlin)
    assert params["as_of_end"] == datetime(2026, 10, 5, tzinfo=berlin)
    assert params["as_of_end"] == datetime(2026, 10, 4, 22, 0, tzinfo=UTC)
    assert (params["check_id"], params["as_of"]) == ("billed_vs_collected_weekly",
                                                    date(2026, 10, 4))
    assert (params["base_currency"], params["timezone"]) == ("EUR", "Europe/Berlin")
    assert params["realization_alarm_pct"] == Decimal("95")


def test_a_quarterly_window_starts_on_the_first_day_of_the_quarter():
    params = CheckRun("recognized_vs_collected_quarterly", date(2026, 9, 30), DEFAULTS).params
    assert params["window_start"] == date(2026, 7, 1)
    assert params["window_start_at"] == datetime(2026, 7, 1, tzinfo=ZoneInfo("UTC"))


def test_an_unknown_check_is_one_line_listing_the_known_ones():
    with pytest.raises(RevleakError) as err:
        checks.steps("booked_vs_billed")
    message = str(err.value)
    assert message.startswith("unknown check 'booked_vs_billed'; known: booked_vs_billed_daily, ")
    assert "\n" not in message and "pricing_drift_on_change" in message


def test_json_keeps_amounts_as_numbers_and_dates_as_iso_text():
    value = {"gap": Decimal("1234.50"), "as_of": date(2026, 10, 4),
             "at": datetime(2026, 10, 4, 6, 0, tzinfo=UTC), "rows": [Decimal("-0.01")]}
    assert checks.to_json(value) == ('{"gap": 1234.5, "as_of": "2026-10-04", '
                                     '"at": "2026-10-04T06:00:00+00:00", "rows": [-0.01]}')
    assert checks.jsonable(value) == {"gap": 1234.5, "as_of": "2026-10-04",
                                      "at": "2026-10-04T06:00:00+00:00", "rows": [-0.01]}
    with pytest.raises(TypeError):
        checks.to_json({"who": object()})
