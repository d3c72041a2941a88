"""What a person reads: the findings table fits 100 columns, names the base currency and each
customer, gives every figure its unit, never shortens an entity, and ends with totals per
check that say what they sum; `revleak tickets` shows check, customer and gap per event; a
run's summary reads the same way. Figures are checked against hand-computed ones."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from revleak import findings, pipeline
from tests.books import Books

CHECK = "booked_vs_billed_daily"
LONG_NAME = "Northwind Trading Company International Holdings"


def revleak(*args):
    result = subprocess.run([sys.executable, "-m", "revleak.cli", *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def leaky(conn, tmp_path):
    """As of 2026-03-10 with the 31-day billing lag: A (USD 12,000 a year, monthly) owes the
    January and February periods, 2,000.00, due since Feb 1: 37 days, 74,000 USD·days.
    B (EUR 6,000 a year, quarterly) owes January's quarter, 1,500.00 EUR = 1,650.00 USD at
    1.10, 37 days, 61,050 USD·days. OK is billed in full. The portfolio's shortfall (3,650.00
    of 4,650.00 due) is a finding of its own that restates A's and B's gaps."""
    b = Books()
    b.contract("A", "12000.00", "2026-01-01", "2026-12-31", "monthly") \
        .contract("B", "6000.00", "2026-01-01", "2026-12-31", "quarterly", currency="EUR") \
        .contract("OK", "1000.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("OK1", "OK", "2026-01-01", "1000.00").fx("EUR", "2026-01-01", "1.10")
    names = {"C-A": LONG_NAME, "C-B": "Brasserie Élan SARL"}
    for customer in b.rows["customers"]:
        customer["name"] = names.get(customer["customer_id"], customer["name"])
    b.load(conn, tmp_path)
    return pipeline.run_check(CHECK, date(2026, 3, 10))


def test_the_findings_table(conn, tmp_path):
    leaky(conn, tmp_path)
    lines = revleak("findings").splitlines()
    assert max(len(line) for line in lines) <= 100, [line for line in lines if len(line) > 100]
    text = "\n".join(lines)
    assert lines[0] == "3 open findings; the base currency is USD"
    assert "loss = gap in USD × days outstanding (USD·days)" in lines[1]
    assert f"{CHECK} · owner RevOps on call (RevOps) · due " in text
    row = {line.split()[1] + " " + line.split()[2]: line for line in lines
           if line.startswith("  unbilled") or line.startswith("  under_billed")}
    a, b = row["opportunity A"], row["opportunity B"]
    assert "USD 2,000.00" in a and " 37 " in a and a.endswith("74,000")
    assert "Northwind Trading" in a and "…" in a  # a long name is shortened, never an id
    assert "Brasserie Élan SARL" in b and "EUR 1,500.00" in b and b.endswith("61,050")
    assert "portfolio all" in text
    totals = next(line for line in lines if line.startswith(f"  {CHECK}"))
    assert totals.split() == [CHECK, "3", "3,650.00", "135,050"]  # A + B; the portfolio not
    assert "(1 portfolio alarm(s) counted, not summed" in text
    assert lines[-1] == "total: 3 open findings"


def test_totals_are_per_check_and_never_added_across_checks(conn, tmp_path):
    leaky(conn, tmp_path)
    more = Books().bill("INV9", "C-A", "2026-02-01", "2026-02-15", "500.00")
    more.payment("P1", None, "1000.00", "2026-01-05T10:00:00+00:00", customer_id="C-OK")
    more.load(conn, tmp_path / "more")
    pipeline.run_check("billed_vs_collected_weekly", date(2026, 3, 8))  # a Sunday
    lines = revleak("findings").splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert "totals per check: gap = Σ gap in USD (over-billing counts negative)" in "\n".join(
        lines)
    tail = " ".join(lines[-2:])
    assert "checks; their sums are not added up, as one invoice can be a finding of several" \
        in tail
    assert revleak("findings", "--check", CHECK).splitlines()[-1] == \
        f"total: 3 open findings of {CHECK}"


def test_tickets_show_check_customer_and_gap(conn, tmp_path):
    leaky(conn, tmp_path)
    lines = revleak("tickets").splitlines()
    assert lines[:4] == ["outbox: pending open: 3", "", CHECK, lines[3]]  # grouped by check
    assert lines[3].split() == ["event", "state", "action", "customer", "gap", "ticket",
                                "tries"]
    events = "\n".join(lines[4:])
    assert len(lines[4:]) == 3 and max(map(len, lines)) <= 100
    assert "Brasserie Élan SARL" in events and "EUR 1,500.00" in events
    assert "Northwind Trading Company International" in events
    assert "USD 2,000.00" in events and "USD 3,650.00" in events  # A; the portfolio


def test_a_run_summary_reads_the_same_way(conn, tmp_path):
    leaky(conn, tmp_path)
    text = pipeline.format_summary(findings.summarize(conn, CHECK, date(2026, 3, 10)))
    first, *rest = text.splitlines()
    assert first == f"{CHECK} as of 2026-03-10: 2 findings (0 resolved on this date), " \
                    "gap USD 3,650.00"
    assert "loss = gap in USD × days outstanding, USD·days" in rest[0]
    a = next(line for line in rest if "opportunity A " in line)
    assert "USD 2,000.00" in a and a.split()[-2:] == ["37", "74,000"]
