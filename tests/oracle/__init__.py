"""An independent oracle of the five checks (contract §3 with its clarifications and the
decisions recorded where the contract is silent), written in plain Python over the rows of
the books: what each check should find as of a date. Not the runtime package: tests only."""

from __future__ import annotations

from tests.oracle import (
    billed_vs_collected,
    booked_vs_billed,
    funnel_leak,
    pricing_drift,
    recognized_vs_collected,
)
from tests.oracle.common import Finding, Rows, Run

CHECKS = {
    "booked_vs_billed_daily": booked_vs_billed.findings,
    "billed_vs_collected_weekly": billed_vs_collected.findings,
    "funnel_leak_weekly": funnel_leak.findings,
    "recognized_vs_collected_quarterly": recognized_vs_collected.findings,
    "pricing_drift_quarterly": pricing_drift.findings,
    # the quarter so far as of D − 1 (its as-of date), by the quarterly audit's rules
    "pricing_drift_on_change": pricing_drift.findings,
}


def findings(rows: Rows, run: Run) -> list[Finding]:
    """What ``run.check`` should find in these books as of ``run.as_of``."""
    return CHECKS[run.check](rows, run)


__all__ = ["CHECKS", "Finding", "Run", "findings"]
