"""``manifest.json``: where each check looks in the demo company and what was planted there.

A leak entry names its check, category, entity, customer and as-of date, plus the figures the
planter set by construction (``currency``, ``expected_amount``, ``actual_amount``,
``gap_amount``; a funnel zone: the leak ``states`` seeded in it). A figure known only by
applying a check's rules (days outstanding, what is due after a billing lag, a funnel zone's
rate and value) is left out: the tests work those out with their own oracle. Decoys look like
leaks and must not be found.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from revleak.demo.company import BASE_CURRENCY, DAY, RAISED_SKU, Company, money

VERSION = 3
CHANGE_CHECKED_AFTER_DAYS = 5  # the change check's run: this many days after the price rise


def runs(company: Company) -> dict[str, dict]:
    """Each check's run of the demo, in the order the demo runs them: the logical date and
    the day it checks. The change check runs a few days after the quarter's price rise, before
    the quarterly audit, so the price signals are its own."""
    as_of, week_end, q_start, q_end = (company.as_of, company.week_end, company.q_start,
                                       company.q_end)
    week_start = week_end - timedelta(days=6)
    daily = {"logical_date": (as_of + DAY).isoformat(), "as_of": as_of.isoformat()}
    weekly = {"logical_date": (week_end + DAY).isoformat(), "as_of": week_end.isoformat(),
              "window_start": week_start.isoformat()}
    quarterly = {"logical_date": (q_end + DAY).isoformat(), "as_of": q_end.isoformat(),
                 "window_start": q_start.isoformat()}
    changed = company.price_rise + timedelta(days=CHANGE_CHECKED_AFTER_DAYS)
    on_change = {"logical_date": changed.isoformat(), "as_of": (changed - DAY).isoformat(),
                 "window_start": q_start.isoformat()}
    return {"booked_vs_billed_daily": daily, "billed_vs_collected_weekly": weekly,
            "funnel_leak_weekly": dict(weekly), "recognized_vs_collected_quarterly": quarterly,
            "pricing_drift_on_change": on_change, "pricing_drift_quarterly": dict(quarterly)}


def leak(check: str, category: str, entity_type: str, entity_id: str, customer_id: str | None,
         as_of: str, **figures) -> dict:
    """One planted leak; ``*_amount`` figures are integer cents, written as money."""
    entry = {"check": check, "category": category, "entity_type": entity_type,
             "entity_id": entity_id, "customer_id": customer_id, "as_of": as_of}
    for name, value in figures.items():
        entry[name] = money(value) if name.endswith("_amount") else value
    return entry


def build(company: Company, leaks: list[dict], decoys: list[dict]) -> dict:
    """The manifest of a generated company."""
    return {
        "generator": "revleak.demo", "version": VERSION, "seed": company.seed,
        "scale": company.scale, "as_of": company.as_of.isoformat(),
        "base_currency": BASE_CURRENCY,
        "runs": runs(company),
        "price_change": company.price_change.isoformat(),
        "price_rise": {"sku": RAISED_SKU, "effective_from": company.price_rise.isoformat()},
        "rows": dict(company.out.rows),
        "leaks": sorted(leaks, key=lambda x: (x["check"], x["category"], x["entity_id"])),
        "decoys": sorted(decoys, key=lambda d: (d["check"], d["kind"], d["entity_id"])),
    }


def write(out_dir: Path, manifest: dict) -> None:
    with open(out_dir / "manifest.json", "w", encoding="utf-8", newline="\n") as handle:
        json.dump(manifest, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
