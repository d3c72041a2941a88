"""The leakage ledger: what revleak found and what came back, across checks.

Derived from the findings' history (one row per finding and date checked) and its episodes
(a leak's consecutive checked dates, ``revleak.finding_generations``):

- open leakage: the gaps still open on each check's last run on or before the period end;
- found: gaps whose episode began in the period, at the size they were first seen;
- recovered: gaps whose episode closed in the period (resolved on a run), with the amount
  that came back — the last open gap — and the time to recover, the date it closed minus
  the date it was first seen;
- recovery rate: recovered ÷ (recovered + still open).

Amounts are in the base currency at their size (an over-billing is money out of place as
much as an under-billing); portfolio totals (sums of the other findings) and findings without
an amount stay out. One set-based query (sql/reports/ledger.sql); Python only receives the
totals.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from revleak import statements

DIMENSIONS = ("check", "category", "owner", "segment")
NO_SEGMENT = "no segment"


@dataclass(frozen=True)
class Filters:
    """What the reader narrowed the view to; None means everything."""

    check: str | None = None
    category: str | None = None
    owner: str | None = None
    segment: str | None = None
    checks: tuple[str, ...] | None = None  # the checks the reader may see; None: every check

    def params(self) -> dict:
        """The filters as the bind parameters the ledger and the page take (``f_check``
        …; null: not narrowed), with the segment of a customer without one."""
        return {"no_segment": NO_SEGMENT, **{
            f"f_{f.name}": list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)}}


@dataclass(frozen=True)
class Line:
    """One line of the ledger: a check, a category, an owner, a segment, or the total."""

    label: str
    check: str | None
    open_count: int
    open_amount: Decimal
    found_count: int
    found_amount: Decimal
    recovered_count: int
    recovered_amount: Decimal
    median_days_to_recover: Decimal | None

    @property
    def recovery_rate(self) -> Decimal | None:
        """Recovered ÷ (recovered + still open), 0–1."""
        whole = self.recovered_amount + self.open_amount
        return (self.recovered_amount / whole).quantize(Decimal("0.0001")) if whole else None


@dataclass(frozen=True)
class Ledger:
    start: date
    end: date
    currency: str
    total: Line
    by: dict[str, tuple[Line, ...]]


def ledger(conn: psycopg.Connection, start: date, end: date, currency: str,
           filters: Filters = Filters()) -> Ledger:
    """The ledger of the period ``start``–``end`` (inclusive), totals and by dimension."""
    rows = conn.cursor(row_factory=dict_row).execute(
        statements.named("reports/ledger.sql")["ledger"],
        {"start": start, "end": end, **filters.params()}).fetchall()
    by: dict[str, list[Line]] = {d: [] for d in DIMENSIONS}
    total = Line("total", None, 0, Decimal(0), 0, Decimal(0), 0, Decimal(0), None)
    for r in rows:
        days = r["median_days_to_recover"]
        label = {"check": r["check_id"], "category": r["category"], "owner": r["owner"],
                 "segment": r["segment"], "total": "total"}[r["dimension"]]
        line = Line(label or "—", r["check_id"], r["open_count"], r["open_amount"],
                    r["found_count"], r["found_amount"], r["recovered_count"],
                    r["recovered_amount"],
                    None if days is None else Decimal(str(days)).quantize(Decimal("0.1")))
        if r["dimension"] == "total":
            total = line
        else:
            by[r["dimension"]].append(line)
    order = {  # biggest open leakage first, then name: the same order every time
        d: tuple(sorted(lines, key=lambda x: (-x.open_amount, -x.recovered_amount, x.label)))
        for d, lines in by.items()}
    return Ledger(start, end, currency, total, order)
