"""booked_vs_billed_daily by hand (contract §3 and its clarifications): every closed-won
contract booked by the as-of date (closed by its end, started on or before it: an invoice
issued before its contract starts is judged once it has started) against its invoices.

- periods start at contract_start and step by billing_frequency (month arithmetic from the
  start, clamped to the month's end) while on or before contract_end; one_time is one period
  and never renews; auto-renewing contracts repeat the term (same months, or same days when
  the term is not whole months); each period expects amount / periods of a term;
- a period is due once period_start + billing lag ≤ as-of; billed = net lines of non-draft,
  non-void invoices of the contract issued by the as-of date (credit notes subtract), an
  invoice in another currency converted at the rates of its issue date;
- under-billing: due − billed above max(pct × due, min); ``unbilled`` when the gap is at least
  one period's amount (compared in cents), else ``under_billed``; days from the due date of
  the oldest due period not fully billed (billing fills periods oldest first);
- over-billing: billed − started above max(pct × started, min); gap = started − billed; days
  from the invoice whose cumulative billing first exceeded started + tolerance;
- renewal_miss: ended more than the grace before the as-of date, not auto-renewing, not
  one_time, no renewal opportunity created by the as-of date; expected = the contract amount,
  days from contract_end + grace + 1;
- portfolio: the base-currency shortfall (not netted against over-billing) above tolerance of
  all that is due; days = the oldest under-billing finding's.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from dateutil.relativedelta import relativedelta

from tests.oracle.common import Finding, Fx, Rows, Run, by, cents, day, flag, moment, money

STEP_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}


def period_starts(start: date, end: date, frequency: str, auto_renew: bool,
                  through: date) -> tuple[list[date], int]:
    """The starts of every period begun by ``through`` and the number of periods in a term."""
    if frequency == "one_time":
        return ([start] if start <= through else []), 1
    step = STEP_MONTHS[frequency]
    per_term = 0
    while start + relativedelta(months=per_term * step) <= end:
        per_term += 1
    whole_months = next((m for m in range(1, 12 * (end.year - start.year + 2))
                         if start + relativedelta(months=m) == end + timedelta(days=1)), None)
    term_days = (end - start).days + 1
    starts, term = [], 0
    while True:
        term_start = (start + relativedelta(months=term * whole_months) if whole_months
                      else start + timedelta(days=term * term_days))
        if term_start > through:
            break
        periods = (term_start + relativedelta(months=k * step) for k in range(per_term))
        starts += [p for p in periods if p <= through]
        if not auto_renew:
            break
        term += 1
    return starts, per_term


def findings(rows: Rows, run: Run) -> list[Finding]:
    as_of, end = run.as_of, run.as_of_end
    lag, grace = run.days("billing_lag_days"), run.days("renewal_grace_days")
    pct, minimum = run.rule("tolerance_pct") / 100, run.rule("tolerance_min")
    fx = Fx(rows["fx_rates"], run.base_currency)
    credit_notes = {i["invoice_id"] for i in rows["invoices"] if i.get("kind") == "credit_note"}
    totals: dict[str, Fraction] = {}
    for line in rows["invoice_lines"]:
        amount = money(line["amount"])
        if line["invoice_id"] in credit_notes:
            amount = -abs(amount)
        totals[line["invoice_id"]] = totals.get(line["invoice_id"], Fraction(0)) + amount
    invoices = by([i for i in rows["invoices"] if i["status"] not in ("draft", "void")
                   and day(i["issue_date"]) <= as_of and i["invoice_id"] in totals],
                  "opportunity_id")
    renewed = {o["renewal_of"] for o in rows["opportunities"]
               if o.get("renewal_of") and moment(o["created_at"]) < end}
    out: list[Finding] = []
    due_base = shortfall_base = Fraction(0)
    under_days: list[int] = []
    for c in rows["opportunities"]:
        if c["stage"] != "closed_won" or day(c["contract_start"]) > as_of:
            continue
        if c.get("closed_at") and moment(c["closed_at"]) >= end:
            continue  # closed after the as-of date: not yet booked
        opp, ccy, amount = c["opportunity_id"], c["currency"], money(c["amount"])
        start, finish = day(c["contract_start"]), day(c["contract_end"])
        auto = flag(c.get("auto_renew"))
        starts, per_term = period_starts(start, finish, c["billing_frequency"], auto, as_of)
        per_period = amount / per_term
        due = per_period * sum(1 for p in starts if p + lag <= as_of)
        started = per_period * len(starts)
        billed_by_invoice = []
        for inv in sorted(invoices.get(opp, []), key=lambda i: (i["issue_date"], i["invoice_id"])):
            issued = day(inv["issue_date"])
            billed_by_invoice.append(
                (issued, fx.convert(totals[inv["invoice_id"]], inv["currency"], ccy, issued)))
        billed = sum((b for _, b in billed_by_invoice), Fraction(0))
        rate = fx.rate(ccy, as_of)
        due_base += due * rate
        shortfall_base += max(due - billed, Fraction(0)) * rate

        under_tolerance = max(due * pct, minimum)
        if due - billed > under_tolerance:
            category = "unbilled" if cents(due - billed) >= cents(per_period) else "under_billed"
            oldest = next((p + lag for n, p in enumerate(starts)
                           if p + lag <= as_of and (n + 1) * per_period - billed
                           > Fraction(1, 200)), as_of)
            days = (as_of - oldest).days
            f = run.finding(category, "opportunity", opp, ccy, due, billed, due - billed, rate,
                            days)
            out.append(f)
            if f.gap > 0:
                under_days.append(days)
        over_tolerance = max(started * pct, minimum)
        if billed - started > over_tolerance:
            cumulative, since = Fraction(0), None
            for issued, b in billed_by_invoice:
                cumulative += b
                if cumulative > started + over_tolerance:
                    since = issued
                    break
            out.append(run.finding("over_billed", "opportunity", opp, ccy, started, billed,
                                   started - billed, rate, (as_of - (since or as_of)).days))
        if (not auto and c["billing_frequency"] != "one_time" and opp not in renewed
                and finish < as_of - grace):
            out.append(run.finding("renewal_miss", "opportunity", opp, ccy, amount,
                                   Fraction(0), amount, rate,
                                   (as_of - (finish + grace + timedelta(days=1))).days))
    if shortfall_base > max(due_base * pct, minimum):
        gap_base = cents(shortfall_base)
        out.append(run.finding("under_billed", "portfolio", "all", run.base_currency, due_base,
                               due_base - shortfall_base, shortfall_base, None,
                               max(under_days, default=0), gap_base=gap_base))
    return out
