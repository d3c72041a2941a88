"""The pandas script a user would write instead of revleak: booked-vs-billed and
billed-vs-collected (contract §3 with its clarifications) straight from the CSV exports.

    .venv/bin/python benchmarks/peers/pandas_peer.py booked_vs_billed_daily \
        --books benchmarks/out/medium --as-of 2026-09-30 --rules '{...}' --out found.jsonl

Money stays exact: amounts are whole ten-thousandths of a currency unit held in float64 (whole
numbers are exact below 2**53), and a share of a contract (amount / periods in a term) stays a
numerator over the number of periods until a figure is rounded, half away from zero, to the
cent. An invoice in another currency than its contract converts at the rates of its issue
date; base-currency totals are summed exactly (fractions) per currency.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import peer_args

U = 10_000  # money units per currency unit (the contract's money has up to 4 decimals)
STEP = {"one_time": 0, "monthly": 1, "quarterly": 3, "annual": 12}
DAY = np.timedelta64(1, "D")


def read(books, table: str, text: tuple = (), money: tuple = (), days: tuple = (),
         moments: tuple = ()) -> pd.DataFrame:
    """Some columns of one export, typed: money in units, dates as days, timestamps in UTC."""
    df = pd.read_csv(books / f"{table}.csv", usecols=[*text, *money, *days, *moments],
                     dtype={**{c: str for c in (*text, *days, *moments)},
                            **{c: "float64" for c in money}})
    for c in money:
        df[c] = (df[c] * U).round()
    for c in days:
        df[c] = pd.to_datetime(df[c], format="%Y-%m-%d").values.astype("datetime64[D]")
    for c in moments:
        df[c] = pd.to_datetime(df[c], format="ISO8601", utc=True)
    return df


def day(values) -> np.ndarray:
    """Dates (or a date) as whole days."""
    return np.asarray(values).astype("datetime64[D]")


def cents(numerator, periods=1):
    """numerator / periods money units rounded half away from zero to whole cents."""
    value = np.asarray(numerator, dtype="float64") / (np.asarray(periods) * (U // 100))
    return (np.sign(value) * np.floor(np.abs(value) + 0.5)).astype("int64")


def add_months(days: np.ndarray, months) -> np.ndarray:
    """Day plus whole months, clamped to the month's end (Jan 31 + 1 month = Feb 28)."""
    month = days.astype("datetime64[M]")
    day_of_month = (days - month.astype("datetime64[D]")).astype("int64")
    target = month + np.asarray(months, dtype="int64")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(int)
    return target.astype("datetime64[D]") + np.minimum(day_of_month, length - 1)


def fx_rates(books) -> pd.DataFrame:
    fx = read(books, "fx_rates", text=("currency", "rate_to_base"), days=("rate_date",))
    return fx.assign(rate=fx.rate_to_base.astype("float64"))


def rates_on(fx: pd.DataFrame, base: str, on) -> dict[str, Fraction]:
    """currency → its exact rate on one day: the latest on or before it (base: 1)."""
    latest = fx[fx.rate_date <= np.datetime64(on)].sort_values("rate_date")
    rates = {ccy: Fraction(text) for ccy, text in
             latest.groupby("currency").rate_to_base.last().items()}
    return rates | {base: Fraction(1)}


def rate_at(fx: pd.DataFrame, base: str, currency: pd.Series, on: pd.Series) -> np.ndarray:
    """The rate of each (currency, day): the latest rate_date on or before it."""
    want = pd.DataFrame({"currency": currency.values, "on": on.values.astype("datetime64[ns]"),
                         "i": np.arange(len(on))}).sort_values("on")
    known = fx.assign(on=fx.rate_date.values.astype("datetime64[ns]")).sort_values("on")
    got = pd.merge_asof(want, known[["on", "currency", "rate"]], on="on", by="currency")
    return np.where(currency.values == base, 1.0, got.sort_values("i").rate.to_numpy())


def base_total(amounts: pd.Series, periods: pd.Series, currency: pd.Series,
               rates: dict[str, Fraction]) -> Fraction:
    """Σ amount / periods × the currency's rate, exactly (rows without a rate left out)."""
    sums = pd.DataFrame({"x": amounts, "n": periods, "ccy": currency}).groupby(["n", "ccy"]).x.sum()
    return sum((Fraction(int(x)) / (int(n) * U) * rates[ccy]
                for (n, ccy), x in sums.items() if ccy in rates), Fraction(0))


def billing_periods(c: pd.DataFrame, as_of) -> pd.DataFrame:
    """Every period begun by the as-of date (the contract's row, its start, its order) and
    each contract's periods per term (column ``per_term``)."""
    start, end = day(c.contract_start), day(c.contract_end)
    step = c.billing_frequency.map(STEP).to_numpy()
    one_time = step == 0
    after_end = end + DAY
    first_of = lambda d: d.astype("datetime64[M]").astype("datetime64[D]")  # noqa: E731
    span = (after_end.astype("datetime64[M]").astype("int64")
            - start.astype("datetime64[M]").astype("int64")
            - ((after_end - first_of(after_end)) < (start - first_of(start))))
    whole_months = add_months(start, span) == after_end
    term_days = (after_end - start).astype("int64")
    last_k = np.where(one_time, 0, span // np.maximum(step, 1) + 1)
    per_term = np.ones(len(c), dtype="int64")
    for k in range(1, int(last_k.max(initial=0)) + 1):
        per_term += (k <= last_k) & ~one_time & (add_months(start, k * step) <= end)
    auto = c.auto_renew.to_numpy() & ~one_time  # one_time is billed once (never renews)
    since = np.maximum((np.datetime64(as_of) - start).astype("int64"), 0)
    terms = np.where(auto, since // term_days + 3, 1)
    row = np.repeat(np.arange(len(c)), terms)
    j = np.arange(len(row)) - np.repeat(np.cumsum(terms) - terms, terms)
    term_start = np.where(whole_months[row], add_months(start[row], j * span[row]),
                          start[row] + j * term_days[row])
    keep = (j == 0) | (term_start <= np.datetime64(as_of))
    row, term_start = row[keep], term_start[keep]
    n = per_term[row]
    period_row = np.repeat(row, n)
    k = np.arange(len(period_row)) - np.repeat(np.cumsum(n) - n, n)
    period_start = add_months(np.repeat(term_start, n), k * step[period_row])
    p = pd.DataFrame({"row": period_row, "period_start": period_start})
    p = p[p.period_start <= np.datetime64(as_of)].sort_values(["row", "period_start"])
    p["order"] = p.groupby("row").cumcount()
    c["per_term"] = per_term
    return p


def booked_vs_billed(a) -> list[dict]:
    rules = a.rules
    as_of, end = np.datetime64(a.as_of), pd.Timestamp(peer_args.as_of_end(a.as_of, a.timezone))
    lag, grace = int(rules["billing_lag_days"]), int(rules["renewal_grace_days"])
    pct, minimum = float(rules["tolerance_pct"]), float(rules["tolerance_min"]) * U
    opp = read(a.books, "opportunities",
               text=("opportunity_id", "customer_id", "stage", "currency", "billing_frequency",
                     "auto_renew", "renewal_of"),
               money=("amount",), days=("contract_start", "contract_end"),
               moments=("created_at", "closed_at"))
    won = opp[opp.stage == "closed_won"]
    c = won[(won.contract_start <= as_of) & (won.closed_at.isna() | (won.closed_at < end))]
    c = c.reset_index(drop=True)
    c["auto_renew"] = c.auto_renew.str.lower().eq("true")
    periods = billing_periods(c, a.as_of)
    periods["due"] = periods.period_start + lag * DAY <= as_of
    counts = periods.groupby("row").agg(started=("due", "size"), due=("due", "sum"))
    c["started_n"] = counts.started.reindex(c.index, fill_value=0).to_numpy()
    c["due_n"] = counts.due.reindex(c.index, fill_value=0).to_numpy()

    # billed: net lines of the contract's non-draft, non-void invoices issued by the as-of date
    fx = fx_rates(a.books)
    invoices = read(a.books, "invoices",
                    text=("invoice_id", "opportunity_id", "currency", "status", "kind"),
                    days=("issue_date",))
    invoices = invoices[~invoices.status.isin(["draft", "void"])
                        & (invoices.issue_date <= as_of)]
    invoices = invoices.merge(won[["opportunity_id", "currency"]], on="opportunity_id",
                              suffixes=("", "_contract"))
    lines = read(a.books, "invoice_lines", text=("invoice_id",), money=("amount",))
    lines = lines[lines.invoice_id.isin(invoices.invoice_id)]
    net = lines.assign(credited=-lines.amount.abs()).groupby("invoice_id", as_index=False).agg(
        net=("amount", "sum"), credited=("credited", "sum"))
    invoices = invoices.merge(net, on="invoice_id")
    invoices["billed"] = np.where(invoices.kind == "credit_note", invoices.credited,
                                  invoices.net)
    converted = invoices.currency != invoices.currency_contract
    if converted.any():
        x = invoices[converted]
        invoices.loc[converted, "billed"] = x.billed.to_numpy() * (
            rate_at(fx, a.base_currency, x.currency, x.issue_date)
            / rate_at(fx, a.base_currency, x.currency_contract, x.issue_date))
    c["billed"] = (invoices.groupby("opportunity_id").billed.sum()
                   .reindex(c.opportunity_id, fill_value=0).to_numpy())
    renewed = set(opp.renewal_of[opp.renewal_of.notna() & (opp.created_at < end)])

    n = c.per_term
    c["due_x"], c["started_x"] = c.amount * c.due_n, c.amount * c.started_n  # × n: exact
    c["under_x"] = c.due_x - c.billed * n
    found = []
    u = c[100 * c.under_x > np.maximum(c.due_x * pct, 100 * minimum * n)]
    # days: from the due date of the oldest due period that billing (oldest first) left short
    p = periods[periods.due & periods.row.isin(u.index)].merge(
        c[["amount", "billed", "per_term"]], left_on="row", right_index=True)
    short = p[p.amount * (p.order + 1) - p.billed * p.per_term > (U // 200) * p.per_term]
    oldest = (short.groupby("row").period_start.min() + lag * DAY).reindex(u.index)
    gap = cents(u.under_x, u.per_term)
    for r, g, unbilled, expected, d in zip(
            u.itertuples(), gap, gap >= cents(u.amount, u.per_term), cents(u.due_x, u.per_term),
            (as_of - day(oldest.fillna(as_of))).astype(int), strict=True):
        found.append(_money_finding(r, "unbilled" if unbilled else "under_billed", "opportunity",
                                    r.opportunity_id, expected, cents(r.billed), g, d))
    over = 100 * (c.billed * n - c.started_x) > np.maximum(c.started_x * pct, 100 * minimum * n)
    o = c.assign(limit_x100=100 * c.started_x + np.maximum(c.started_x * pct,
                                                           100 * minimum * n))[over]
    billing = invoices.merge(o[["opportunity_id", "per_term", "limit_x100"]], on="opportunity_id")
    billing = billing.sort_values(["issue_date", "invoice_id"])
    billing["cumulative"] = billing.groupby("opportunity_id").billed.cumsum()
    pushed = billing[100 * billing.cumulative * billing.per_term > billing.limit_x100]
    since = pushed.groupby("opportunity_id").issue_date.min()
    for r in o.itertuples():
        found.append(_money_finding(
            r, "over_billed", "opportunity", r.opportunity_id, cents(r.started_x, r.per_term),
            cents(r.billed), cents(r.started_x - r.billed * r.per_term, r.per_term),
            (as_of - day(since.get(r.opportunity_id, as_of))).astype(int)))
    missed = c[~c.auto_renew & (c.billing_frequency != "one_time")
               & ~c.opportunity_id.isin(renewed) & (c.contract_end < as_of - grace * DAY)]
    for r in missed.itertuples():
        found.append(_money_finding(
            r, "renewal_miss", "opportunity", r.opportunity_id, cents(r.amount), 0,
            cents(r.amount), (as_of - day(r.contract_end) - (grace + 1) * DAY).astype(int)))
    rates = rates_on(fx, a.base_currency, as_of)
    return found + peer_args.portfolio(
        a, found, base_total(c.due_x, n, c.currency, rates),
        base_total(c.under_x.clip(lower=0), n, c.currency, rates))


def billed_vs_collected(a) -> list[dict]:
    rules = a.rules
    as_of, end = np.datetime64(a.as_of), pd.Timestamp(peer_args.as_of_end(a.as_of, a.timezone))
    pct, minimum = float(rules["tolerance_pct"]), float(rules["tolerance_min"]) * U
    invoices = read(a.books, "invoices",
                    text=("invoice_id", "customer_id", "currency", "status", "kind"),
                    days=("issue_date", "due_date"))
    invoices = invoices[invoices.kind.fillna("invoice").eq("invoice")
                        & ~invoices.status.isin(["draft", "void"])
                        & (invoices.issue_date <= as_of) & (invoices.due_date < as_of)]
    lines = read(a.books, "invoice_lines", text=("invoice_id",), money=("amount",))
    billed = lines[lines.invoice_id.isin(invoices.invoice_id)].groupby(
        "invoice_id", as_index=False).agg(billed=("amount", "sum"))
    b = invoices.merge(billed, on="invoice_id")
    payments = read(a.books, "payments",
                    text=("payment_id", "invoice_id", "customer_id", "currency", "status"),
                    money=("amount",), moments=("attempted_at",))
    payments = payments[payments.attempted_at < end]
    applied = payments[payments.invoice_id.notna()]
    per_invoice = applied.assign(
        collected=applied.amount.where(applied.status == "succeeded", 0),
        disputed=applied.status == "disputed", failed=applied.status == "failed",
    ).groupby("invoice_id", as_index=False).agg(
        collected=("collected", "sum"), disputed=("disputed", "any"), failed=("failed", "any"))
    b = b.merge(per_invoice, on="invoice_id", how="left")
    b["collected"] = b.collected.fillna(0)
    b["disputed"], b["failed"] = b.disputed.eq(True), b.failed.eq(True)
    b["outstanding"] = b.billed - b.collected

    u = b[100 * b.outstanding > np.maximum(b.billed * pct, 100 * minimum)]
    category = np.select([u.disputed, u.failed & (u.collected == 0), u.collected > 0],
                         ["disputed", "payment_failed", "short_paid"], "unpaid")
    found = [_money_finding(r, cat, "invoice", r.invoice_id, e, ac, g, d)
             for r, cat, e, ac, g, d in zip(
                 u.itertuples(), category, cents(u.billed), cents(u.collected),
                 cents(u.outstanding), (as_of - day(u.due_date)).astype(int), strict=True)]
    unapplied = payments[payments.invoice_id.isna() & (payments.status == "succeeded")]
    paid_on = unapplied.attempted_at.dt.tz_convert(a.timezone).dt.tz_localize(None)
    found += [_money_finding(r, "unapplied_cash", "payment", r.payment_id, g, 0, g, d)
              for r, g, d in zip(unapplied.itertuples(), cents(unapplied.amount),
                                 (as_of - day(paid_on)).astype(int), strict=True)]
    rates = rates_on(fx_rates(a.books), a.base_currency, as_of)
    return found + peer_args.portfolio(
        a, found, base_total(b.billed, 1, b.currency, rates),
        base_total(np.minimum(b.collected, b.billed), 1, b.currency, rates))


def _money_finding(r, category: str, entity_type: str, entity_id: str, expected: int,
                   actual: int, gap: int, days: int) -> dict:
    return {"category": category, "entity_type": entity_type, "entity_id": entity_id,
            "customer_id": r.customer_id, "currency": r.currency,
            "expected_amount": peer_args.cents_text(int(expected)),
            "actual_amount": peer_args.cents_text(int(actual)),
            "gap_amount": peer_args.cents_text(int(gap)), "days_outstanding": int(days)}


def findings(a) -> list[dict]:
    """What the check finds in the books of ``a`` (peer_args' command line)."""
    return (booked_vs_billed if a.check == "booked_vs_billed_daily" else billed_vs_collected)(a)


def main() -> None:
    a = peer_args.parse(__doc__.splitlines()[0])
    peer_args.write(a.out, findings(a))


if __name__ == "__main__":
    main()
