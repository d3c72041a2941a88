"""The window each run checks (contract §3), derived from its logical date alone, so
scheduled, manual and backfill runs of one date check the same books."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from revleak.registry import CHECKS


@dataclass(frozen=True)
class Window:
    """The books as they stood at the end of ``as_of``; activity from ``start`` counts."""

    start: date
    as_of: date


def run_day(logical_date: datetime, tz: ZoneInfo) -> date:
    """Day D: the logical date in the company's timezone."""
    return logical_date.astimezone(tz).date()


def window(check_id: str, day: date) -> Window:
    """The last complete period before day D for the check's cadence; a check on change
    checks the quarter so far, as of D − 1 (whatever started the run: an asset event, a
    person)."""
    cadence = CHECKS[check_id].cadence
    if cadence == "daily":
        return Window(day - timedelta(days=1), day - timedelta(days=1))
    if cadence == "weekly":
        this_monday = day - timedelta(days=day.weekday())
        return Window(this_monday - timedelta(days=7), this_monday - timedelta(days=1))
    if cadence == "on_change":
        as_of = day - timedelta(days=1)
        return Window(_quarter_start(as_of), as_of)
    as_of = _quarter_start(day) - timedelta(days=1)
    return Window(_quarter_start(as_of), as_of)


def window_start(check_id: str, as_of: date) -> date:
    """The first day of the period that ends on ``as_of`` for the check's cadence (on change:
    the first day of its quarter)."""
    cadence = CHECKS[check_id].cadence
    if cadence == "daily":
        return as_of
    if cadence == "weekly":
        return as_of - timedelta(days=as_of.weekday())
    return _quarter_start(as_of)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_business_days(start: date, days: int) -> date:
    """``days`` working days (Monday–Friday) after ``start``."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def day_end(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after ``day`` in the company's timezone."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
