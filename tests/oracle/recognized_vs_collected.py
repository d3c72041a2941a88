"""recognized_vs_collected_quarterly by hand (contract §3), as of the quarter's last day.

- revenue recognized (general-ledger entries on account ``revenue`` of an invoice that is not a
  credit note, draft or void) more than the collection lag before the as-of date and still not
  collected (succeeded payments by the end of the as-of date) above max(pct × recognized, min)
  is ``recognized_not_collected``, days from the first such posting + lag + 1;
- a succeeded payment paid at least the deposit lag before the as-of date with no bank
  transaction referencing it (or its invoice) booked within the lag of the day it was paid is
  ``payment_not_deposited``, days from that deadline.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

from tests.oracle.common import Finding, Fx, Rows, Run, by, day, local_day, moment, money


def findings(rows: Rows, run: Run) -> list[Finding]:
    as_of, end = run.as_of, run.as_of_end
    pct, minimum = run.rule("tolerance_pct") / 100, run.rule("tolerance_min")
    collection_lag, deposit_lag = run.days("collection_lag_days"), run.days("deposit_lag_days")
    fx = Fx(rows["fx_rates"], run.base_currency)
    invoices = {i["invoice_id"]: i for i in rows["invoices"]
                if (i.get("kind") or "invoice") == "invoice"
                and i["status"] not in ("draft", "void")}
    succeeded = [p for p in rows["payments"] if p["status"] == "succeeded"]
    collected = by([p for p in succeeded if moment(p["attempted_at"]) < end], "invoice_id")
    out: list[Finding] = []

    postings = by([g for g in rows["gl_entries"] if g["account"] == "revenue"
                   and g.get("invoice_id") in invoices
                   and day(g["posted_date"]) < as_of - collection_lag], "invoice_id")
    for invoice_id, entries in sorted(postings.items()):
        inv = invoices[invoice_id]
        recognized = sum((money(g["amount"]) for g in entries), Fraction(0))
        paid = sum((money(p["amount"]) for p in collected.get(invoice_id, [])), Fraction(0))
        if recognized - paid <= max(recognized * pct, minimum):
            continue
        first = min(day(g["posted_date"]) for g in entries)
        out.append(run.finding("recognized_not_collected", "invoice", invoice_id,
                               inv["currency"], recognized, paid, recognized - paid,
                               fx.rate(inv["currency"], as_of),
                               (as_of - (first + collection_lag + timedelta(days=1))).days))

    deposits = by(rows["bank_transactions"], "reference")
    for p in succeeded:
        paid_on = local_day(p["attempted_at"], run.tz)
        if paid_on > as_of - deposit_lag:
            continue
        references = [p["payment_id"]] + ([p["invoice_id"]] if p.get("invoice_id") else [])
        if any(paid_on <= day(t["booked_date"]) <= paid_on + deposit_lag
               for ref in references for t in deposits.get(ref, [])):
            continue
        amount = money(p["amount"])
        out.append(run.finding("payment_not_deposited", "payment", p["payment_id"],
                               p["currency"], amount, Fraction(0), amount,
                               fx.rate(p["currency"], as_of),
                               (as_of - (paid_on + deposit_lag)).days))
    return out

