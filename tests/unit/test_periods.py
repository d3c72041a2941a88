"""The window each run checks (contract §3), for every cadence, from the logical date alone."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from revleak.periods import Window, add_business_days, run_day, window


@pytest.mark.parametrize(("check", "day", "expected"), [
    ("booked_vs_billed_daily", date(2026, 3, 1), Window(date(2026, 2, 28), date(2026, 2, 28))),
    # Monday Oct 5 2026 and Wednesday Oct 7 both check the ISO week Sep 28 – Oct 4
    ("billed_vs_collected_weekly", date(2026, 10, 5), Window(date(2026, 9, 28), date(2026, 10, 4))),
    ("funnel_leak_weekly", date(2026, 10, 7), Window(date(2026, 9, 28), date(2026, 10, 4))),
    ("recognized_vs_collected_quarterly", date(2026, 10, 1),
     Window(date(2026, 7, 1), date(2026, 9, 30))),
    ("pricing_drift_quarterly", date(2026, 1, 1), Window(date(2025, 10, 1), date(2025, 12, 31))),
    ("pricing_drift_quarterly", date(2026, 2, 15), Window(date(2025, 10, 1), date(2025, 12, 31))),
])
def test_window(check, day, expected):
    assert window(check, day) == expected


def test_run_day_is_the_logical_date_in_the_company_timezone():
    late_utc = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert run_day(late_utc, ZoneInfo("UTC")) == date(2026, 3, 1)
    assert run_day(late_utc, ZoneInfo("Europe/Berlin")) == date(2026, 3, 2)


def test_business_days_skip_weekends():
    assert add_business_days(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Fri → Mon
    assert add_business_days(date(2026, 11, 23), 5) == date(2026, 11, 30)
    assert add_business_days(date(2026, 11, 23), 0) == date(2026, 11, 23)
