"""billed_vs_collected_weekly by hand (contract §3), as of the Sunday ending the week checked.

- every invoice (not a credit note, not draft or void) issued by the as-of date and past its
  due date: billed = its lines; collected = its payments with status ``succeeded`` attempted
  by the end of the as-of date (refunded, disputed, failed, pending are not collected);
- outstanding = billed − collected above max(pct × billed, min) is a finding, days from the
  due date: ``disputed`` if any payment is disputed, else ``payment_failed`` if one failed and
  nothing was collected, else ``short_paid`` if something was, else ``unpaid``;
- every succeeded payment with no invoice is ``unapplied_cash`` (days from the day it was paid);
- realization = collected (at most billed, per invoice) / billed over the past-due invoices,
  in base currency; below the alarm it is a portfolio ``short_paid`` finding, days from the
  oldest past-due finding's due date.
"""

from __future__ import annotations

from fractions import Fraction

from tests.oracle.common import (
    Finding,
    Fx,
    Rows,
    Run,
    by,
    day,
    line_totals,
    local_day,
    moment,
    money,
)


def findings(rows: Rows, run: Run) -> list[Finding]:
    as_of, end = run.as_of, run.as_of_end
    pct, minimum = run.rule("tolerance_pct") / 100, run.rule("tolerance_min")
    fx = Fx(rows["fx_rates"], run.base_currency)
    totals = line_totals(rows)
    payments = by([p for p in rows["payments"] if moment(p["attempted_at"]) < end], "invoice_id")
    out: list[Finding] = []
    billed_base = collected_base = Fraction(0)
    oldest = 0
    for inv in rows["invoices"]:
        if (inv.get("kind") or "invoice") != "invoice" or inv["status"] in ("draft", "void") \
                or inv["invoice_id"] not in totals:
            continue
        due_date = day(inv["due_date"])
        if day(inv["issue_date"]) > as_of or due_date >= as_of:
            continue
        billed = totals[inv["invoice_id"]]
        attempts = payments.get(inv["invoice_id"], [])
        collected = sum((money(p["amount"]) for p in attempts if p["status"] == "succeeded"),
                        Fraction(0))
        rate = fx.rate(inv["currency"], as_of)
        billed_base += billed * rate
        collected_base += min(collected, billed) * rate
        if billed - collected <= max(billed * pct, minimum):
            continue
        statuses = {p["status"] for p in attempts}
        category = ("disputed" if "disputed" in statuses
                    else "payment_failed" if "failed" in statuses and collected == 0
                    else "short_paid" if collected > 0 else "unpaid")
        days = (as_of - due_date).days
        oldest = max(oldest, days)
        out.append(run.finding(category, "invoice", inv["invoice_id"], inv["currency"], billed,
                               collected, billed - collected, rate, days))
    for p in payments.get("", []):
        if p["status"] == "succeeded":
            amount = money(p["amount"])
            out.append(run.finding("unapplied_cash", "payment", p["payment_id"], p["currency"],
                                   amount, Fraction(0), amount, fx.rate(p["currency"], as_of),
                                   (as_of - local_day(p["attempted_at"], run.tz)).days,
                                   gap_pct=Fraction(100)))
    alarm = run.rule("realization_alarm_pct")
    if billed_base > 0 and 100 * collected_base / billed_base < alarm:
        gap = billed_base - collected_base
        out.append(run.finding("short_paid", "portfolio", "all", run.base_currency, billed_base,
                               collected_base, gap, Fraction(1), oldest))
    return out
