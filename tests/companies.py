"""Many small companies for property tests: hypothesis strategies that write whole books
(every table of contract §2) for a company's year, with the seams real companies have —
billing cadences (monthly on the 1st, quarterly from mid-month, annual, one-time,
auto-renewals and renewal deals), currencies and invoices in another currency than their
contract, late, early, skipped, partial, duplicate, draft and void invoices, credit notes,
partial, failed, pending, refunded and disputed payments, unapplied cash, bank deposits (late
or missing), general-ledger postings, rate-card changes, promotions, discount approvals and
inbound demand worked (or not) through the funnel.

The generator plants nothing on purpose and knows no rule: what each check should find is
the oracle's business (tests/oracle). It only keeps the books valid (nothing is quarantined)
and delivered (every source a check reads has rows).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from dateutil.relativedelta import relativedelta
from hypothesis import strategies as st

from tests.books import Books

YEAR_START, YEAR_END = date(2025, 1, 1), date(2025, 12, 31)  # the year the checks look at
HISTORY_START = date(2024, 1, 1)  # rate cards and exchange rates from here
BASE_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP")
# rate_to_base values: powers of 2 and 5, so an invoice in another currency than its contract
# can carry an amount that converts to whole cents whatever the conversion rounds
RATES = {"EUR": ("1.25", "1", "0.8", "1.6"), "GBP": ("1.25", "1.6", "2", "1.28")}
LIST_PRICES = {"PLAN": ("120.00", "99.50"), "SEAT": ("25.00", "12.75"),
               "SUPPORT": ("300.00", "250.00"), "SETUP": ("500.00", "1250.00")}
OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)),
           timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
CHANNELS = ("phone", "web_form", "chat", "whatsapp", "email", "marketplace", "referral",
            "walk_in", "outbound")
OPEN_STAGES = ("new", "qualified", "meeting", "proposal", "negotiation")
STEP_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}
TIMEZONES = ("UTC", "America/New_York", "Asia/Kolkata")
TEAMS = ("Inbound Desk", "SMB Sales", "Mid-Market", "Enterprise")
LOST_REASONS = ("lost_to_competitor", "no_decision", "no_budget", "unresponsive", "other", "")
SOURCES = ("", "", "google_ads", "webinar", "partner")


def money(value: Fraction | Decimal | int) -> str:
    """A money text rounded half up to the cent (the line arithmetic the loader checks)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass(repr=False)
class Company:
    """A company's books and the days worth judging them on (when something changed)."""

    books: Books
    days: set[date] = field(default_factory=set)
    contract_ends: set[date] = field(default_factory=set)
    period_starts: set[date] = field(default_factory=set)
    busy_weeks: set[date] = field(default_factory=set)  # Mondays of weeks with inbound demand

    def __repr__(self) -> str:
        return "Company(" + ", ".join(f"{t}={len(r)}" for t, r in self.books.rows.items()
                                      if r) + ")"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints the summary only
        printer.text(repr(self))

    def describe(self) -> str:
        """The books as compact CSV-like text, for a falsifying example's report."""
        out = []
        for table, rows in self.books.rows.items():
            for row in rows:
                values = ",".join(f"{k}={v}" for k, v in row.items() if v not in ("", None))
                out.append(f"{table}: {values}")
        return "\n".join(out)


class _Builder:
    """Draws one company's books, table by table; ids are sequential per table."""

    def __init__(self, draw):
        self.draw = draw
        self.company = Company(Books())
        self.rows = self.company.books.rows
        self.counters: dict[str, int] = {}
        self.rates: dict[str, list[tuple[date, str]]] = {}

    # ---- small helpers -----------------------------------------------------------------
    def next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{self.counters[prefix]:04d}"

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < int(p * 100)

    def late(self, sloppy: float, on_time: tuple, slow: tuple):
        """One of the slow options as often as the team is sloppy, else an on-time one."""
        return self.pick(slow if self.chance(sloppy) else on_time)

    def between(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def day_in(self, first: date, last: date) -> date:
        return first + timedelta(days=self.between(0, (last - first).days))

    def stamp(self, on: date | datetime) -> str:
        """A timestamp at that moment (or at a random time of that UTC day), written with a
        random offset."""
        if not isinstance(on, datetime):
            on = datetime(on.year, on.month, on.day, tzinfo=UTC) + timedelta(
                hours=self.between(0, 23), minutes=self.between(0, 59))
        return on.astimezone(self.pick(OFFSETS)).isoformat()

    def rate(self, currency: str, on: date) -> Fraction:
        if currency == BASE_CURRENCY:
            return Fraction(1)
        return Fraction(max((d, r) for d, r in self.rates[currency] if d <= on)[1])

    # ---- reference data ----------------------------------------------------------------
    def fx_rates(self) -> None:
        for ccy, choices in RATES.items():
            points = [(HISTORY_START, self.pick(choices))]
            for _ in range(self.between(0, 3)):
                points.append((self.day_in(date(2024, 6, 1), YEAR_END), self.pick(choices)))
            self.rates[ccy] = sorted(dict(points).items())
            for d, r in self.rates[ccy]:
                self.rows["fx_rates"].append({"currency": ccy, "rate_date": d.isoformat(),
                                              "rate_to_base": r})

    def rate_cards(self) -> None:
        self.cards: dict[tuple[str, str], list[tuple[date, date | None, str]]] = {}
        for sku, prices in LIST_PRICES.items():
            for ccy in CURRENCIES:
                if ccy != BASE_CURRENCY and self.chance(0.15):
                    continue  # no price for this SKU in that currency
                price = Decimal(self.pick(prices))
                periods, start = [], HISTORY_START
                for _ in range(self.between(0, 2)):  # price changes
                    earliest = max(start + timedelta(days=30), date(2024, 9, 1))
                    if earliest > YEAR_END:
                        break
                    change = self.day_in(earliest, YEAR_END)
                    periods.append((start, change - timedelta(days=1), money(price)))
                    price = price * Decimal(self.pick(("1.10", "1.05", "0.90", "1.20")))
                    start = change
                periods.append((start, None, money(price)))
                self.cards[(sku, ccy)] = periods
                for frm, to, p in periods:
                    self.rows["rate_cards"].append({
                        "sku": sku, "currency": ccy, "list_price": p,
                        "effective_from": frm.isoformat(),
                        "effective_to": to.isoformat() if to else ""})

    def list_price(self, sku: str, ccy: str, on: date) -> tuple[str | None, str | None]:
        """The list price in force on a day and the one before it (None when there is none)."""
        periods = self.cards.get((sku, ccy), [])
        now = next((p for f, t, p in periods if f <= on and (t is None or on <= t)), None)
        before = next((p for f, t, p in reversed(periods) if t is not None and t < on), None)
        return now, before

    def promotions(self) -> None:
        for n in range(self.between(0, 3)):
            start = self.day_in(date(2024, 10, 1), date(2025, 10, 31))
            self.rows["promotions"].append({
                "promo_code": f"PROMO{n + 1}", "discount_pct": self.pick(("5", "10", "20", "25")),
                "valid_from": start.isoformat(),
                "valid_to": (start + timedelta(days=self.between(14, 240))).isoformat(),
                "stackable": self.pick(("true", "false"))})

    def approvals(self) -> None:
        for _ in range(self.between(0, 2)):
            start = self.day_in(date(2024, 6, 1), date(2025, 9, 30))
            self.rows["discount_approvals"].append({
                "approval_id": self.next_id("A"),
                "customer_id": self.pick([c["customer_id"] for c in self.rows["customers"]]),
                "sku": self.pick(("", "PLAN", "SEAT", "SUPPORT")),
                "max_discount_pct": self.pick(("10", "20", "30")), "approved_by": "CFO",
                "valid_from": start.isoformat(),
                "valid_to": "" if self.chance(0.4) else (
                    start + timedelta(days=self.between(30, 300))).isoformat()})

    # ---- customers, deals, invoices ----------------------------------------------------
    def customer(self, n: int) -> dict:
        c = {"customer_id": f"C{n}", "name": f"Customer {n}",
             "segment": self.pick(("smb", "mid", "enterprise")), "region": self.pick(("na", "eu")),
             "currency": self.pick(CURRENCIES), "created_at": self.stamp(date(2023, 6, 1)),
             "terms": self.pick((0, 7, 14, 30))}
        self.rows["customers"].append({k: v for k, v in c.items() if k != "terms"})
        return c

    def priced_line(self, sku: str, ccy: str, on: date, qty: str) -> dict:
        """A line as a billing clerk might write it on that day: mostly right, sometimes an old
        or a wrong price, a discount, a promotion (valid or not, stacked or not)."""
        now, before = self.list_price(sku, ccy, on)
        price = Decimal(now or self.pick(LIST_PRICES[sku]))
        how = self.pick(("list",) * 6 + ("old", "wrong"))
        if how == "old" and before:
            price = Decimal(before)
        elif how == "wrong":
            price += Decimal(self.pick(("-10.00", "5.00", "0.01")))
        discount, promo = "", ""
        kind = self.pick(("none",) * 5 + ("discount", "promo", "promo+", "promo+", "unknown"))
        promos = self.rows["promotions"]
        if kind == "discount":
            discount = self.pick(("5", "10", "15", "20", "30", "12.5"))
        elif kind in ("promo", "promo+") and promos:
            p = self.pick(promos)
            promo = p["promo_code"]
            discount = str(Decimal(p["discount_pct"]) + (5 if kind == "promo+" else 0))
        elif kind == "unknown":
            promo, discount = "NOSUCHCODE", "10"
        amount = Decimal(qty) * price * (1 - Decimal(discount or 0) / 100)
        return {"sku": sku, "quantity": qty, "unit_price": money(price),
                "discount_pct": discount, "promo_code": promo, "amount": money(amount)}

    def invoice(self, customer: dict, issued: date, lines: list[dict], *, currency: str,
                opportunity_id: str = "", status: str | None = None, kind: str = "invoice",
                period: tuple[date, date] | None = None) -> dict:
        inv = {"invoice_id": self.next_id("I"), "customer_id": customer["customer_id"],
               "opportunity_id": opportunity_id, "issue_date": issued.isoformat(),
               "due_date": (issued + timedelta(days=customer["terms"])).isoformat(),
               "currency": currency,
               "status": status or self.pick(("paid", "paid", "open", "open", "uncollectible")),
               "period_start": period[0].isoformat() if period else "",
               "period_end": period[1].isoformat() if period else "", "kind": kind}
        self.rows["invoices"].append(inv)
        for n, line in enumerate(lines, 1):
            if kind == "credit_note":
                line = {**line, "amount": str(-abs(Decimal(line["amount"])))}
            self.rows["invoice_lines"].append({"invoice_id": inv["invoice_id"], "line_no": n,
                                               **line})
        self.company.days.add(issued)
        self.company.days.add(date.fromisoformat(inv["due_date"]))
        return inv

    def contract(self, customer: dict, renewal_of: dict | None = None) -> None:
        ccy = customer["currency"]
        if renewal_of:
            frequency = renewal_of["billing_frequency"]
            start = date.fromisoformat(renewal_of["contract_end"]) + timedelta(days=1)
        else:
            frequency = self.pick(("monthly", "monthly", "quarterly", "annual", "one_time"))
            month = date(2024, 6, 1) + relativedelta(months=self.between(0, 17))
            start = {"monthly": month, "quarterly": month.replace(day=15)}.get(
                frequency, self.day_in(date(2024, 3, 1), date(2025, 11, 30)))
            if self.chance(0.1):  # month-end starts: Jan 31 + 1 month = Feb 28
                start = month.replace(day=min(self.pick((28, 29, 30, 31)),
                                              calendar.monthrange(month.year, month.month)[1]))
        months = self.pick({"monthly": (1, 3, 6, 12, 12, 24), "quarterly": (6, 12, 12),
                            "annual": (12, 24), "one_time": (1, 12)}[frequency])
        end = start + relativedelta(months=months) - timedelta(days=1)
        if self.chance(0.1):  # a term that is not whole months
            end = start + timedelta(days=self.pick((45, 100, 200, 365)) - 1)
        auto = self.chance(0.1 if frequency == "one_time" else 0.35)
        plan = [(sku, self.pick(("1", "2", "5", "1.5")), self.pick(("", "", "10", "20")))
                for sku in self.draw(st.lists(st.sampled_from(("PLAN", "SEAT", "SUPPORT")),
                                              min_size=1, max_size=2, unique=True))]
        priced = []
        for sku, qty, discount in plan:
            price = Decimal(self.list_price(sku, ccy, start)[0] or self.pick(LIST_PRICES[sku]))
            priced.append({"sku": sku, "quantity": qty, "unit_price": money(price),
                           "discount_pct": discount, "promo_code": "",
                           "amount": money(Decimal(qty) * price
                                           * (1 - Decimal(discount or 0) / 100))})
        per_period = sum(Decimal(p["amount"]) for p in priced)
        n = 1
        if frequency != "one_time":
            while start + relativedelta(months=n * STEP_MONTHS[frequency]) <= end:
                n += 1
        amount = per_period * n + Decimal(self.pick(("0",) * 6 + ("-0.01", "25.00", "-100.00")))
        if amount <= 0:
            amount = per_period * n
        closed = start - timedelta(days=self.between(0, 20))
        if self.chance(0.15):  # booked after it started
            closed = start + timedelta(days=self.between(1, 40))
        opp = self.opportunity(customer, created=datetime.combine(
            closed - timedelta(days=self.between(5, 60)), datetime.min.time(), UTC)
            + timedelta(hours=self.between(0, 23)), stage="closed_won", signal=None)
        opp.update({"amount": money(amount), "currency": ccy, "closed_at": self.stamp(closed),
                    "close_reason": "won", "contract_start": start.isoformat(),
                    "contract_end": end.isoformat(), "billing_frequency": frequency,
                    "auto_renew": "true" if auto else "false",
                    "renewal_of": renewal_of["opportunity_id"] if renewal_of else ""})
        self.company.contract_ends.add(end)
        self.bill(customer, opp, start, end, frequency, auto, priced)
        if not auto and not renewal_of and self.chance(0.35):
            stage = self.pick(OPEN_STAGES + ("closed_lost", "closed_won"))
            if stage == "closed_won":
                self.contract(customer, renewal_of=opp)
            else:
                renewal = self.opportunity(customer, created=datetime.combine(
                    end + timedelta(days=self.between(-60, 60)), datetime.min.time(),
                    UTC), stage=stage, signal=None)
                renewal["renewal_of"] = opp["opportunity_id"]

    def bill(self, customer: dict, opp: dict, start: date, end: date, frequency: str,
             auto: bool, plan: list[dict]) -> None:
        """Invoices for each period of a contract through the year, each billed in one of the
        ways billing goes right or wrong."""
        ccy, opp_id = opp["currency"], opp["opportunity_id"]
        step = STEP_MONTHS.get(frequency)
        k = 0
        while True:
            period_start = start + relativedelta(months=k * step) if step else start
            if period_start > YEAR_END or (not auto and period_start > end) or (
                    not step and k > 0):
                break
            k += 1
            self.company.period_starts.add(period_start)
            period_end = (period_start + relativedelta(months=step) if step
                          else end + timedelta(days=1)) \
                - timedelta(days=1)
            how = self.pick(("normal",) * 8 + ("skip", "partial", "double", "late", "early",
                                               "other_currency", "draft", "void", "credit",
                                               "list_price"))
            issued = period_start + timedelta(days={
                "late": self.between(20, 70), "early": -self.between(1, 20)}.get(
                how, self.between(0, 3)))
            if how == "skip" or issued > YEAR_END:
                continue
            lines = [dict(line) for line in plan]
            if how == "partial":
                lines = [lines[0] | {"quantity": "1", "discount_pct": "50",
                                     "amount": money(Decimal(lines[0]["unit_price"]) / 2)}]
            elif how == "list_price":  # billed at the rate card of the day, not the deal's price
                lines = [self.priced_line(line["sku"], ccy, issued, line["quantity"])
                         for line in lines]
            kwargs = {"currency": ccy, "opportunity_id": opp_id,
                      "period": (period_start, period_end)}
            if how == "other_currency":
                # an amount whole in cents in both currencies at the issue date's rates:
                # units·q in the invoice's currency is units·p in the contract's
                other = self.pick([c for c in CURRENCIES if c != ccy])
                ratio = self.rate(other, issued) / self.rate(ccy, issued)
                total = sum(Fraction(Decimal(line["amount"])) for line in lines) * 100
                units = max(1, round(total / ratio.numerator))
                billed = money(Fraction(units * ratio.denominator, 100))
                lines = [{"sku": lines[0]["sku"], "quantity": "1", "unit_price": billed,
                          "discount_pct": "", "promo_code": "", "amount": billed}]
                kwargs["currency"] = other
            status = {"draft": "draft", "void": "void"}.get(how)
            self.invoice(customer, issued, lines, status=status, **kwargs)
            if how in ("draft", "void") and self.chance(0.5):
                self.invoice(customer, issued + timedelta(days=self.between(1, 10)),
                             [dict(line) for line in plan], **kwargs)
            if how == "double":
                self.invoice(customer, issued + timedelta(days=self.between(0, 5)),
                             [dict(line) for line in plan], **kwargs)
            if how == "credit":
                share = Decimal(self.pick(("1", "0.5", "0.1")))
                first = lines[0]
                self.invoice(customer, issued + timedelta(days=self.between(1, 30)),
                             [first | {"amount": money(Decimal(first["amount"]) * share),
                                       "quantity": str(Decimal(first["quantity"]) * share),
                                       "discount_pct": first["discount_pct"]}],
                             status="paid", kind="credit_note", **kwargs)

    def one_off_invoices(self, customer: dict, count: int) -> None:
        for _ in range(count):
            issued = self.day_in(date(2024, 9, 1), YEAR_END)
            lines = [self.priced_line(sku, customer["currency"], issued,
                                      self.pick(("1", "2", "3", "0.5")))
                     for sku in self.draw(st.lists(st.sampled_from(tuple(LIST_PRICES)),
                                                   min_size=1, max_size=3, unique=True))]
            self.invoice(customer, issued, lines, currency=customer["currency"])

    # ---- collections, bank, ledger -----------------------------------------------------
    def settle(self) -> None:
        totals: dict[str, Decimal] = {}
        for line in self.rows["invoice_lines"]:
            totals[line["invoice_id"]] = totals.get(line["invoice_id"], Decimal(0)) + Decimal(
                line["amount"])
        for inv in list(self.rows["invoices"]):
            if inv["kind"] != "invoice" or inv["status"] in ("draft", "void"):
                continue
            total, due = totals[inv["invoice_id"]], date.fromisoformat(inv["due_date"])
            how = self.pick(("full",) * 5 + ("late", "partial", "failed_then_paid", "failed",
                                             "pending", "refunded", "disputed", "none", "over"))
            if how == "none" and not self.rows["payments"]:
                how = "full"  # the payments export is never empty
            when = due + timedelta(days=self.between(-5, 3))
            if how in ("late", "failed_then_paid"):
                if how == "failed_then_paid":
                    self.pay(inv, total, when, "failed")
                when = due + timedelta(days=self.between(5, 45))
            amount = {"partial": total * Decimal(self.pick(("0.5", "0.9", "0.995"))),
                      "over": total + Decimal("20.00")}.get(how, total)
            status = {"failed": "failed", "pending": "pending", "refunded": "refunded",
                      "disputed": "disputed"}.get(how, "succeeded")
            if how != "none":
                self.pay(inv, amount, when, status)
            self.post(inv, total)
        for _ in range(self.between(0, 2)):  # cash nobody applied to an invoice
            customer = self.pick(self.rows["customers"])
            self.pay({"invoice_id": "", "customer_id": customer["customer_id"],
                      "currency": customer["currency"]},
                     Decimal(self.pick(("150.00", "999.99"))),
                     self.day_in(date(2024, 11, 1), YEAR_END),
                     self.pick(("succeeded", "succeeded", "failed")))
        self.rows["bank_transactions"].append({  # a bank fee: the statement is never empty
            "txn_id": self.next_id("T"), "booked_date": self.day_in(YEAR_START, YEAR_END)
            .isoformat(), "amount": "-12.00", "currency": BASE_CURRENCY, "reference": "",
            "counterparty": "Bank"})

    def pay(self, inv: dict, amount: Decimal, on: date, status: str) -> None:
        payment = {"payment_id": self.next_id("P"), "invoice_id": inv["invoice_id"],
                   "customer_id": inv["customer_id"], "amount": money(amount),
                   "currency": inv["currency"], "attempted_at": self.stamp(on),
                   "status": status, "failure_code": "card_declined" if status == "failed" else "",
                   "method": self.pick(("card", "ach", "wire"))}
        self.rows["payments"].append(payment)
        self.company.days.add(on)
        if status == "succeeded" and self.chance(0.85):
            reference = payment["payment_id"] if not inv["invoice_id"] or self.chance(0.8) \
                else inv["invoice_id"]
            self.rows["bank_transactions"].append({
                "txn_id": self.next_id("T"),
                "booked_date": (on + timedelta(days=self.between(0, 8))).isoformat(),
                "amount": payment["amount"], "currency": payment["currency"],
                "reference": reference, "counterparty": inv["customer_id"]})

    def post(self, inv: dict, total: Decimal) -> None:
        """Revenue recognized for an invoice: at issue, spread over months, or not at all."""
        if self.chance(0.15) and self.rows["gl_entries"]:
            return
        issued = date.fromisoformat(inv["issue_date"])
        parts = self.pick((1, 1, 2, 3))
        share = (total / parts).quantize(Decimal("0.01"))
        for k in range(parts):
            amount = share if k < parts - 1 else total - share * (parts - 1)
            self.rows["gl_entries"].append({
                "entry_id": self.next_id("G"),
                "posted_date": (issued + relativedelta(months=k)).isoformat(),
                "account": "revenue", "customer_id": inv["customer_id"],
                "invoice_id": inv["invoice_id"], "amount": str(amount),
                "currency": inv["currency"]})
        if self.chance(0.2):
            self.rows["gl_entries"].append({
                "entry_id": self.next_id("G"), "posted_date": issued.isoformat(),
                "account": "accounts_receivable", "customer_id": inv["customer_id"],
                "invoice_id": inv["invoice_id"], "amount": str(total),
                "currency": inv["currency"]})

    # ---- demand ------------------------------------------------------------------------
    def opportunity(self, customer: dict | None, created: datetime, stage: str,
                    signal: dict | None, sloppy: float = 0.3) -> dict:
        """An opportunity as a CRM keeps it (a closed_won one gets its contract from the
        caller); open deals often carry an amount, sometimes in a currency without a rate."""
        opp = {"opportunity_id": self.next_id("O"),
               "customer_id": customer["customer_id"] if customer else "",
               "signal_id": signal["signal_id"] if signal else "",
               "created_at": self.stamp(created),
               "channel": signal["channel"] if signal else self.pick(CHANNELS),
               "intent": signal["intent"] if signal else self.pick(("high", "medium", "low")),
               "team": self.pick(TEAMS + ("",)), "owner": self.pick(("", "", "Dev Patel")),
               "stage": stage, "amount": "", "currency": "",
               "expected_close_date": "" if self.chance(0.2) else (
                   created.date() + timedelta(days=self.between(0, 60))).isoformat(),
               "closed_at": "", "close_reason": "", "contract_start": "", "contract_end": "",
               "billing_frequency": "", "auto_renew": "", "renewal_of": "",
               "source": self.pick(SOURCES)}
        if stage != "closed_won" and self.chance(0.5):
            opp["amount"] = self.pick(("1000.00", "2500.00", "12000.00", "0.03"))
            opp["currency"] = self.pick(CURRENCIES + ("JPY",))  # JPY: no exchange rate
        if stage == "closed_lost":
            opp["close_reason"] = self.pick(LOST_REASONS)
            if self.chance(0.85):  # else closed on a day nobody recorded
                opp["closed_at"] = self.stamp(created + timedelta(
                    days=self.between(0, 120), hours=self.between(0, 23)))
        self.rows["opportunities"].append(opp)
        self.work(opp, created, sloppy)
        return opp

    def work(self, opp: dict, created: datetime, sloppy: float) -> None:
        """The events a sales team logs on an opportunity: assignment (with or without a note
        on reassignment), auto-acks, first responses, touches, next steps (some falling due
        unanswered), stage changes and notes — on time, late or never; the sloppier the
        week, the more often late or never."""
        events = []

        if not self.chance(sloppy / 2) or not self.rows["opportunity_events"]:
            assigned = created + timedelta(
                minutes=self.late(sloppy, (-30, 5), (60, 90, 230, 240, 250, 600)))
            team = self.pick(TEAMS + ("",))
            events.append(("assigned", assigned, {"team": team}))
            if self.chance(0.25):
                events.append(("reassigned", assigned + timedelta(hours=3), {
                    "team": self.pick(TEAMS),
                    "has_note": self.pick(("", "false")) if self.chance(sloppy) else "true"}))
            touches = [1, self.pick((20, 24, 48))] if not self.chance(sloppy) \
                else [self.pick((20, 49, 70))] * self.between(0, 1)
            for hours in touches + [self.pick((24 * 9, 24 * 40))] * self.between(0, 1):
                events.append(("touch", assigned + timedelta(hours=hours), {}))
            if not self.chance(sloppy):  # a next step agreed on the first calls
                at = assigned + timedelta(hours=self.pick((2, 23)))
                events.append(("next_step_set", at, {"next_step_due": self.stamp(
                    at + timedelta(days=self.pick((1, 3, 10, 30))))}))
        if self.chance(0.5):
            events.append(("auto_ack", created + timedelta(  # some nurture e-mails days on
                minutes=self.pick((1, 1, 70, 3 * 24 * 60, 10 * 24 * 60))), {}))
        if not self.chance(sloppy / 2):
            events.append(("first_response", created + timedelta(
                minutes=self.late(sloppy, (5, 5, 60), (30, 59, 60, 61, 180, 1500))), {}))
        for _ in range(self.between(0, 1)):
            at = created + (timedelta(hours=self.pick((2, 23, 47, 49))) if self.chance(0.5)
                            else timedelta(days=self.between(0, 40)))
            events.append(("next_step_set", at, {
                "next_step_due": self.stamp(at + timedelta(days=self.pick((1, 3, 10, 30))))}))
        if self.chance(0.3):
            events.append(("stage_changed", created + timedelta(days=self.between(1, 20)),
                           {"stage_to": self.pick(OPEN_STAGES[1:])}))
        if self.chance(0.2):
            events.append(("note", created + timedelta(days=self.between(0, 60)), {}))
        for kind, at, extra in events:
            self.event(opp, kind, at, **extra)

    def event(self, opp: dict, kind: str, at: datetime, **extra: str) -> None:
        self.rows["opportunity_events"].append({
            "event_id": self.next_id("E"), "opportunity_id": opp["opportunity_id"],
            "occurred_at": self.stamp(at), "event_type": kind, "actor": "rep", "team": "",
            "next_step_due": "", "stage_to": "", "has_note": "", **extra})

    def demand(self) -> None:
        """Busy weeks of inbound signals — one to three weeks in a row, the team often
        getting sloppier each week, some weeks crowded into one channel, intent and time of
        day that the team handles worse than the rest — captured as opportunities the same
        day, later or never, missed calls called back or not, contacts coming back; plus
        outbound opportunities with no signal."""
        for _ in range(self.between(1, 2)):
            first = YEAR_START + timedelta(days=7 * self.between(0, 51) - YEAR_START.weekday())
            sloppy = self.pick((0.1, 0.3))
            for n in range(self.pick((1, 2, 3))):
                self.busy_week(first + timedelta(weeks=n), min(0.9, sloppy + 0.3 * n))

    def busy_week(self, monday: date, sloppy: float) -> None:
        """One week's demand; with a focus, a third of it in one channel × intent × hour
        worked worse than the rest."""
        self.company.busy_weeks.add(monday)
        week = datetime.combine(monday, datetime.min.time(), UTC)
        focus = (self.pick(CHANNELS), self.pick(("high", "medium", "low")),
                 self.between(0, 7 * 24 - 1)) if self.chance(0.5) else None
        others = sloppy / 5 if focus else sloppy
        least = 5 if focus else 0 if self.rows["inbound_signals"] else 1
        for _ in range(self.between(least, 14 if focus else 8)):
            if focus and self.chance(0.35):
                channel, intent, hour = focus[0], focus[1], focus[2] + self.between(0, 2)
                care = min(0.9, sloppy + 0.4)
            else:
                channel, intent = self.pick(CHANNELS), self.pick(("high", "high", "medium", "low"))
                hour, care = self.between(0, 7 * 24 - 1), others
            received = week + timedelta(hours=hour, minutes=self.between(0, 59))
            contacts = [s["contact_key"] for s in self.rows["inbound_signals"]]
            signal = {"signal_id": self.next_id("S"), "received_at": self.stamp(received),
                      "channel": channel, "intent": intent,
                      "contact_key": self.pick(contacts) if contacts and self.chance(care)
                      else f"k{self.between(0, 99)}", "source": self.pick(SOURCES),
                      "answered": self.pick(("", "true", "false"))}
            self.rows["inbound_signals"].append(signal)
            capture = self.pick(("same_day", "later", "never")) if self.chance(care) \
                else "same_day"
            if capture == "never":
                continue
            created = received + (timedelta(minutes=self.late(care, (2,), (30, 300)))
                                  if capture == "same_day"
                                  else timedelta(days=self.between(1, 4)))
            customer = self.pick(self.rows["customers"]) if self.chance(0.3) else None
            opp = self.opportunity(customer, created, self.pick(OPEN_STAGES + ("closed_lost",)),
                                   signal, care)
            if self.chance(0.15):  # the contact came before, whole days ago to the minute
                back = timedelta(days=self.pick((1, 14, 30)))
                before = signal | {"signal_id": self.next_id("S"), "answered": "",
                                   "received_at": self.stamp(received - back)}
                self.rows["inbound_signals"].append(before)
                self.opportunity(None, created - back, self.pick(OPEN_STAGES), before, others)
            if signal["answered"] == "false" and not self.chance(care / 2):  # called back
                self.event(opp, "touch", received + timedelta(
                    minutes=self.late(care, (29, 30), (31, 59, 60, 61, 120, 121))))
        for _ in range(self.between(0, 2)):
            created = week + timedelta(hours=self.between(0, 7 * 24 - 1))
            self.opportunity(None, created, self.pick(OPEN_STAGES), None, others)


@st.composite
def companies(draw, max_customers: int = 4) -> Company:
    """A whole company's books: one customer and one contract up."""
    b = _Builder(draw)
    b.fx_rates()
    b.rate_cards()
    b.promotions()
    customers = [b.customer(n + 1) for n in range(b.between(1, max_customers))]
    b.approvals()
    for n, customer in enumerate(customers):
        for _ in range(b.between(1 if n == 0 else 0, 3)):
            b.contract(customer)
        b.one_off_invoices(customer, b.between(1 if n == 0 else 0, 2))
    b.settle()
    b.demand()
    return b.company
