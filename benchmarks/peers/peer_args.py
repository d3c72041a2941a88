"""What the pandas and DuckDB peers share: their command line and the findings file they write.

A peer is the script a RevOps engineer would write instead of revleak: it reads the contract's
CSV exports (one ``<table>.csv`` per table) and prints the same findings as JSON lines, one per
finding, with every amount as a decimal string rounded to the cent.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

CHECKS = ("booked_vs_billed_daily", "billed_vs_collected_weekly")
FIELDS = ("category", "entity_type", "entity_id", "customer_id", "currency", "expected_amount",
          "actual_amount", "gap_amount", "days_outstanding")


def parse(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("check", choices=CHECKS)
    p.add_argument("--books", type=Path, required=True, help="folder holding <table>.csv")
    p.add_argument("--as-of", type=date.fromisoformat, required=True)
    p.add_argument("--rules", type=json.loads, required=True,
                   help='the check\'s rules as JSON, e.g. {"tolerance_pct": "0.5", ...}')
    p.add_argument("--base-currency", default="USD")
    p.add_argument("--timezone", default="UTC")
    p.add_argument("--out", type=Path, required=True, help="findings, one JSON object a line")
    return p.parse_args()


def as_of_end(as_of: date, timezone: str) -> datetime:
    """The first instant after the as-of date in the company's timezone."""
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=ZoneInfo(timezone))


def cents_text(cents: int) -> str:
    """Whole cents as a decimal string: -1234 → '-12.34'."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def whole_cents(value: Fraction) -> int:
    """An exact amount rounded half away from zero to whole cents."""
    cents = abs(value) * 100
    rounded = int(cents) + (1 if cents - int(cents) >= Fraction(1, 2) else 0)
    return rounded if value >= 0 else -rounded


def portfolio(a: argparse.Namespace, found: list[dict], first: Fraction,
              second: Fraction) -> list[dict]:
    """The portfolio alarm from exact base-currency totals — booked vs billed: due and the
    shortfall (not netted against over-billing) above tolerance; billed vs collected: billed
    and collected (at most billed, per invoice) below the realization alarm — dated by the
    oldest finding it restates."""
    rules = {k: Fraction(str(v)) for k, v in a.rules.items()}
    if a.check == "booked_vs_billed_daily":
        due, shortfall = first, second
        fires = shortfall > max(due * rules["tolerance_pct"] / 100, rules["tolerance_min"])
        expected, actual, gap = due, due - shortfall, shortfall
        category, dated = "under_billed", ("unbilled", "under_billed")
    else:
        billed, collected = first, second
        fires = billed > 0 and 100 * collected / billed < rules["realization_alarm_pct"]
        expected, actual, gap = billed, collected, billed - collected
        category, dated = "short_paid", ("disputed", "payment_failed", "short_paid", "unpaid")
    if not fires:
        return []
    days = max((f["days_outstanding"] for f in found if f["category"] in dated), default=0)
    return [{"category": category, "entity_type": "portfolio", "entity_id": "all",
             "customer_id": None, "currency": a.base_currency,
             **{k: cents_text(whole_cents(v)) for k, v in
                (("expected_amount", expected), ("actual_amount", actual), ("gap_amount", gap))},
             "days_outstanding": days}]


def write(path: Path, findings: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for f in sorted(findings, key=lambda f: (f["category"], f["entity_type"],
                                                 f["entity_id"])):
            out.write(json.dumps({k: f[k] for k in FIELDS}) + "\n")
