"""The demo company as the tests judge it: its books read back as rows, and what the
independent oracle (tests/oracle, shared with the property suite) finds in them for a check's
demo run under the suite's configuration. The manifest only states what was planted."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from revleak.config import load_config
from revleak.tables import TABLES
from tests import contract, oracle

# Each check's categories (contract §4), with what docs/pricing.md adds: subscription_drift,
# and the change check, which judges by the quarterly audit's rules (owner Finance).
PRICING = contract.CATEGORIES["pricing_drift_quarterly"] | {"subscription_drift"}
CATEGORIES = {**contract.CATEGORIES, "pricing_drift_quarterly": PRICING,
              "pricing_drift_on_change": PRICING}
OWNING_TEAMS = {**contract.OWNING_TEAMS, "pricing_drift_on_change": "Finance"}

FIGURES = {"expected_amount": "expected", "actual_amount": "actual", "gap_amount": "gap",
           "currency": "currency"}  # manifest figure → oracle.Finding attribute


def read(out: Path) -> dict[str, list[dict]]:
    """Every table of a generated company, as rows of text values."""
    tables = {}
    for table in TABLES:
        with open(Path(out) / f"{table}.csv", newline="", encoding="utf-8") as handle:
            tables[table] = list(csv.DictReader(handle))
    return tables


def judged(rows: dict, manifest: dict, check: str, **rules) -> list[oracle.Finding]:
    """The oracle's findings for the check's demo run; ``rules`` override the configured."""
    config = load_config()
    as_of = date.fromisoformat(manifest["runs"][check]["as_of"])
    return oracle.findings(rows, oracle.Run(check, as_of, {**dict(config.rules[check]), **rules},
                                            config.timezone, config.base_currency))


def planted(manifest: dict, check: str) -> dict[tuple, dict]:
    """The manifest's leaks of one check by identity (check, category, entity_type, entity)."""
    return {(x["check"], x["category"], x["entity_type"], x["entity_id"]): x
            for x in manifest["leaks"] if x["check"] == check}


def disagreements(found: list[oracle.Finding], leaks: dict[tuple, dict]) -> list[str]:
    """Each way the oracle's findings differ from the planted leaks, one line each: a leak
    not found, a finding nobody planted, a figure the manifest states that differs."""
    by_identity = {f.identity: f for f in found}
    out = [f"planted, not found: {k}" for k in sorted(leaks.keys() - by_identity.keys())]
    out += [f"found, not planted: {k}" for k in sorted(by_identity.keys() - leaks.keys())]
    for key in sorted(leaks.keys() & by_identity.keys()):
        for figure, attribute in FIGURES.items():
            if figure not in leaks[key]:
                continue
            stated = leaks[key][figure]
            got = getattr(by_identity[key], attribute)
            if (stated if figure == "currency" else Decimal(stated)) != got:
                out.append(f"{key} {figure}: planted {stated}, oracle {got}")
    return out
