"""Planting leaks and decoys in the demo company, each stating what it planted.

A customer carries at most one role: a leak of one category (at least a few of each, more at
larger scales) or a decoy, which sits just inside a rule and must not be found. The funnel's
checked week leaks in every zone and every named leak state, and a few older deals go stale.
Subscription drifts are planted last, on customers without a role, once every other book is
written: a contract of their own, with ids after everyone else's, so no other row moves.
Each planter records its leak for the manifest with the figures it set by construction; the
tests check every planted leak against an independent oracle of the checks' rules.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from revleak.demo import manifest
from revleak.demo.company import (
    DAY,
    RAISED_SKU,
    STEP,
    Book,
    Company,
    Contract,
    Invoice,
    Line,
    _day28,
    add_months,
)

LEAK_RATE = 0.005  # leaks per customer and category at larger scales
DECOY_RATE = 0.001
LEAKS = {  # category: (check, entity_type, minimum count at every scale)
    "unbilled": ("booked_vs_billed_daily", "opportunity", 3),
    "under_billed": ("booked_vs_billed_daily", "opportunity", 3),
    "over_billed": ("booked_vs_billed_daily", "opportunity", 3),
    "renewal_miss": ("booked_vs_billed_daily", "opportunity", 3),
    "unpaid": ("billed_vs_collected_weekly", "invoice", 2),
    "payment_failed": ("billed_vs_collected_weekly", "invoice", 2),
    "short_paid": ("billed_vs_collected_weekly", "invoice", 2),
    "disputed": ("billed_vs_collected_weekly", "invoice", 2),
    "unapplied_cash": ("billed_vs_collected_weekly", "payment", 2),
    "recognized_not_collected": ("recognized_vs_collected_quarterly", "invoice", 2),
    "payment_not_deposited": ("recognized_vs_collected_quarterly", "payment", 2),
    "expired_promo": ("pricing_drift_quarterly", "customer_sku", 2),
    "stacked_discount": ("pricing_drift_quarterly", "customer_sku", 2),
    "unapproved_discount": ("pricing_drift_quarterly", "customer_sku", 2),
    "grandfathered_rate": ("pricing_drift_quarterly", "customer_sku", 2),
    "price_mismatch": ("pricing_drift_quarterly", "customer_sku", 2),
    "subscription_drift": ("pricing_drift_quarterly", "contract_sku", 3),
    "stale_deal": ("funnel_leak_weekly", "opportunity", 2),
}
FUNNEL = "funnel_leak_weekly"
DRIFT = "subscription_drift"  # planted last (see the module's docstring)
# The pricing runs of the demo: the quarterly audit, and the change check a few days after the
# price rise (the quarter so far); a pricing leak is each one's whose window holds its lines.
PRICING = ("pricing_drift_quarterly", "pricing_drift_on_change")
ZONES = ("intake", "routing", "response", "follow_up", "close")
ZONE_STATES = {  # the named leak states of each zone, all seeded in the checked week
    "intake": ("never_captured", "captured_within_a_business_day",
               "captured_over_a_business_day_late", "missed_call_no_callback"),
    "routing": ("unassigned_past_limit", "reassigned_without_note", "duplicate", "ownerless"),
    "response": ("response_past_target", "auto_ack_only"),
    "follow_up": ("no_second_touch", "no_next_step", "next_step_overdue"),
    "close": ("past_expected_close", "silent_drop_off"),
}
DECOYS = {  # kind: check it must stay silent in
    "inside_billing_lag": "booked_vs_billed_daily",
    "within_tolerance": "booked_vs_billed_daily",
    "overbill_credited": "booked_vs_billed_daily",
    "renewal_grace": "booked_vs_billed_daily",
    "paid_in_two_parts": "billed_vs_collected_weekly",
    "deposit_in_transit": "recognized_vs_collected_quarterly",
    "approved_discount": "pricing_drift_quarterly",
    "promo_in_validity": "pricing_drift_quarterly",
}
ROLE_SKU = {"expired_promo": "CONS-HR", "stacked_discount": "ONB-PKG",
            "unapproved_discount": "CONS-HR", "grandfathered_rate": "TRN-DAY",
            "approved_discount": "CONS-HR", "promo_in_validity": "ONB-PKG"}
# Uncollected revenue older than this many days at the quarter's end is the quarterly check's
# too: the collection roles keep their invoice younger whenever the calendar allows.
OLD_REVENUE = 90

Planted = Callable[[], None]  # records a role's leak or decoy once the books are settled


class Seeded(Company):
    """The demo company with its leaks and decoys planted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runs = manifest.runs(self)
        self.leaks: list[dict] = []
        self.decoys: list[dict] = []
        self.stale_left = self.stalled_left = 0
        self.stalled_chance = 0.0
        self.drifting: dict[str, Book | None] = {}  # customer id → its profile, once written

    def _plan_roles(self) -> dict[int, tuple[str, int]]:
        """Which customers carry a leak or a decoy (one role each)."""
        plan = []
        for category, (check, _, _) in LEAKS.items():
            if check != FUNNEL and category != DRIFT:
                plan += [(category, k) for k in range(self._count(category))]
        for kind in DECOYS:
            plan += [(kind, k) for k in range(max(2, round(self.customers * DECOY_RATE)))]
        chosen = self.rng.sample(range(self.customers), len(plan))
        roles = dict(zip(chosen, plan, strict=True))
        free = [i for i in range(self.customers) if i not in roles]
        drifting = random.Random(f"{self.seed}:{DRIFT}").sample(free, self._count(DRIFT))
        self.drifting = dict.fromkeys(f"C{i + 1:06d}" for i in sorted(drifting))
        return roles

    def _count(self, category: str) -> int:
        return max(LEAKS[category][2], round(self.customers * LEAK_RATE))

    def _kept_off(self, kind: str, k: int) -> str:
        if kind == "price_mismatch":
            return "ONB-PKG" if k % 2 == 0 else "CONS-HR"
        return ROLE_SKU.get(kind, "")

    def _plant(self, book: Book, kind: str, k: int) -> Planted:
        return getattr(self, f"_role_{kind}")(book, k)

    def _record(self, book: Book, kind: str, planted: Planted | None) -> None:
        if planted:
            planted()
        elif book.cid in self.drifting:
            self.drifting[book.cid] = replace(book, renewed=set(), invoices=[], payments=[],
                                              unapplied=[])

    def _plant_last(self) -> None:
        for k, book in enumerate(self.drifting.values()):
            planted = self._role_subscription_drift(book, k)
            self._close_books(book)
            planted()
            self.out.flush()

    def _leak(self, book: Book, category: str, entity_id: str, **figures) -> None:
        """Record a planted leak of a customer, figures in cents."""
        check, entity_type, _ = LEAKS[category]
        self.leaks.append(manifest.leak(check, category, entity_type, entity_id, book.cid,
                                        self.runs[check]["as_of"], currency=book.ccy,
                                        **figures))

    def _decoy(self, book: Book, kind: str, entity_type: str, entity_id: str) -> None:
        self.decoys.append({"check": DECOYS[kind], "kind": kind, "entity_type": entity_type,
                            "entity_id": entity_id, "customer_id": book.cid})

    def zone_leaks(self) -> list[dict]:
        """The checked week's funnel zones, each leaking in every one of its named states."""
        as_of = self.runs[FUNNEL]["as_of"]
        return [manifest.leak(FUNNEL, zone, "zone", zone, None, as_of,
                              states=list(ZONE_STATES[zone])) for zone in ZONES]

    # the role's contract ---------------------------------------------------------------------

    def _role_lines(self, book: Book, freq: str, support: bool = False) -> list[Line]:
        """Base fee and seats (skus whose price never changes), optionally premium support."""
        months, ccy, on = STEP.get(freq, 1), book.ccy, self.as_of
        lines = [Line("PLAT-BASE", months, self._price("PLAT-BASE", ccy, on)),
                 Line("PLAT-SEAT", book.seats * months, self._price("PLAT-SEAT", ccy, on))]
        if support:
            lines.append(Line("SUP-PREM", months, self._price("SUP-PREM", ccy, on)))
        return lines

    def _role_contract(self, book: Book, start: date, freq: str, term: int,
                       lines: list[Line] | None = None) -> tuple[Contract, list[Invoice]]:
        c = self._contract(book, start, freq, term, offset=1,
                           lines=lines or self._role_lines(book, freq))
        invoices = self._bill(book, c)
        book.invoices += invoices
        return c, invoices

    def _months_before(self, days: int, months: int, anchor: date | None = None) -> date:
        return add_months(_day28((anchor or self.as_of) - timedelta(days=days)), -months)

    @staticmethod
    def _period(invoices: list[Invoice], start: date) -> Invoice:
        return next(inv for inv in invoices if inv.ps == start)

    @staticmethod
    def _collected(book: Book, inv: Invoice) -> int:
        return sum(p.amount for p in book.payments
                   if p.inv_id == inv.inv_id and p.status == "succeeded")

    # booked vs billed --------------------------------------------------------------------------

    def _role_unbilled(self, book: Book, k: int) -> Planted:
        """Billing stopped: the last one or two due periods (and after) never invoiced."""
        variant = k % 3
        missing = 1
        if variant == 0:  # from 40 days ago (due), or a month earlier too; the next not yet due
            start = self._months_before(40, 7)
            c, _ = self._role_contract(book, start, "monthly", 12)
            missing += (k // 3) % 2
            cut = add_months(start, 7 - (missing - 1))
        elif variant == 1:  # from 50 days ago; the next quarter not yet started
            start = self._months_before(50, 6)
            c, _ = self._role_contract(book, start, "quarterly", 12)
            cut = add_months(start, 6)
        else:  # the second year, from 60 days ago
            start = self._months_before(60, 12)
            c, _ = self._role_contract(book, start, "annual", 24)
            cut = add_months(start, 12)
        book.invoices = [inv for inv in book.invoices if inv.opp_id != c.opp_id or inv.ps < cut]
        return lambda: self._leak(book, "unbilled", c.opp_id,
                                  gap_amount=missing * c.per_period)

    def _ended_contract(self, book: Book, support: bool = False) -> tuple[Contract, list]:
        """A 12-month monthly contract that ended ~6 weeks ago; its renewal was lost."""
        c, invoices = self._role_contract(book, self._months_before(40, 12), "monthly", 12,
                                          self._role_lines(book, "monthly", support))
        self._renewal_opp(book, c, "closed_lost")
        return c, invoices

    def _role_under_billed(self, book: Book, k: int) -> Planted:
        """One invoice short: fewer seats billed, or the support line left off."""
        c, invoices = self._ended_contract(book, support=k % 2 == 1)
        target = invoices[5 - k % 2]
        before = sum(line.amount for line in target.lines)
        if k % 2 == 0:
            seats = target.lines[1]
            cut = max(2, seats.qty * 3 // 10)
            target.lines = [target.lines[0], replace(seats, qty=seats.qty - cut)]
        else:
            target.lines = target.lines[:2]
        short = before - sum(line.amount for line in target.lines)
        return lambda: self._leak(book, "under_billed", c.opp_id, gap_amount=short)

    def _role_over_billed(self, book: Book, k: int) -> Planted:
        """A period invoiced twice (and paid), or the next quarter billed in advance."""
        if k % 2 == 0:
            c, invoices = self._ended_contract(book)
            orig = invoices[6]
            extra = replace(orig, issue=orig.issue + timedelta(days=5),
                            due=orig.due + timedelta(days=5))
        else:
            start = self._months_before(70, 3)
            c, _ = self._role_contract(book, start, "quarterly", 12)
            ps, issue = add_months(start, 6), self.as_of - timedelta(days=10)
            extra = Invoice(c.opp_id, issue, issue + timedelta(days=book.terms), ps,
                            add_months(ps, 3) - DAY, c.lines, 3)
        book.invoices.append(extra)
        return lambda: self._leak(book, "over_billed", c.opp_id, gap_amount=-extra.net)

    def _role_renewal_miss(self, book: Book, k: int) -> Planted:
        """Ended, fully billed, not auto-renewing, and nobody opened a renewal."""
        variant = k % 3
        if variant == 0:
            c, _ = self._role_contract(book, self._months_before(50, 12), "monthly", 12)
        elif variant == 1:
            line = Line("CONS-HR", self._int(10, 40), self._price_now(book, "CONS-HR"))
            c, _ = self._role_contract(book, self._months_before(120, 3), "quarterly", 3,
                                       [line])
        else:
            c, _ = self._role_contract(book, self._months_before(100, 12), "annual", 12)
        return lambda: self._leak(book, "renewal_miss", c.opp_id, expected_amount=c.amount,
                                  actual_amount=0, gap_amount=c.amount)

    # collections and recognition ---------------------------------------------------------------

    def _collection_target(self, book: Book, days: int | None = None,
                           anchor: date | None = None, months: int = 5) -> Invoice:
        """The invoice of a running monthly contract for the period ``days`` before anchor.

        By default: past due by the checked Sunday, its revenue not yet 90 days old at the
        quarter's end (so only the weekly check sees it) whenever the calendar allows.
        """
        if days is None:
            latest = self.week_end - timedelta(days=35)
            anchor = min(latest, max(self.as_of - timedelta(days=60),
                                     self.q_end - timedelta(days=115)))
            days = 0
        start = self._months_before(days, months, anchor)
        c, invoices = self._role_contract(book, start, "monthly", 12)
        return self._period(invoices, add_months(start, months))

    def _uncollected(self, book: Book, category: str, pay: str) -> Planted:
        """A past-due invoice the customer pays in the ``pay`` way, not in full."""
        target = self._collection_target(book)
        target.pay = pay
        return lambda: self._not_collected(book, category, target)

    def _not_collected(self, book: Book, category: str, inv: Invoice) -> None:
        """The weekly check's leak; the quarterly check's too once its revenue (one month,
        posted at the period's end) is older than OLD_REVENUE days at the quarter's end."""
        paid = self._collected(book, inv)
        figures = {"expected_amount": inv.net, "actual_amount": paid,
                   "gap_amount": inv.net - paid}
        self._leak(book, category, inv.inv_id, **figures)
        if inv.pe < self.q_end - timedelta(days=OLD_REVENUE):
            self._leak(book, "recognized_not_collected", inv.inv_id, **figures)

    def _role_unpaid(self, book: Book, k: int) -> Planted:
        return self._uncollected(book, "unpaid", "unpaid")

    def _role_payment_failed(self, book: Book, k: int) -> Planted:
        return self._uncollected(book, "payment_failed", "failed")

    def _role_short_paid(self, book: Book, k: int) -> Planted:
        return self._uncollected(book, "short_paid", "short")

    def _role_disputed(self, book: Book, k: int) -> Planted:
        return self._uncollected(book, "disputed", "disputed")

    def _role_unapplied_cash(self, book: Book, k: int) -> Planted:
        """Money received with no invoice named."""
        amount = self._int(50, 500) * 1000
        book.unapplied.append((amount, self.week_end - timedelta(days=self._int(8, 40))))
        return lambda: self._leak(
            book, "unapplied_cash", next(p.pay_id for p in book.payments if not p.inv_id),
            expected_amount=amount, actual_amount=0, gap_amount=amount)

    def _role_recognized_not_collected(self, book: Book, k: int) -> Planted:
        """Revenue of ~5 months ago never collected: written off, or still open."""
        target = self._collection_target(book, days=170, months=3)
        target.pay = "uncollectible" if k % 2 == 0 else "unpaid"
        return lambda: self._not_collected(book, "unpaid", target)

    def _role_payment_not_deposited(self, book: Book, k: int) -> Planted:
        """A payment that never reached the bank."""
        target = self._collection_target(book, days=45, months=4)
        target.pay = "undeposited"

        def record() -> None:
            pay = next(p for p in book.payments if p.inv_id == target.inv_id)
            self._leak(book, "payment_not_deposited", pay.pay_id, expected_amount=pay.amount,
                       actual_amount=0, gap_amount=pay.amount)
        return record

    # pricing -----------------------------------------------------------------------------------

    def _priced_deal(self, book: Book, line: Line) -> date:
        """A one-time deal issued in the checked quarter carrying one pricing-relevant line;
        the day it was issued."""
        last = min(self.as_of, self.q_end) - timedelta(days=10)
        days = max(0, (last - self.q_start).days - 5)
        start = _day28(self.q_start + timedelta(days=5 + self._int(0, days)))
        _, invoices = self._role_contract(book, start, "one_time", 12, [line])
        return invoices[0].issue

    def _mispriced(self, book: Book, line: Line, category: str,
                   expected: int | None = None) -> Planted:
        """A priced deal whose line is the leak; ``expected``: what it should have come to,
        when the planter knows it."""
        issued = self._priced_deal(book, line)
        return lambda: self._priced_leak(book, category, f"{book.cid}:{line.sku}",
                                         [(issued, expected, line.amount)])

    def _priced_leak(self, book: Book, category: str, entity_id: str,
                     lines: list[tuple[date, int | None, int]], per_period: bool = False
                     ) -> None:
        """A pricing leak of lines (issued, what it should have come to if the planter knows,
        what it came to), for each pricing run whose window holds one of them; its figures
        add up those lines, or are the latest one's (``per_period``)."""
        _, entity_type, _ = LEAKS[category]
        for run_of in PRICING:
            run = self.runs[run_of]
            start, as_of = (date.fromisoformat(run[d]) for d in ("window_start", "as_of"))
            seen = [line for line in lines if start <= line[0] <= as_of]
            if not seen:
                continue
            if per_period:
                seen = seen[-1:]
            actual = sum(a for _, _, a in seen)
            figures = {"actual_amount": actual}
            if all(e is not None for _, e, _ in seen):
                expected = sum(e for _, e, _ in seen)
                figures |= {"expected_amount": expected, "gap_amount": expected - actual}
            self.leaks.append(manifest.leak(run_of, category, entity_type, entity_id, book.cid,
                                            run["as_of"], currency=book.ccy, **figures))

    def _price_now(self, book: Book, sku: str) -> int:
        return self._price(sku, book.ccy, self.q_end)

    def _role_expired_promo(self, book: Book, k: int) -> Planted:
        """15% off under SPRING15, which ended before the quarter: the list price was due."""
        line = Line("CONS-HR", self._int(10, 40), self._price_now(book, "CONS-HR"), 15,
                    "SPRING15")
        return self._mispriced(book, line, "expired_promo", line.qty * line.price)

    def _role_stacked_discount(self, book: Book, k: int) -> Planted:
        """15% off under SUMMER10, which gives 10% and does not stack."""
        line = Line("ONB-PKG", 1, self._price_now(book, "ONB-PKG"), 15, "SUMMER10")
        return self._mispriced(book, line, "stacked_discount", line.price * 90 // 100)

    def _role_unapproved_discount(self, book: Book, k: int) -> Planted:
        """20–25% off with no approval: none, expired, for another sku, or capped at 15%."""
        start = self.history
        variant = k % 4
        if variant == 1:
            self._approval(book, "CONS-HR", 25, start, self.q_start - timedelta(days=30))
        elif variant == 2:
            self._approval(book, "ONB-PKG", 25, start, None)
        elif variant == 3:
            self._approval(book, "", 15, start, None)
        line = Line("CONS-HR", self._int(10, 40), self._price_now(book, "CONS-HR"),
                    20 + 5 * (k % 2))
        return self._mispriced(book, line, "unapproved_discount")

    def _role_grandfathered_rate(self, book: Book, k: int) -> Planted:
        """Training days at the list price that ended when the quarter began."""
        old = self._price("TRN-DAY", book.ccy, self.q_start - DAY)
        line = Line("TRN-DAY", self._int(1, 5), old)
        return self._mispriced(book, line, "grandfathered_rate",
                               line.qty * self._price_now(book, "TRN-DAY"))

    def _role_price_mismatch(self, book: Book, k: int) -> Planted:
        """A unit price a few units under the list price, never on any rate card."""
        sku = book.avoid
        listed = self._price_now(book, sku)
        line = Line(sku, 1 if sku == "ONB-PKG" else 20,
                    listed - (700 if sku == "ONB-PKG" else 1100))
        return self._mispriced(book, line, "price_mismatch", line.qty * listed)

    def _role_subscription_drift(self, book: Book, k: int) -> Planted:
        """A monthly contract that started this quarter, before the price rise, its add-on
        still billed at the old list price after it: a subscription drift, and a grandfathered
        rate of each such line. Its first invoice after the rise comes on the day or up to two
        weeks later (the change check, a few days after the rise, sees the earliest)."""
        rise = self.price_rise
        first = rise + timedelta(days=2 * (k % 8))
        start = add_months(first - timedelta(days=1), -1)  # each invoice a day after its period
        old, new = (self._price(RAISED_SKU, book.ccy, day) for day in (start, rise))
        lines = self._role_lines(book, "monthly") + [Line(RAISED_SKU, 1, old)]
        c, invoices = self._role_contract(book, start, "monthly", 12, lines)
        billed = [(inv.issue, new, old) for inv in invoices if inv.issue >= rise]

        def record() -> None:
            self._priced_leak(book, DRIFT, f"{c.opp_id}:{RAISED_SKU}", billed, per_period=True)
            self._priced_leak(book, "grandfathered_rate", f"{book.cid}:{RAISED_SKU}", billed)
        return record

    # decoys --------------------------------------------------------------------------------

    def _role_inside_billing_lag(self, book: Book, k: int) -> Planted:
        """A period that started ~15 days ago and is not invoiced yet: still inside the lag."""
        if k % 2 == 0:
            c, _ = self._role_contract(book, _day28(self.as_of - timedelta(days=15)),
                                       "monthly", 12)
            cut = c.start
        else:
            start = self._months_before(15, 6)
            c, _ = self._role_contract(book, start, "quarterly", 12)
            cut = add_months(start, 6)
        book.invoices = [inv for inv in book.invoices if inv.opp_id != c.opp_id or inv.ps < cut]
        return lambda: self._decoy(book, "inside_billing_lag", "opportunity", c.opp_id)

    def _role_within_tolerance(self, book: Book, k: int) -> Planted:
        """One invoice a few percent off on seats: ~0.3% of what was due, inside tolerance."""
        c, invoices = self._ended_contract(book)
        target, due = invoices[2], c.amount
        seats = target.lines[1]
        gross = seats.qty * seats.price
        points = max(1, min(15, due * 3 // 1000 * 100 // gross))
        while points > 1 and gross * points // 100 * 200 > due:
            points -= 1
        target.lines = [target.lines[0], replace(seats, disc=points)]
        return lambda: self._decoy(book, "within_tolerance", "opportunity", c.opp_id)

    def _role_overbill_credited(self, book: Book, k: int) -> Planted:
        """A period invoiced twice last month, the duplicate cancelled by a credit note."""
        start = self._months_before(24, 6)
        c, invoices = self._role_contract(book, start, "monthly", 12)
        orig = self._period(invoices, add_months(start, 6))
        issue = orig.ps + timedelta(days=4)
        dup = replace(orig, issue=issue, due=issue + timedelta(days=30), pay="unpaid")
        credit_day = orig.ps + timedelta(days=8)
        credit = replace(orig, issue=credit_day, due=credit_day + timedelta(days=30),
                         kind="credit_note", status="paid",
                         lines=[replace(line, qty=-line.qty) for line in orig.lines])
        book.invoices += [dup, credit]
        return lambda: self._decoy(book, "overbill_credited", "opportunity", c.opp_id)

    def _role_renewal_grace(self, book: Book, k: int) -> Planted:
        """Ended ~3 weeks ago with no renewal yet: inside the 30-day grace."""
        c, _ = self._role_contract(book, self._months_before(20, 12), "monthly", 12)
        return lambda: self._decoy(book, "renewal_grace", "opportunity", c.opp_id)

    def _role_paid_in_two_parts(self, book: Book, k: int) -> Planted:
        target = self._collection_target(book)
        target.pay = "split"
        return lambda: self._decoy(book, "paid_in_two_parts", "invoice", target.inv_id)

    def _role_deposit_in_transit(self, book: Book, k: int) -> Planted:
        """Paid a day (or nine) before the quarter's end, deposited four days later."""
        target = self._collection_target(book, days=12, months=4, anchor=self.q_end)
        target.pay = "transit" if k % 2 == 0 else "transit_late"
        return lambda: self._decoy(book, "deposit_in_transit", "payment", next(
            p.pay_id for p in book.payments
            if p.inv_id == target.inv_id and p.status == "succeeded"))

    def _role_approved_discount(self, book: Book, k: int) -> Planted:
        valid_to = None if k % 2 == 0 else self.q_end + timedelta(days=180)
        self._approval(book, "CONS-HR" if k % 2 == 0 else "", 20 + 5 * (k % 2),
                       self.q_start - timedelta(days=60), valid_to)
        self._priced_deal(book, Line("CONS-HR", self._int(10, 40),
                                     self._price_now(book, "CONS-HR"), 20))
        return lambda: self._decoy(book, "approved_discount", "customer_sku",
                                   f"{book.cid}:CONS-HR")

    def _role_promo_in_validity(self, book: Book, k: int) -> Planted:
        self._priced_deal(book, Line("ONB-PKG", 1, self._price_now(book, "ONB-PKG"), 10,
                                     "SUMMER10"))
        return lambda: self._decoy(book, "promo_in_validity", "customer_sku",
                                   f"{book.cid}:ONB-PKG")

    # the funnel --------------------------------------------------------------------------------

    def _plan_old_leads(self, per_week: int) -> None:
        """A few stale deals; and stalled leads, about a third of what is open at the week's
        end (open renewals counted so far, the last weeks' leads), drawn from the leads of
        weeks 3 to 26 back."""
        self.stale_left = max(LEAKS["stale_deal"][2], round(self.customers * LEAK_RATE))
        self.stalled_left = math.ceil(0.45 * (self.open_deals + 4 * per_week))
        self.stalled_chance = min(1.0, 1.5 * self.stalled_left / (24 * per_week))

    def _old_lead_kind(self, weeks_back: int, touched: datetime) -> str:
        """Stale: worked for a day, then nobody came back to it; stalled: past its close date
        with its next step already due."""
        if weeks_back < 3:
            return ""
        if weeks_back >= 8 and self.stale_left and self.random() < 0.05:
            self.stale_left -= 1
            return "stale"
        if weeks_back <= 26 and self.stalled_left and self.random() < self.stalled_chance:
            self.stalled_left -= 1
            return "stalled"
        return super()._old_lead_kind(weeks_back, touched)

    def _went_stale(self, opp_id: str, customer: str, amount: str) -> None:
        figures = {"currency": "USD"} if amount else {}
        self.leaks.append(manifest.leak(FUNNEL, "stale_deal", "opportunity", opp_id,
                                        customer or None, self.runs[FUNNEL]["as_of"],
                                        **figures))

    def _plan_week(self, received: list[datetime]) -> dict[int, set[str]]:
        """The checked week's leaks: shares well past each zone's limit, every named state."""
        leads, plan = len(received), defaultdict(set)
        order = self.rng.sample(range(leads), leads)
        n = math.ceil(0.05 * leads)
        later = [i for i in order if received[i].weekday() <= 2][:n]  # Monday to Wednesday
        for k, i in enumerate([i for i in order if i not in later][:2 * n]):
            plan[i].add(("never", "late")[k % 2])
        for i in later:
            plan[i].add("later")  # captured two business days after it came in
        captured = [i for i in order if not plan[i]]
        for k, i in enumerate(captured):
            plan[i].update({0: {"no_route"}, 1: {"late_route"}, 2: {"reassigned_bare"},
                            3: {"reassigned_noted"}}.get(k % 8, set()))
            if k % 2 == 0:
                plan[i].add("slow")
            if 1 <= k % 10 <= 7:
                plan[i].add("no_follow")
            elif k % 10 == 8 or received[i].weekday() > 3:
                plan[i].add("no_next_step")
            else:  # a next step due the next day, early enough in the week to fall due
                plan[i].add("overdue")
            plan[i].update({4: {"missed_call"}, 5: {"missed_call_late"}}.get(k % 7, set()))
        for a, b in zip(captured[0:6:2], captured[1:6:2], strict=True):
            plan[max(a, b)].add(f"duplicate:{min(a, b)}")
        return plan
