"""What every oracle shares: a finding's identity and figures, the books' rows read as the
contract's types (§2), the company's calendar, exchange rates and rounding to the cent.

Amounts are exact fractions until a figure is reported; figures round half away from zero,
to 2 decimals (4 for percentages), the way the warehouse's ``round(numeric, n)`` does.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

Rows = dict[str, list[dict]]  # table name → rows as written to <table>.csv (text values)


@dataclass(frozen=True)
class Finding:
    """One finding: who (check, category, entity) and its figures (contract §4)."""

    check: str
    category: str
    entity_type: str
    entity_id: str
    expected: Decimal | None
    actual: Decimal | None
    gap: Decimal | None
    currency: str | None
    gap_base: Decimal | None
    gap_pct: Decimal | None
    days: int | None
    time_weighted_loss: Decimal | None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.check, self.category, self.entity_type, self.entity_id)


@dataclass(frozen=True)
class Run:
    """One check judged as of a date: the rules in force and the company's settings."""

    check: str
    as_of: date
    rules: dict
    timezone: str = "UTC"
    base_currency: str = "USD"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def as_of_end(self) -> datetime:
        """The first instant after the as-of date, in the company's timezone."""
        return local_midnight(self.as_of + timedelta(days=1), self.tz)

    def rule(self, name: str) -> Fraction:
        return Fraction(str(self.rules[name]))

    def days(self, name: str) -> timedelta:
        return timedelta(days=int(self.rules[name]))

    def finding(self, category: str, entity_type: str, entity_id: str, currency: str | None,
                expected: Fraction | None, actual: Fraction | None, gap: Fraction | None,
                fx_rate: Fraction | None, days: int | None, gap_pct: Fraction | None = None,
                gap_base: Decimal | None = None) -> Finding:
        """A finding with its figures rounded as reported: the gap in base currency is the
        unrounded gap at the as-of date's rate, the time-weighted loss that times the days."""
        if gap_base is None and gap is not None and fx_rate is not None:
            gap_base = cents(gap * fx_rate)
        if gap_pct is None and gap is not None and expected:
            gap_pct = Fraction(100) * gap / expected
        return Finding(self.check, category, entity_type, entity_id,
                       cents(expected), cents(actual), cents(gap), currency, gap_base,
                       rounded(gap_pct, 4), days,
                       gap_base * days if gap_base is not None and days is not None else None)


def rounded(value: Fraction | None, places: int) -> Decimal | None:
    """Round half away from zero, exactly (``round(numeric, places)``)."""
    if value is None:
        return None
    scaled = abs(value) * 10 ** places
    whole = int(scaled + Fraction(1, 2))  # floor, as scaled ≥ 0
    return (Decimal(whole) * (1 if value >= 0 else -1)).scaleb(-places)


def cents(value: Fraction | None) -> Decimal | None:
    return rounded(value, 2)


def money(text: str | None) -> Fraction | None:
    """A money, decimal or pct column: exact, None when empty."""
    return Fraction(text) if text not in (None, "") else None


def day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def local_day(text: str, tz: ZoneInfo) -> date:
    """The company's calendar day of a timestamp."""
    return moment(text).astimezone(tz).date()


def local_midnight(on: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(on, datetime.min.time(), tzinfo=tz)


def flag(text: str | None) -> bool:
    return (text or "").lower() == "true"


def by(rows: list[dict], key: str) -> dict[str, list[dict]]:
    """Rows grouped by the value of one column."""
    out: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        out[row.get(key) or ""].append(row)
    return out


def line_totals(rows: Rows) -> dict[str, Fraction]:
    """Net amount of every invoice: the sum of its lines (as delivered; credit notes negative)."""
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for line in rows["invoice_lines"]:
        totals[line["invoice_id"]] += money(line["amount"])
    return totals


class Fx:
    """fx_rates (§2): 1 unit of a currency = rate_to_base units of the base currency; the rate
    for a day is the latest rate_date on or before it; the base currency is 1."""

    def __init__(self, rows: list[dict], base_currency: str):
        self.base = base_currency
        table: dict[str, list[tuple[date, Fraction]]] = defaultdict(list)
        for r in rows:
            table[r["currency"]].append((day(r["rate_date"]), money(r["rate_to_base"])))
        self.table = {ccy: sorted(points) for ccy, points in table.items()}

    def rate(self, currency: str, on: date) -> Fraction | None:
        if currency == self.base:
            return Fraction(1)
        points = self.table.get(currency, [])
        i = bisect.bisect_right(points, (on, Fraction(10) ** 30))
        return points[i - 1][1] if i else None

    def convert(self, amount: Fraction, currency: str, to: str, on: date) -> Fraction | None:
        """An amount in another currency at the rates of one day (through the base currency)."""
        if currency == to:
            return amount
        src, dst = self.rate(currency, on), self.rate(to, on)
        return None if src is None or dst is None else amount * src / dst
