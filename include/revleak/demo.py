"""A deterministic demo company: one CSV per contract table (§2) plus ``manifest.json``.

The same seed, scale and as-of date always give byte-identical files. Customers are built and
written one at a time (their books never outlive the customer), so memory stays flat at any
scale. Every row is valid; normal books are clean under ``RULES``; the only findings are the
seeded leaks. Each customer's books are audited with ``RULES`` before moving on, so the manifest
lists exactly what a correct check finds, and a customer whose audit disagrees with its planned
role stops the generator (a bug here, never a silent wrong answer). Decoys are listed too: they
look like leaks and must not be flagged.

Money is kept in integer cents (exact, and fast enough to stream ten million invoice lines);
list prices are whole currency units and discounts whole percents, so every line amount is
exactly quantity × unit_price × (1 − discount_pct/100) to the cent with no rounding.
"""

from __future__ import annotations

import calendar
import csv
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from itertools import count
from pathlib import Path

DEFAULT_AS_OF = date(2026, 9, 30)
SCALES = {"small": 200, "medium": 5_000, "large": 100_000}  # customers
BASE_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP")
VERSION = 1

BILLING_LAG = 31  # days after period start before an unbilled period is missing
RENEWAL_GRACE = 30  # days after contract end before a missing renewal is a leak
OLD_REVENUE = 90  # revenue older than this many days must be collected
DEPOSIT_LAG = 5  # days a succeeded payment may take to reach the bank
FREE_DISCOUNT = 15  # discounts above this percent need an approval
LEAK_RATE = 0.005  # leaks per customer and category at larger scales
DECOY_RATE = 0.001
FUNNEL = {"intake": 95, "routing": 10, "response": 30, "follow_up": 40, "close": 20}  # % limits
CALLBACK = timedelta(minutes=60)  # a missed call is called back within this
ROUTING_LIMIT = timedelta(hours=4)
RESPONSE_TARGET = timedelta(minutes=60)  # high intent; medium and low are not measured
FOLLOW_UP = timedelta(hours=48)
DUPLICATE_WINDOW = timedelta(days=14)
STALE_DAYS = 30
HISTORY_DAYS = 365  # win rates and won amounts: the year to the checked week's end
VALUE_MIN_CLOSED = 5  # fewer closed in a channel × intent → the company-wide figure

DAY = timedelta(days=1)
ID_WIDTHS = {"C": 6, "O": 7, "INV": 8, "P": 8, "T": 9, "GL": 9, "S": 8, "E": 9, "A": 6}
STEP = {"monthly": 1, "quarterly": 3, "annual": 12}
PROGRESS_EVERY = 100_000

TABLES: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "segment", "region", "currency", "created_at"),
    "opportunities": (
        "opportunity_id", "customer_id", "signal_id", "created_at", "channel", "intent", "team",
        "owner", "stage", "amount", "currency", "expected_close_date", "closed_at",
        "close_reason", "contract_start", "contract_end", "billing_frequency", "auto_renew",
        "renewal_of", "source"),
    "invoices": (
        "invoice_id", "customer_id", "opportunity_id", "issue_date", "due_date", "currency",
        "status", "period_start", "period_end", "kind"),
    "invoice_lines": (
        "invoice_id", "line_no", "sku", "quantity", "unit_price", "discount_pct", "promo_code",
        "amount"),
    "payments": (
        "payment_id", "invoice_id", "customer_id", "amount", "currency", "attempted_at",
        "status", "failure_code", "method"),
    "bank_transactions": (
        "txn_id", "booked_date", "amount", "currency", "reference", "counterparty"),
    "gl_entries": (
        "entry_id", "posted_date", "account", "customer_id", "invoice_id", "amount", "currency"),
    "rate_cards": ("sku", "currency", "list_price", "effective_from", "effective_to"),
    "promotions": ("promo_code", "discount_pct", "valid_from", "valid_to", "stackable"),
    "discount_approvals": (
        "approval_id", "customer_id", "sku", "max_discount_pct", "approved_by", "valid_from",
        "valid_to"),
    "fx_rates": ("currency", "rate_date", "rate_to_base"),
    "inbound_signals": (
        "signal_id", "received_at", "channel", "intent", "contact_key", "source", "answered"),
    "opportunity_events": (
        "event_id", "opportunity_id", "occurred_at", "event_type", "actor", "team",
        "next_step_due", "stage_to", "has_note"),
}

# sku: (USD list price before the mid-year change, after it, how it is sold)
SKUS = {
    "PLAT-BASE": (500, 500, "subscription"),
    "PLAT-SEAT": (40, 40, "subscription"),
    "SUP-PREM": (300, 300, "subscription"),
    "ANL-ADDON": (150, 165, "subscription"),
    "API-10K": (25, 30, "subscription"),
    "ONB-PKG": (2500, 2500, "service"),
    "TRN-DAY": (1200, 1300, "service"),
    "CONS-HR": (180, 180, "service"),
}
CHANGED = frozenset(s for s, (old, new, _) in SKUS.items() if old != new)
LOCAL_PRICE_PCT = {"USD": 100, "EUR": 92, "GBP": 80}  # local list price = USD × pct, whole units

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
}
ZONES = ("intake", "routing", "response", "follow_up", "close")
ZONE_STATES = {  # the named leak states of each zone, all seeded in the checked week
    "intake": ("never_captured", "captured_within_a_business_day",
               "captured_over_a_business_day_late", "missed_call_no_callback"),
    "routing": ("unassigned_past_limit", "reassigned_without_note", "duplicate", "ownerless"),
    "response": ("response_past_target", "auto_ack_only"),
    "follow_up": ("no_second_touch", "no_next_step", "next_step_overdue"),
    "close": ("past_expected_close", "silent_drop_off"),
}
CLOSED = ("closed_won", "closed_lost")
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
# A role's books must produce exactly these finding categories (an old uncollected invoice is
# also past due, so the weekly check rightly reports it as unpaid too) ...
ROLE_FINDINGS = {"recognized_not_collected": ("recognized_not_collected", "unpaid")}
# ... plus, when the checked quarter ends long after as_of, a past-due invoice may already be
# more than 90 days past its revenue: then the quarterly check rightly reports it too.
ROLE_MAY_ALSO = {role: ("recognized_not_collected",)
                 for role in ("unpaid", "payment_failed", "short_paid", "disputed")}
ROLE_SKU = {"expired_promo": "CONS-HR", "stacked_discount": "ONB-PKG",
            "unapproved_discount": "CONS-HR", "grandfathered_rate": "TRN-DAY",
            "approved_discount": "CONS-HR", "promo_in_validity": "ONB-PKG"}

TOL = "tolerance(x) = max(0.5% × x, 1.00)"
RULES = {
    "unbilled": (
        "booked_vs_billed_daily, per closed_won opportunity: periods start at contract_start + "
        "k × step months (monthly 1, quarterly 3, annual 12) while ≤ contract_end (one_time: one "
        "period; auto_renew: further terms of the same whole-month length started ≤ as_of), each "
        "expecting amount / periods_per_term; due_total = periods with period_start + 31 days ≤ "
        "as_of; billed = Σ invoice_lines.amount of the opportunity's invoices with status not in "
        f"(draft, void) and issue_date ≤ as_of (credit notes negative); {TOL}; finding when "
        "due_total − billed > tolerance(due_total) and the gap ≥ amount / periods_per_term; "
        "expected = due_total, actual = billed, days = as_of − (period_start + 31) of the oldest "
        "due period not fully billed when billed fills periods oldest first"),
    "under_billed": (
        "booked_vs_billed_daily, per closed_won opportunity: as unbilled but the gap "
        "due_total − billed (> tolerance(due_total)) is less than one period "
        "(amount / periods_per_term); expected = due_total, actual = billed, days from the "
        "oldest due period not fully billed (period_start + 31)"),
    "over_billed": (
        "booked_vs_billed_daily, per closed_won opportunity: billed − started_total > "
        "tolerance(started_total), started_total = periods with period_start ≤ as_of; expected "
        "= started_total, actual = billed, gap = started_total − billed (negative), days = as_of "
        "− issue_date of the first invoice (ordered by issue_date, invoice_id) at which the "
        "cumulative billed exceeds started_total + tolerance(started_total)"),
    "renewal_miss": (
        "booked_vs_billed_daily, per closed_won opportunity: contract_end < as_of − 30 days, "
        "auto_renew not true, and no opportunity (created ≤ as_of) has renewal_of = it; expected "
        "= amount, actual = 0, gap = amount, days = as_of − (contract_end + 31)"),
    "unpaid": (
        "billed_vs_collected_weekly, per invoice of kind invoice with status not in (draft, void), "
        "issue_date ≤ as_of and due_date < as_of: outstanding = Σ lines − Σ payments with status "
        f"succeeded attempted on or before as_of; finding when outstanding > {TOL} of Σ lines; "
        "category: disputed if any payment of the invoice is disputed, else payment_failed if it "
        "has failed attempts and no succeeded payment, else short_paid if Σ succeeded > 0, else "
        "unpaid; expected = Σ lines, actual = Σ succeeded, gap = outstanding, days = as_of − "
        "due_date"),
    "payment_failed": (
        "billed_vs_collected_weekly: a past-due invoice above tolerance (see unpaid) with at "
        "least one failed payment attempt, no succeeded and no disputed payment; expected = Σ "
        "lines, actual = 0, gap = Σ lines, days = as_of − due_date"),
    "short_paid": (
        "billed_vs_collected_weekly: a past-due invoice above tolerance (see unpaid) with 0 < Σ "
        "succeeded payments < Σ lines and no disputed payment; expected = Σ lines, actual = Σ "
        "succeeded, gap = the difference, days = as_of − due_date"),
    "disputed": (
        "billed_vs_collected_weekly: a past-due invoice above tolerance (see unpaid) with a "
        "payment in status disputed (disputed money is not collected); expected = Σ lines, "
        "actual = Σ succeeded, gap = outstanding, days = as_of − due_date"),
    "unapplied_cash": (
        "billed_vs_collected_weekly, per payment with status succeeded, empty invoice_id and "
        "attempted on or before as_of; expected = amount, actual = 0, gap = amount, days = as_of "
        "− attempted date"),
    "recognized_not_collected": (
        "recognized_vs_collected_quarterly, per invoice of kind invoice with status not in "
        "(draft, void): recognized = Σ gl_entries.amount with account revenue and this invoice_id "
        "posted ≤ as_of − 91 days (more than 90 days before as_of); collected = Σ succeeded "
        f"payments of the invoice attempted ≤ as_of; finding when recognized − collected > {TOL} "
        "of recognized; expected = recognized, actual = collected, days = as_of − (earliest such "
        "posted_date + 91)"),
    "payment_not_deposited": (
        "recognized_vs_collected_quarterly, per payment with status succeeded attempted ≤ as_of − "
        "5 days: no bank_transactions row with reference = payment_id and booked_date between the "
        "attempted date and attempted date + 5 days; expected = amount, actual = 0, gap = amount, "
        "days = as_of − (attempted date + 5)"),
    "expired_promo": (
        "pricing_drift_quarterly, lines of invoices of kind invoice, status not in (draft, void), "
        "issue_date in the checked quarter, per customer_id:sku: a line at the rate-card price "
        "whose promo_code is not valid on issue_date (valid_from ≤ issue_date ≤ valid_to); "
        "expected = Σ quantity × unit_price × (1 − (discount_pct − promo discount_pct)/100), "
        "actual = Σ amount, days = as_of − earliest issue_date"),
    "stacked_discount": (
        "pricing_drift_quarterly (scope as expired_promo): a line at the rate-card price with a "
        "valid non-stackable promo_code and discount_pct > the promo's discount_pct; expected = Σ "
        "quantity × unit_price × (1 − promo discount_pct/100), actual = Σ amount, days = as_of − "
        "earliest issue_date"),
    "unapproved_discount": (
        "pricing_drift_quarterly (scope as expired_promo): a line at the rate-card price, not an "
        "expired or stacked promo, with discount_pct > 15 and no discount_approvals row of the "
        "customer with sku empty or equal, valid_from ≤ issue_date ≤ valid_to (empty = open) and "
        "max_discount_pct ≥ discount_pct; expected = Σ quantity × unit_price × 0.85, actual = Σ "
        "amount, days = as_of − earliest issue_date"),
    "grandfathered_rate": (
        "pricing_drift_quarterly (scope as expired_promo): unit_price differs from the list_price "
        "of the rate_cards row (sku, invoice currency) effective on issue_date (effective_from ≤ "
        "issue_date ≤ effective_to, empty = open) but equals the list_price of a row of that "
        "sku+currency that ended before issue_date; expected = Σ quantity × current list_price × "
        "(1 − discount_pct/100), actual = Σ amount, days = as_of − earliest issue_date"),
    "price_mismatch": (
        "pricing_drift_quarterly (scope as expired_promo): unit_price differs from the list_price "
        "effective on issue_date and is not the list_price of an ended earlier row (so not "
        "grandfathered_rate); expected = Σ quantity × list_price effective on "
        "issue_date × (1 − discount_pct/100), actual = Σ amount, days = as_of − earliest "
        "issue_date"),
    "intake": (
        "funnel_leak_weekly, zone: inbound_signals received in the checked ISO week (UTC); a "
        "problem when no opportunity (signal_id) was created on the day it arrived "
        "(never_captured by the week's end; captured_within_a_business_day; "
        "captured_over_a_business_day_late: more than one Monday–Friday day after it), or a "
        "phone call with answered false got no first_response or touch within 60 minutes "
        "(missed_call_no_callback); finding when the share without a problem < 95%"),
    "routing": (
        "funnel_leak_weekly, zone: opportunities created in the checked week; a problem when "
        "the first assigned event is missing or more than 4 hours after created_at "
        "(unassigned_past_limit), a reassigned event before the week's end has no has_note true "
        "(reassigned_without_note), another opportunity of the same signal contact_key was "
        "created in the 14 days before it (duplicate), or it is open at the week's end with no "
        "owner and no assigned or reassigned event (ownerless); finding when > 10%"),
    "response": (
        "funnel_leak_weekly, zone: high-intent opportunities created in the checked week; a "
        "problem when no first_response event is within 60 minutes of created_at "
        "(response_past_target; auto_ack_only when an auto_ack came instead); finding when > 30%"),
    "follow_up": (
        "funnel_leak_weekly, zone: opportunities whose first assigned event + 48 hours falls in "
        "the checked week; a problem when, unless closed by then, fewer than two first_response "
        "or touch events fall within those 48 hours (no_second_touch) or no next_step_set does "
        "(no_next_step), or when open at the week's end its latest next step (set before then) "
        "fell due before then with no touch since (next_step_overdue); finding when > 40%"),
    "close": (
        "funnel_leak_weekly, zone: opportunities open at the week's end (not closed_won or "
        "closed_lost by then); a problem when expected_close_date < as_of with no next_step_set "
        "due on or after as_of (past_expected_close) or its last activity (created_at or an "
        "event other than auto_ack) is 30 or more days before as_of (silent_drop_off); finding "
        "when > 20%. Every finding's value: each problem at won revenue ÷ opportunities closed "
        "in the 365 days to as_of for its channel and intent (the company's when fewer than 5 "
        "closed), in USD at the as-of rates, to the cent"),
    "stale_deal": (
        "funnel_leak_weekly, per opportunity open at the week's end whose last activity is 30 "
        "or more days before as_of: expected = amount × won ÷ closed of its channel and intent "
        "(as the zones' value; no amount: the channel × intent value in USD), actual = 0, "
        "days = as_of − (last activity date + 30)"),
}

SEGMENTS = ("smb", "mid", "enterprise")
REGIONS = {"USD": "North America", "EUR": "EMEA", "GBP": "UK & Ireland"}
SUFFIX = {"USD": ("Inc", "LLC", "Corp"), "EUR": ("GmbH", "SA", "BV"), "GBP": ("Ltd", "plc")}
NAME_A = ("Acme", "Blue", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
          "Juniper", "Keystone", "Lumen", "Maple", "Nimbus", "Orion", "Pioneer", "Quartz",
          "Ridge", "Summit", "Tidal", "Umber", "Vertex", "Willow", "Zenith")
NAME_B = ("Analytics", "Logistics", "Foods", "Health", "Labs", "Systems", "Retail", "Energy",
          "Media", "Robotics", "Capital", "Design", "Freight", "Dental", "Clinics", "Studios")
OWNERS = ("Ava Chen", "Ben Okafor", "Carla Ruiz", "Dev Patel", "Elena Rossi", "Femi Adeyemi",
          "Grace Kim", "Hugo Martin", "Isla Novak", "Jonas Berg")
TEAMS = {"smb": "SMB Sales", "mid": "Mid-Market", "enterprise": "Enterprise"}
INBOUND_TEAM = "Inbound Desk"
CHANNELS = ("phone", "web_form", "chat", "whatsapp", "email", "marketplace", "referral",
            "walk_in", "outbound")
ACKED = frozenset(("web_form", "chat", "whatsapp", "email"))
SOURCES = ("google_ads", "linkedin", "webinar", "partner", "trade_show", "organic", "newsletter")
LOST_REASONS = ("lost_to_competitor", "no_decision", "no_budget", "unresponsive", "other")
OPEN_STAGES = ("qualified", "meeting", "proposal", "negotiation")
FAILURES = ("card_declined", "insufficient_funds", "expired_card", "do_not_honor")
# (billing_frequency, term months (0 = 1–3 months), auto-renew share, weight)
STREAMS = (("monthly", 12, 0.35, 35), ("monthly", 6, 0.0, 15), ("quarterly", 12, 0.3, 15),
           ("annual", 12, 0.3, 10), ("annual", 24, 0.2, 5), ("one_time", 0, 0.0, 20))
STREAM_WEIGHTS = tuple(s[3] for s in STREAMS)


# ---------------------------------------------------------------------------------------------
# formatting and calendar helpers


def _counter(prefix: str, width: int) -> Callable[[], str]:
    """Readable zero-padded ids: C000001, INV00000001, ..."""
    numbers, template = count(1), f"{prefix}{{:0{width}d}}".format
    return lambda: template(next(numbers))


@lru_cache(maxsize=1 << 16)
def money(cents: int) -> str:
    """Integer cents as a decimal string with 2 decimals."""
    if cents < 0:
        return "-" + money(-cents)
    return f"{cents // 100}.{cents % 100:02d}"


def _ts(moment: datetime) -> str:
    return moment.isoformat() + "+00:00"


def _d(day: date | None) -> str:
    return day.isoformat() if day else ""


def _bool(flag: bool | None) -> str:
    return "" if flag is None else ("true" if flag else "false")


def add_months(day: date, months: int) -> date:
    """``day + months`` the PostgreSQL way (clamped to the month's last day)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    if day.day <= 28:
        return date(year, month0 + 1, day.day)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def _day28(day: date) -> date:
    """The day itself, or the 28th of its month (contract starts never clamp)."""
    return day if day.day <= 28 else day.replace(day=28)


def exceeds_tolerance(gap: int, expected: int) -> bool:
    """gap > max(0.5% × expected, 1.00), all in cents, exactly."""
    return gap > 100 and gap * 200 > expected


# ---------------------------------------------------------------------------------------------
# the books of one customer


@dataclass(slots=True, frozen=True)
class Line:
    sku: str
    qty: int
    price: int  # unit price, cents (whole currency units)
    disc: int = 0  # whole percent
    promo: str = ""

    @property
    def amount(self) -> int:
        return self.qty * self.price * (100 - self.disc) // 100


@dataclass(slots=True)
class Contract:
    """A closed-won opportunity: what was booked."""

    opp_id: str
    start: date
    end: date
    freq: str
    term: int  # months
    auto: bool
    lines: list[Line]
    per_period: int
    n: int  # periods per term
    offset: int  # days between period start and invoice

    @property
    def amount(self) -> int:
        return self.per_period * self.n


@dataclass(slots=True)
class Invoice:
    opp_id: str
    issue: date
    due: date
    ps: date
    pe: date
    lines: list[Line]
    months: int = 1  # revenue is recognized over this many months
    kind: str = "invoice"
    status: str = ""
    pay: str = "normal"  # how the customer pays it (see _Company._settle)
    inv_id: str = ""
    net: int = 0


@dataclass(slots=True)
class Payment:
    pay_id: str
    inv_id: str
    amount: int
    at: datetime
    status: str


@dataclass(slots=True)
class Book:
    cid: str
    name: str
    segment: str
    ccy: str
    since: datetime
    terms: int  # payment terms, days
    method: str
    seats: int
    avoid: str = ""  # a sku kept off normal contracts (the role's sku)
    approved: bool = False  # has a standing discount approval
    contracts: list[Contract] = field(default_factory=list)
    renewed: set[str] = field(default_factory=set)
    invoices: list[Invoice] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    deposits: dict[str, list[date]] = field(default_factory=dict)
    revenue: dict[str, list[tuple[date, int]]] = field(default_factory=dict)
    approvals: list[tuple[str, int, date, date | None]] = field(default_factory=list)
    unapplied: list[tuple[int, date]] = field(default_factory=list)


def period_starts(c: Contract, through: date) -> list[date]:
    """Billing period starts of a contract on or before ``through`` (§3, auto-renew included)."""
    if c.freq == "one_time":
        return [c.start] if c.start <= through else []
    step, out, months = STEP[c.freq], [], 0
    while True:
        start = add_months(c.start, months)
        if start > through or (not c.auto and start > c.end):
            return out
        out.append(start)
        months += step


# ---------------------------------------------------------------------------------------------
# output


class _Out:
    """Open csv writers fed in batches (one customer at a time), row counts, progress."""

    def __init__(self, out_dir: Path, progress: Callable[[str, int], None] | None):
        self.progress = progress
        self.files, self.writers, self.rows, self.pending = {}, {}, {}, {}
        for table, columns in TABLES.items():
            handle = open(out_dir / f"{table}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
            self.files[table] = handle
            self.writers[table] = csv.writer(handle, lineterminator="\n")
            self.writers[table].writerow(columns)
            self.rows[table] = 0
            self.pending[table] = []
        self.add = {table: rows.append for table, rows in self.pending.items()}

    def write(self, table: str, row: list) -> None:
        self.pending[table].append(row)

    def flush(self) -> None:
        for table, rows in self.pending.items():
            if not rows:
                continue
            self.writers[table].writerows(rows)
            before, after = self.rows[table], self.rows[table] + len(rows)
            self.rows[table] = after
            rows.clear()
            if self.progress and before // PROGRESS_EVERY != after // PROGRESS_EVERY:
                self.progress(table, after)

    def close(self) -> None:
        self.flush()
        for table, handle in self.files.items():
            handle.close()
            if self.progress:
                self.progress(table, self.rows[table])


@dataclass
class _Tally:
    """One funnel zone in the checked week: its population, the items with a problem, how
    many are in each leak state and how many leaked per channel × intent."""

    bad: int = 0
    total: int = 0
    states: Counter = field(default_factory=Counter)
    lost: Counter = field(default_factory=Counter)

    def add(self, states: list[str], channel: str, intent: str) -> None:
        self.total += 1
        if states:
            self.bad += 1
            self.states.update(states)
            self.lost[(channel, intent)] += 1


# ---------------------------------------------------------------------------------------------
# the company


class _Company:
    def __init__(self, out_dir: Path, seed: int, scale: str, as_of: date,
                 progress: Callable[[str, int], None] | None):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        self.rng = random.Random(seed)
        self.seed, self.scale, self.customers = seed, scale, SCALES[scale]
        self.as_of = as_of
        self.week_end = as_of + timedelta(days=6 - as_of.weekday())
        self.week_start = self.week_end - timedelta(days=6)
        self.week_from = datetime.combine(self.week_start, time())
        self.week_until = datetime.combine(self.week_end + DAY, time())  # exclusive
        self.q_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
        self.q_end = add_months(self.q_start, 3) - DAY
        self.horizon = max(self.week_end, self.q_end)  # the books stand as of this day
        self.horizon_end = datetime.combine(self.horizon + DAY, time())
        self.history = add_months(_day28(as_of), -24)
        self.price_change = self.q_start  # the mid-year list price change
        self.out = _Out(out_dir, progress)
        self.random = self.rng.random
        self.new = {prefix: _counter(prefix, width) for prefix, width in ID_WIDTHS.items()}
        self.prices = {(sku, ccy): (self._local(old, ccy), self._local(new, ccy))
                       for sku, (old, new, _) in SKUS.items() for ccy in CURRENCIES}
        self.promos: dict[str, tuple[int, date, date, bool]] = {}
        self.fx_at_as_of: dict[str, Decimal] = {}
        self.leaks: list[dict] = []
        self.decoys: list[dict] = []
        self.due = dict.fromkeys(CURRENCIES, 0)
        self.billed = dict.fromkeys(CURRENCIES, 0)
        self.shortfall = dict.fromkeys(CURRENCIES, 0)
        self.zones = {zone: _Tally() for zone in ZONES}
        self.crm_rng = random.Random(f"{seed}:crm")  # deal intents, apart from the books' draws
        self.history_from = datetime.combine(self.week_end - timedelta(days=HISTORY_DAYS - 1),
                                             time())
        self.closed: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.won_cents: Counter = Counter()  # (channel, intent, currency) → won amount
        self.fx_at_week_end: dict[str, Decimal] = {BASE_CURRENCY: Decimal(1)}
        self.contacts: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self.week_opps: list[tuple] = []  # routing items of the checked week, before duplicates
        self.stale: list[dict] = []
        self.stale_left = self.stalled_left = 0
        self.stalled_chance = 0.0
        self.values: dict[tuple, tuple[int, int, Decimal, Decimal]] = {}

    # ids and chance --------------------------------------------------------------------------

    def _int(self, low: int, high: int) -> int:
        """A random whole number in [low, high] (faster than Random.randint, as deterministic)."""
        return low + int(self.random() * (high - low + 1))

    def _below(self, n: int) -> int:
        return int(self.random() * n)

    def _pick(self, options: tuple | list):
        return options[int(self.random() * len(options))]

    @staticmethod
    def _local(usd: int, ccy: str) -> int:
        """A USD list price in ``ccy``: whole units, as cents."""
        return (usd * LOCAL_PRICE_PCT[ccy] + 50) // 100 * 100

    def _price(self, sku: str, ccy: str, on: date) -> int:
        old, new = self.prices[(sku, ccy)]
        return new if on >= self.price_change else old

    def _moment(self, day: date, first_hour: int = 8, last_hour: int = 18) -> datetime:
        """A time of day on ``day`` within office hours."""
        return datetime(day.year, day.month, day.day, self._int(first_hour, last_hour),
                        self._below(60))

    # the whole run ---------------------------------------------------------------------------

    def run(self) -> dict:
        self._price_book()
        self._fx_rates()
        self._bank_fees()
        roles = self._plan_roles()
        for index in range(self.customers):
            self._customer(index, roles.get(index))
        self._funnel()
        self.out.close()
        return self._manifest()

    def _plan_roles(self) -> dict[int, tuple[str, int]]:
        """Which customers carry a seeded leak or a decoy (one role each)."""
        plan = []
        for category, (_, _, minimum) in LEAKS.items():
            count = max(minimum, round(self.customers * LEAK_RATE))
            plan += [(category, k) for k in range(count)]
        for kind in DECOYS:
            plan += [(kind, k) for k in range(max(2, round(self.customers * DECOY_RATE)))]
        chosen = self.rng.sample(range(self.customers), len(plan))
        return dict(zip(chosen, plan, strict=True))

    # reference tables ------------------------------------------------------------------------

    def _price_book(self) -> None:
        """Rate cards (three skus change price at the start of the checked quarter), promos."""
        since = self.history - timedelta(days=365)
        for sku in SKUS:
            for ccy in CURRENCIES:
                old, new = self.prices[(sku, ccy)]
                if old == new:
                    self.out.write("rate_cards", [sku, ccy, money(old), _d(since), ""])
                    continue
                self.out.write("rate_cards", [sku, ccy, money(old), _d(since),
                                              _d(self.price_change - DAY)])
                self.out.write("rate_cards", [sku, ccy, money(new), _d(self.price_change), ""])
        qs, far = self.q_start, self.q_end + timedelta(days=365)
        promos = {
            "WELCOME10": (10, since, far, False),
            "LOYAL5": (5, since, far, True),
            "PARTNER12": (12, since, far, True),
            "SPRING15": (15, add_months(qs, -6), add_months(qs, -1) - DAY, False),
            "SUMMER10": (10, add_months(qs, -1), self.q_end + timedelta(days=62), False),
            "BLACKFRIDAY": (15, date(qs.year - 1, 11, 20), date(qs.year - 1, 11, 30), False),
        }
        for code, (pct, valid_from, valid_to, stackable) in promos.items():
            self.promos[code] = (pct, valid_from, valid_to, stackable)
            self.out.write("promotions", [code, str(pct), _d(valid_from), _d(valid_to),
                                          _bool(stackable)])

    def _fx_rates(self) -> None:
        """A daily rate per currency from before the history to as_of + 14 days."""
        rate = {"USD": 1_000_000, "EUR": 1_080_000, "GBP": 1_270_000}
        day, last = self.history - timedelta(days=120), max(self.as_of + timedelta(days=14),
                                                           self.horizon)
        while day <= last:
            for ccy in CURRENCIES:
                if ccy != BASE_CURRENCY:
                    rate[ccy] = min(max(rate[ccy] + self._int(-2500, 2500), 900_000),
                                    1_450_000)
                text = f"{rate[ccy] // 1_000_000}.{rate[ccy] % 1_000_000:06d}"
                self.out.write("fx_rates", [ccy, _d(day), text])
                if day == self.as_of:
                    self.fx_at_as_of[ccy] = Decimal(text)
                if day == self.week_end:
                    self.fx_at_week_end[ccy] = Decimal(text)
            day += DAY

    def _bank_fees(self) -> None:
        """Monthly account fees: bank lines that settle no payment."""
        day = self.history.replace(day=1)
        while day <= self.horizon:
            for ccy in CURRENCIES:
                self.out.write("bank_transactions", [self.new["T"](), _d(day), money(-2500), ccy,
                                                     "", "Bank fees"])
            day = add_months(day, 1)

    # one customer ----------------------------------------------------------------------------

    def _customer(self, index: int, role: tuple[str, int] | None) -> None:
        rng = self.rng
        kind, k = role or ("", 0)
        r = rng.random()
        segment = SEGMENTS[0 if r < 0.5 else (1 if r < 0.85 else 2)]
        if kind:
            ccy = CURRENCIES[k % 3]
            since = self.history - timedelta(days=self._int(0, 60))
            terms, method, seats = 30, self._pick(("ach", "wire")), self._int(12, 60)
        else:
            ccy = CURRENCIES[0 if rng.random() < 0.5 else (1 if rng.random() < 0.6 else 2)]
            span = (self.as_of - timedelta(days=150) - self.history).days + 60
            since = self.history - timedelta(days=60 - int(span * self.random() ** 1.6))
            terms = 30 if rng.random() < 0.7 else 14
            method = self._pick(("card", "card", "ach", "ach", "wire"))
            seats = {"smb": (3, 20), "mid": (20, 100), "enterprise": (100, 500)}[segment]
            seats = self._int(*seats)
        name = f"{self._pick(NAME_A)} {self._pick(NAME_B)} {self._pick(SUFFIX[ccy])}"
        book = Book(f"C{index + 1:06d}", name, segment, ccy, self._moment(since), terms, method,
                    seats, avoid=ROLE_SKU.get(kind, ""))
        if kind == "price_mismatch":
            book.avoid = "ONB-PKG" if k % 2 == 0 else "CONS-HR"
        self.out.write("customers", [book.cid, name, segment, REGIONS[ccy], ccy,
                                     _ts(book.since)])
        if not kind and segment == "enterprise" and rng.random() < 0.2:
            book.approved = True
            self._approval(book, "", 20, since, None)
        streams = {"smb": (4, 6), "mid": (5, 7), "enterprise": (5, 9)}[segment]
        first = since + timedelta(days=self._int(70, 100))
        latest = self.as_of - timedelta(days=15)
        for s in range(self._int(*streams)):
            start = first if s == 0 else first + timedelta(
                days=self._int(0, max(0, (latest - first).days)))
            self._stream(book, _day28(min(start, latest)))
        decoy = getattr(self, f"_role_{kind}")(book, k) if kind else None
        self._close_books(book)
        self._audit(book, kind)
        if decoy:
            self._record_decoy(book, kind, decoy)
        self.out.flush()

    def _stream(self, book: Book, start: date) -> None:
        """A product line: a chain of contracts, each renewed (or not) near its end."""
        rng = self.rng
        freq, term, auto_share, _ = rng.choices(STREAMS, weights=STREAM_WEIGHTS)[0]
        auto = rng.random() < auto_share
        created, renewal_of = None, ""
        while True:
            c = self._contract(book, start, freq, term or self._int(1, 3), auto=auto,
                               renewal_of=renewal_of, created=created)
            book.invoices += self._bill(book, c, noise=True)
            if auto:
                return
            created = self._renewal(book, c)
            if created is None:
                return
            start, renewal_of = c.end + DAY, c.opp_id

    def _renewal(self, book: Book, c: Contract) -> datetime | None:
        """Decide the renewal of ``c``: the won renewal's created_at, or None (lost or open)."""
        rng = self.rng
        if c.end + DAY > self.as_of + timedelta(days=25):  # still undecided
            created = c.end - timedelta(days=45)
            if c.start < created < self.week_start - DAY:
                self._renewal_opp(book, c, "open", self._moment(created))
            return None
        created = self._moment(max(c.start + DAY, c.end - timedelta(days=45)))
        if rng.random() < 0.85:
            book.renewed.add(c.opp_id)
            return created
        self._renewal_opp(book, c, "closed_lost", created)
        return None

    def _renewal_opp(self, book: Book, c: Contract, stage: str,
                     created: datetime | None = None) -> None:
        """A renewal opportunity that is not (yet) a contract: lost, or open in negotiation."""
        created = created or self._moment(max(c.start + DAY, c.end - timedelta(days=45)))
        book.renewed.add(c.opp_id)
        owner, team = self._pick(OWNERS), TEAMS[book.segment]
        events = [(created + timedelta(minutes=self._int(5, 50)), "assigned", owner, team,
                   None, "", None)]
        if stage == "open":
            stage = self._pick(("proposal", "negotiation"))
            expected, closed, reason = c.end - timedelta(days=5), None, ""
            when = self._moment(min(created.date() + timedelta(days=self._int(1, 10)),
                                    self.week_start - DAY))
            due = self._moment(self.week_end + timedelta(days=self._int(1, 14)))
            events.append((max(when, created + timedelta(hours=1)), "next_step_set", owner,
                           team, due, "", True))
        else:
            close_day = min(created.date() + timedelta(days=self._int(5, 20)),
                            c.end - DAY, self.as_of - DAY)
            closed = max(self._moment(close_day), created + timedelta(hours=2))
            expected, reason = closed.date(), self._pick(LOST_REASONS)
            events.append((closed, "stage_changed", owner, team, None, "closed_lost", None))
        opp_id = self.new["O"]()
        self._write_opp([opp_id, book.cid, "", _ts(created), self._pick(CHANNELS[5:]), "high",
                         team, owner, stage, money(c.amount), book.ccy, _d(expected),
                         _ts(closed) if closed else "", reason, "", "", "", "", c.opp_id,
                         "renewal"], created, "high", stage, expected, events, closed=closed)

    def _contract(self, book: Book, start: date, freq: str, term: int, *, auto: bool = False,
                  renewal_of: str = "", created: datetime | None = None,
                  lines: list[Line] | None = None, offset: int | None = None) -> Contract:
        """Book a closed-won contract (and write its opportunity row and events)."""
        offset = self._pick((0, 0, 1, 1, 2)) if offset is None else offset
        end = add_months(start, term) - DAY
        n = 1 if freq == "one_time" else term // STEP[freq]
        lines = lines if lines is not None else self._lines(book, freq, start, end, auto, offset)
        c = Contract(self.new["O"](), start, end, freq, term, auto, lines,
                     sum(line.amount for line in lines), n, offset)
        book.contracts.append(c)
        created = created or self._moment(start - timedelta(days=self._int(20, 60)))
        span = max(1, (start - created.date()).days - 1)
        close_day = min(created.date() + timedelta(days=self._int(1, span)), start - DAY,
                        self.as_of - DAY)
        closed = max(self._moment(max(close_day, created.date())), created + timedelta(hours=2))
        owner, team = self._pick(OWNERS), TEAMS[book.segment]
        channel = self._pick(CHANNELS) if not renewal_of else "outbound"
        intent = self.crm_rng.choice(("high", "high", "high", "medium", "medium", "low"))
        events = [(created + timedelta(minutes=self._int(5, 50)), "assigned", owner, team,
                   None, "", None),
                  (closed, "stage_changed", owner, team, None, "closed_won", None)]
        self._write_opp([c.opp_id, book.cid, "", _ts(created), channel, intent, team, owner,
                         "closed_won", money(c.amount), book.ccy, _d(closed.date()), _ts(closed),
                         "won", _d(start), _d(end), freq, _bool(auto), renewal_of,
                         "renewal" if renewal_of else self._pick(SOURCES)],
                        created, intent, "closed_won", closed.date(), events, closed=closed,
                        cents=c.amount)
        return c

    def _lines(self, book: Book, freq: str, start: date, end: date, auto: bool,
               offset: int) -> list[Line]:
        """What a normal contract sells each period, at the rate card of its invoice dates."""
        rng = self.rng
        before = not auto and end + timedelta(days=offset + 4) <= self.price_change
        # None: its invoices straddle the price change, so changed skus stay off it
        on = start if start >= self.price_change or before else None
        if freq == "one_time":
            items = rng.sample([("ONB-PKG", 1), ("TRN-DAY", self._int(1, 5)),
                                ("CONS-HR", self._int(5, 60))], self._int(1, 3))
        else:
            months = STEP[freq]
            items = [("PLAT-BASE", months), ("PLAT-SEAT", book.seats * months)]
            if rng.random() < 0.7:
                items.append(("SUP-PREM", months))
            if rng.random() < 0.5:
                items.append(("ANL-ADDON", months))
            if rng.random() < 0.6:
                items.append(("API-10K", self._int(1, 20) * months))
        lines = []
        for sku, qty in items:
            if sku == book.avoid or (sku in CHANGED and on is None):
                continue
            disc, promo = self._discount(book)
            lines.append(Line(sku, qty, self._price(sku, book.ccy, on or start), disc, promo))
        if not lines:
            sku = "CONS-HR" if book.avoid != "CONS-HR" else "ONB-PKG"
            lines.append(Line(sku, 10, self._price(sku, book.ccy, start)))
        return lines

    def _discount(self, book: Book) -> tuple[int, str]:
        """A clean discount: ≤ 15%, a valid promo alone or stacked if stackable, or approved."""
        r = self.rng.random()
        if r < 0.55:
            return 0, ""
        if r < 0.80:
            return self._pick((5, 10, 15)), ""
        if r < 0.86:
            return 10, "WELCOME10"
        if r < 0.92:
            return self._pick((5, 10)), "LOYAL5"
        if r < 0.96:
            return self._pick((12, 15)), "PARTNER12"
        return (20, "") if book.approved else (10, "")

    def _bill(self, book: Book, c: Contract, noise: bool = False) -> list[Invoice]:
        """One invoice per period, issued ``offset`` days after it starts, up to the horizon."""
        rng, out = self.rng, []
        months = STEP.get(c.freq, 1)
        for ps in period_starts(c, self.horizon):
            issue = ps + timedelta(days=c.offset)
            if issue > self.horizon:
                break
            if c.freq == "one_time":
                pe = c.end
            else:
                pe = add_months(ps, months) - DAY
                pe = pe if c.auto else min(pe, c.end)
            inv = Invoice(c.opp_id, issue, issue + timedelta(days=book.terms), ps, pe, c.lines,
                          months)
            if noise and issue < self.horizon and rng.random() < 0.02:
                if rng.random() < 0.5:  # issued, voided, reissued the next day
                    out.append(replace(inv, status="void"))
                    inv.issue += DAY
                    inv.due += DAY
                else:  # an abandoned draft next to the real invoice
                    out.append(replace(inv, status="draft"))
            out.append(inv)
        return out

    def _approval(self, book: Book, sku: str, pct: int, valid_from: date,
                  valid_to: date | None) -> None:
        book.approvals.append((sku, pct, valid_from, valid_to))
        self.out.write("discount_approvals", [self.new["A"](), book.cid, sku, str(pct),
                                              self._pick(("CFO", "VP Sales", "Deal Desk")),
                                              _d(valid_from), _d(valid_to)])

    # settling the books ----------------------------------------------------------------------

    def _close_books(self, book: Book) -> None:
        """Number invoices, collect payments, deposit cash, post the ledger, write it all."""
        book.invoices.sort(key=lambda inv: inv.issue)
        new_invoice_id = self.new["INV"]
        for inv in book.invoices:
            inv.inv_id = new_invoice_id()
            inv.net = sum(line.amount for line in inv.lines)
        for inv in book.invoices:
            self._settle(book, inv)
        for amount, day in book.unapplied:
            self._pay(book, "", amount, day, "succeeded")
        collected: dict[str, int] = defaultdict(int)
        for p in book.payments:
            if p.status == "succeeded":
                collected[p.inv_id] += p.amount
        add_invoice, add_line = self.out.add["invoices"], self.out.add["invoice_lines"]
        cid, ccy = book.cid, book.ccy
        for inv in book.invoices:
            if not inv.status:
                paid = inv.kind == "credit_note" or collected[inv.inv_id] >= inv.net
                inv.status = "paid" if paid else "open"
            add_invoice([inv.inv_id, cid, inv.opp_id, inv.issue.isoformat(),
                         inv.due.isoformat(), ccy, inv.status, inv.ps.isoformat(),
                         inv.pe.isoformat(), inv.kind])
            for no, line in enumerate(inv.lines, 1):
                add_line([inv.inv_id, no, line.sku, line.qty, money(line.price), line.disc,
                          line.promo, money(line.amount)])
            if inv.status not in ("draft", "void"):
                self._post(book, inv)

    def _post(self, book: Book, inv: Invoice) -> None:
        """Ledger: receivable at issue, revenue recognized monthly over the service period."""
        add, new_id, cid, ccy = self.out.add["gl_entries"], self.new["GL"], book.cid, book.ccy
        issued = inv.issue.isoformat()
        add([new_id(), issued, "accounts_receivable", cid, inv.inv_id, money(inv.net), ccy])
        if inv.kind == "credit_note":
            add([new_id(), issued, "revenue", cid, inv.inv_id, money(inv.net), ccy])
            return
        share, entries = inv.net // inv.months, []
        for i in range(inv.months):
            posted = add_months(inv.ps, i + 1) - DAY
            if posted > self.horizon:
                break
            amount = share if i < inv.months - 1 else inv.net - share * (inv.months - 1)
            entries.append((posted, amount))
            add([new_id(), posted.isoformat(), "revenue", cid, inv.inv_id, money(amount), ccy])
        book.revenue[inv.inv_id] = entries

    def _settle(self, book: Book, inv: Invoice) -> None:
        """The customer's payments for one invoice, by its pay mode."""
        if inv.kind != "invoice" or inv.status in ("draft", "void"):
            return
        rng, mode, net = self.rng, inv.pay, inv.net
        if mode == "uncollectible":
            inv.status = "uncollectible"
            return
        if mode == "unpaid":
            return
        day = inv.issue + timedelta(days=self._int(0, book.terms - 10))
        pay = self._pay
        if mode == "failed":
            for j in range(self._int(1, 3)):
                pay(book, inv.inv_id, net, inv.issue + timedelta(days=1 + 5 * j), "failed",
                    "card", self._pick(FAILURES))
        elif mode == "disputed":
            pay(book, inv.inv_id, net, day, "disputed")
        elif mode == "short":
            pay(book, inv.inv_id, net * self._int(50, 85) // 100, day, "succeeded")
        elif mode == "undeposited":
            pay(book, inv.inv_id, net, day, "succeeded", lag=-1)
        elif mode in ("transit", "transit_late"):
            day = self.q_end - timedelta(days=1 if mode == "transit" else 9)
            pay(book, inv.inv_id, net, day, "succeeded", lag=4)
        elif mode == "split" or (mode == "normal" and rng.random() < 0.03):
            first = net * self._int(30, 60) // 100
            pay(book, inv.inv_id, first, day, "succeeded")
            pay(book, inv.inv_id, net - first, day + timedelta(days=self._int(3, 8)),
                "succeeded")
        elif book.method == "card" and rng.random() < 0.08:
            pay(book, inv.inv_id, net, day, "failed", "card", self._pick(FAILURES))
            pay(book, inv.inv_id, net, day + timedelta(days=self._int(2, 5)), "succeeded")
        else:
            pay(book, inv.inv_id, net, day, "succeeded", pending_ok=True)
            if rng.random() < 0.01:  # paid twice by mistake, the second one refunded
                pay(book, inv.inv_id, net, day + DAY, "refunded")

    def _pay(self, book: Book, inv_id: str, amount: int, day: date, status: str,
             method: str = "", failure: str = "", *, lag: int | None = None,
             pending_ok: bool = False) -> None:
        """One payment attempt; succeeded money reaches the bank after ``lag`` days."""
        if day > self.horizon:
            return
        write, cid, ccy = self.out.write, book.cid, book.ccy
        method = method or book.method
        if pending_ok and method == "ach" and day >= self.horizon - timedelta(days=2):
            status = "pending"  # still clearing at the books' date
        payment = Payment(self.new["P"](), inv_id, amount, self._moment(day), status)
        book.payments.append(payment)
        write("payments", [payment.pay_id, inv_id, cid, money(amount), ccy, _ts(payment.at),
                           status, failure, method])
        if status == "succeeded":
            write("gl_entries", [self.new["GL"](), day.isoformat(), "cash", cid, inv_id,
                                 money(amount), ccy])
        if status not in ("succeeded", "refunded", "disputed") or lag == -1:
            return
        if lag is None:
            lag = self._int(*{"card": (1, 2), "ach": (1, 3), "wire": (0, 1)}[method])
        booked = day + timedelta(days=lag)
        if booked > self.horizon:
            return
        if status == "succeeded":
            book.deposits.setdefault(payment.pay_id, []).append(booked)
        write("bank_transactions", [self.new["T"](), booked.isoformat(), money(amount), ccy,
                                    payment.pay_id, book.name])
        back = booked + timedelta(days=self._int(7, 12))
        if status != "succeeded" and back <= self.horizon:  # refund or chargeback
            write("bank_transactions", [self.new["T"](), back.isoformat(), money(-amount), ccy,
                                        payment.pay_id, book.name])

    # roles: seeded leaks -------------------------------------------------------------------

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

    def _role_unbilled(self, book: Book, k: int) -> None:
        """Billing stopped: the last one or two due periods (and after) never invoiced."""
        variant = k % 3
        if variant == 0:
            start = self._months_before(40, 7)
            c, _ = self._role_contract(book, start, "monthly", 12)
            cut = add_months(start, 7 - (k // 3) % 2)
        elif variant == 1:
            start = self._months_before(50, 6)
            c, _ = self._role_contract(book, start, "quarterly", 12)
            cut = add_months(start, 6)
        else:
            start = self._months_before(60, 12)
            c, _ = self._role_contract(book, start, "annual", 24)
            cut = add_months(start, 12)
        book.invoices = [inv for inv in book.invoices if inv.opp_id != c.opp_id or inv.ps < cut]

    def _ended_contract(self, book: Book, support: bool = False) -> tuple[Contract, list]:
        """A 12-month monthly contract that ended ~6 weeks ago; its renewal was lost."""
        c, invoices = self._role_contract(book, self._months_before(40, 12), "monthly", 12,
                                          self._role_lines(book, "monthly", support))
        self._renewal_opp(book, c, "closed_lost")
        return c, invoices

    def _role_under_billed(self, book: Book, k: int) -> None:
        """One invoice short: fewer seats billed, or the support line left off."""
        _, invoices = self._ended_contract(book, support=k % 2 == 1)
        target = invoices[5 - k % 2]
        if k % 2 == 0:
            seats = target.lines[1]
            cut = max(2, seats.qty * 3 // 10)
            target.lines = [target.lines[0], replace(seats, qty=seats.qty - cut)]
        else:
            target.lines = target.lines[:2]

    def _role_over_billed(self, book: Book, k: int) -> None:
        """A period invoiced twice (and paid), or the next quarter billed in advance."""
        if k % 2 == 0:
            _, invoices = self._ended_contract(book)
            orig = invoices[6]
            book.invoices.append(replace(orig, issue=orig.issue + timedelta(days=5),
                                         due=orig.due + timedelta(days=5)))
            return
        start = self._months_before(70, 3)
        c, _ = self._role_contract(book, start, "quarterly", 12)
        ps, issue = add_months(start, 6), self.as_of - timedelta(days=10)
        book.invoices.append(Invoice(c.opp_id, issue, issue + timedelta(days=book.terms), ps,
                                     add_months(ps, 3) - DAY, c.lines, 3))

    def _role_renewal_miss(self, book: Book, k: int) -> None:
        """Ended, fully billed, not auto-renewing, and nobody opened a renewal."""
        variant = k % 3
        if variant == 0:
            self._role_contract(book, self._months_before(50, 12), "monthly", 12)
        elif variant == 1:
            line = Line("CONS-HR", self._int(10, 40), self._price_now(book, "CONS-HR"))
            self._role_contract(book, self._months_before(120, 3), "quarterly", 3, [line])
        else:
            self._role_contract(book, self._months_before(100, 12), "annual", 12)

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

    def _role_unpaid(self, book: Book, k: int) -> None:
        self._collection_target(book).pay = "unpaid"

    def _role_payment_failed(self, book: Book, k: int) -> None:
        self._collection_target(book).pay = "failed"

    def _role_short_paid(self, book: Book, k: int) -> None:
        self._collection_target(book).pay = "short"

    def _role_disputed(self, book: Book, k: int) -> None:
        self._collection_target(book).pay = "disputed"

    def _role_unapplied_cash(self, book: Book, k: int) -> None:
        amount = self._int(50, 500) * 1000
        book.unapplied.append((amount, self.week_end - timedelta(days=self._int(8, 40))))

    def _role_recognized_not_collected(self, book: Book, k: int) -> None:
        target = self._collection_target(book, days=170, months=3)
        target.pay = "uncollectible" if k % 2 == 0 else "unpaid"

    def _role_payment_not_deposited(self, book: Book, k: int) -> None:
        self._collection_target(book, days=45, months=4).pay = "undeposited"

    def _priced_deal(self, book: Book, line: Line) -> None:
        """A one-time deal issued in the checked quarter carrying one pricing-relevant line."""
        last = min(self.as_of, self.q_end) - timedelta(days=10)
        days = max(0, (last - self.q_start).days - 5)
        start = _day28(self.q_start + timedelta(days=5 + self._int(0, days)))
        self._role_contract(book, start, "one_time", 12, [line])

    def _price_now(self, book: Book, sku: str) -> int:
        return self._price(sku, book.ccy, self.q_end)

    def _role_expired_promo(self, book: Book, k: int) -> None:
        self._priced_deal(book, Line("CONS-HR", self._int(10, 40),
                                     self._price_now(book, "CONS-HR"), 15, "SPRING15"))

    def _role_stacked_discount(self, book: Book, k: int) -> None:
        self._priced_deal(book, Line("ONB-PKG", 1, self._price_now(book, "ONB-PKG"), 15,
                                     "SUMMER10"))

    def _role_unapproved_discount(self, book: Book, k: int) -> None:
        """20–25% off with no approval: none, expired, for another sku, or capped at 15%."""
        start = self.history
        variant = k % 4
        if variant == 1:
            self._approval(book, "CONS-HR", 25, start, self.q_start - timedelta(days=30))
        elif variant == 2:
            self._approval(book, "ONB-PKG", 25, start, None)
        elif variant == 3:
            self._approval(book, "", 15, start, None)
        self._priced_deal(book, Line("CONS-HR", self._int(10, 40),
                                     self._price_now(book, "CONS-HR"), 20 + 5 * (k % 2)))

    def _role_grandfathered_rate(self, book: Book, k: int) -> None:
        old = self.prices[("TRN-DAY", book.ccy)][0]
        self._priced_deal(book, Line("TRN-DAY", self._int(1, 5), old))

    def _role_price_mismatch(self, book: Book, k: int) -> None:
        sku = book.avoid
        price = self._price_now(book, sku) - (700 if sku == "ONB-PKG" else 1100)
        self._priced_deal(book, Line(sku, 1 if sku == "ONB-PKG" else 20, price))

    # roles: decoys -------------------------------------------------------------------------

    def _role_inside_billing_lag(self, book: Book, k: int) -> tuple:
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
        return "opportunity", c

    def _role_within_tolerance(self, book: Book, k: int) -> tuple:
        """One invoice a few percent off on seats: ~0.3% of what was due, inside tolerance."""
        c, invoices = self._ended_contract(book)
        target, due = invoices[2], c.amount
        seats = target.lines[1]
        gross = seats.qty * seats.price
        points = max(1, min(15, due * 3 // 1000 * 100 // gross))
        while points > 1 and gross * points // 100 * 200 > due:
            points -= 1
        target.lines = [target.lines[0], replace(seats, disc=points)]
        return "opportunity", c

    def _role_overbill_credited(self, book: Book, k: int) -> tuple:
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
        return "opportunity", c

    def _role_renewal_grace(self, book: Book, k: int) -> tuple:
        """Ended ~3 weeks ago with no renewal yet: inside the 30-day grace."""
        c, _ = self._role_contract(book, self._months_before(20, 12), "monthly", 12)
        return "opportunity", c

    def _role_paid_in_two_parts(self, book: Book, k: int) -> tuple:
        target = self._collection_target(book)
        target.pay = "split"
        return "invoice", target

    def _role_deposit_in_transit(self, book: Book, k: int) -> tuple:
        """Paid a day (or nine) before the quarter's end, deposited four days later."""
        target = self._collection_target(book, days=12, months=4, anchor=self.q_end)
        target.pay = "transit" if k % 2 == 0 else "transit_late"
        return "payment", target

    def _role_approved_discount(self, book: Book, k: int) -> tuple:
        valid_to = None if k % 2 == 0 else self.q_end + timedelta(days=180)
        self._approval(book, "CONS-HR" if k % 2 == 0 else "", 20 + 5 * (k % 2),
                       self.q_start - timedelta(days=60), valid_to)
        self._priced_deal(book, Line("CONS-HR", self._int(10, 40),
                                     self._price_now(book, "CONS-HR"), 20))
        return "customer_sku", f"{book.cid}:CONS-HR"

    def _role_promo_in_validity(self, book: Book, k: int) -> tuple:
        self._priced_deal(book, Line("ONB-PKG", 1, self._price_now(book, "ONB-PKG"), 10,
                                     "SUMMER10"))
        return "customer_sku", f"{book.cid}:ONB-PKG"

    def _record_decoy(self, book: Book, kind: str, decoy: tuple) -> None:
        entity_type, ref = decoy
        if isinstance(ref, Contract):
            entity_id = ref.opp_id
        elif entity_type == "payment":
            entity_id = next(p.pay_id for p in book.payments
                             if p.inv_id == ref.inv_id and p.status == "succeeded")
        elif isinstance(ref, Invoice):
            entity_id = ref.inv_id
        else:
            entity_id = ref
        self.decoys.append({"check": DECOYS[kind], "kind": kind, "entity_type": entity_type,
                            "entity_id": entity_id, "customer_id": book.cid})

    # the audit: what a correct check finds in one customer's books -------------------------

    def _audit(self, book: Book, role: str) -> None:
        findings = (self._audit_booked(book) + self._audit_collected(book)
                    + self._audit_recognized(book) + self._audit_pricing(book))
        expected = ROLE_FINDINGS.get(role, (role,) if role in LEAKS else ())
        found = tuple(sorted(f["category"] for f in findings))
        extra = tuple(c for c in found if c in ROLE_MAY_ALSO.get(role, ()))
        if found != tuple(sorted(expected + extra)):
            raise RuntimeError(f"demo generator bug: customer {book.cid} (role {role or 'none'}) "
                               f"has findings {found}, planned {expected}: {findings}")
        self.leaks += findings

    def _finding(self, book: Book, category: str, entity_id: str, as_of: date, expected: int,
                 actual: int, days: int) -> dict:
        check, entity_type, _ = LEAKS[category]
        return {"check": check, "category": category, "entity_type": entity_type,
                "entity_id": entity_id, "customer_id": book.cid, "as_of": as_of.isoformat(),
                "expected_amount": money(expected), "actual_amount": money(actual),
                "gap_amount": money(expected - actual), "currency": book.ccy,
                "days_outstanding": days}

    def _audit_booked(self, book: Book) -> list[dict]:
        """booked_vs_billed_daily as of ``as_of``."""
        as_of, lag, out = self.as_of, timedelta(days=BILLING_LAG), []
        billed: dict[str, list[Invoice]] = defaultdict(list)
        for inv in book.invoices:
            if inv.opp_id and inv.status not in ("draft", "void") and inv.issue <= as_of:
                billed[inv.opp_id].append(inv)
        for c in book.contracts:
            starts = period_starts(c, as_of)
            per = c.per_period
            started = per * len(starts)
            due = per * sum(1 for ps in starts if ps + lag <= as_of)
            invoices = billed.get(c.opp_id, [])
            total = sum(inv.net for inv in invoices)
            self.due[book.ccy] += due
            self.billed[book.ccy] += total
            self.shortfall[book.ccy] += max(0, due - total)
            if exceeds_tolerance(due - total, due):
                oldest = starts[max(0, total) // per]
                category = "unbilled" if due - total >= per else "under_billed"
                out.append(self._finding(book, category, c.opp_id, as_of, due, total,
                                         (as_of - oldest - lag).days))
            elif exceeds_tolerance(total - started, started):
                limit = started * 200 + max(started, 20_000)  # (started + tolerance) × 200
                cumulative, since = 0, as_of
                for inv in sorted(invoices, key=lambda i: (i.issue, i.inv_id)):
                    cumulative += inv.net
                    if cumulative * 200 > limit:
                        since = inv.issue
                        break
                out.append(self._finding(book, "over_billed", c.opp_id, as_of, started, total,
                                         (as_of - since).days))
            if (not c.auto and c.freq != "one_time"  # one_time is never a renewal miss
                    and c.end < as_of - timedelta(days=RENEWAL_GRACE)
                    and c.opp_id not in book.renewed):
                out.append(self._finding(book, "renewal_miss", c.opp_id, as_of, c.amount, 0,
                                         (as_of - c.end).days - RENEWAL_GRACE - 1))
        return out

    def _payments_by_invoice(self, book: Book, through: date) -> dict[str, list[Payment]]:
        by_invoice: dict[str, list[Payment]] = defaultdict(list)
        for p in book.payments:
            if p.at.date() <= through:
                by_invoice[p.inv_id].append(p)
        return by_invoice

    def _audit_collected(self, book: Book) -> list[dict]:
        """billed_vs_collected_weekly as of the checked week's Sunday."""
        as_of, out = self.week_end, []
        payments = self._payments_by_invoice(book, as_of)
        for inv in book.invoices:
            if (inv.kind != "invoice" or inv.status in ("draft", "void") or inv.issue > as_of
                    or inv.due >= as_of):
                continue
            tried = payments.get(inv.inv_id, [])
            paid = sum(p.amount for p in tried if p.status == "succeeded")
            if not exceeds_tolerance(inv.net - paid, inv.net):
                continue
            statuses = {p.status for p in tried}
            if "disputed" in statuses:
                category = "disputed"
            elif "failed" in statuses and not paid:
                category = "payment_failed"
            else:
                category = "short_paid" if paid else "unpaid"
            out.append(self._finding(book, category, inv.inv_id, as_of, inv.net, paid,
                                     (as_of - inv.due).days))
        for p in payments.get("", []):
            if p.status == "succeeded":
                out.append(self._finding(book, "unapplied_cash", p.pay_id, as_of, p.amount, 0,
                                         (as_of - p.at.date()).days))
        return out

    def _audit_recognized(self, book: Book) -> list[dict]:
        """recognized_vs_collected_quarterly as of the quarter's last day."""
        as_of, out = self.q_end, []
        old = as_of - timedelta(days=OLD_REVENUE + 1)
        payments = self._payments_by_invoice(book, as_of)
        for inv in book.invoices:
            if inv.kind != "invoice" or inv.status in ("draft", "void"):
                continue
            entries = [e for e in book.revenue.get(inv.inv_id, ()) if e[0] <= old]
            if not entries:
                continue
            recognized = sum(amount for _, amount in entries)
            paid = sum(p.amount for p in payments.get(inv.inv_id, ()) if p.status == "succeeded")
            if exceeds_tolerance(recognized - paid, recognized):
                first = min(posted for posted, _ in entries)
                out.append(self._finding(book, "recognized_not_collected", inv.inv_id, as_of,
                                         recognized, paid,
                                         (as_of - first).days - OLD_REVENUE - 1))
        last = as_of - timedelta(days=DEPOSIT_LAG)
        for p in book.payments:
            day = p.at.date()
            if p.status != "succeeded" or day > last:
                continue
            if not any(day <= booked <= day + timedelta(days=DEPOSIT_LAG)
                       for booked in book.deposits.get(p.pay_id, ())):
                out.append(self._finding(book, "payment_not_deposited", p.pay_id, as_of,
                                         p.amount, 0, (last - day).days))
        return out

    def _audit_pricing(self, book: Book) -> list[dict]:
        """pricing_drift_quarterly: invoice lines issued in the checked quarter."""
        sums: dict[tuple[str, str], list] = {}
        for inv in book.invoices:
            if (inv.kind != "invoice" or inv.status in ("draft", "void")
                    or not self.q_start <= inv.issue <= self.q_end):
                continue
            for line in inv.lines:
                category, expected = self._price_verdict(book, inv.issue, line)
                if category:
                    agg = sums.setdefault((category, line.sku), [0, 0, inv.issue])
                    agg[0] += expected
                    agg[1] += line.amount
                    agg[2] = min(agg[2], inv.issue)
        return [self._finding(book, category, f"{book.cid}:{sku}", self.q_end, expected, actual,
                              (self.q_end - first).days)
                for (category, sku), (expected, actual, first) in sums.items()]

    def _price_verdict(self, book: Book, issue: date, line: Line) -> tuple[str, int]:
        """The pricing category of one line (or '') and what it should have amounted to."""
        old, new = self.prices[(line.sku, book.ccy)]
        current = self._price(line.sku, book.ccy, issue)
        qty, disc = line.qty, line.disc
        if line.price != current:
            ended = old != new and issue >= self.price_change and line.price == old
            category = "grandfathered_rate" if ended else "price_mismatch"
            return category, qty * current * (100 - disc) // 100
        if line.promo:
            pct, valid_from, valid_to, stackable = self.promos[line.promo]
            if not valid_from <= issue <= valid_to:
                return "expired_promo", qty * line.price * (100 - disc + pct) // 100
            if not stackable and disc > pct:
                return "stacked_discount", qty * line.price * (100 - pct) // 100
        if disc > FREE_DISCOUNT and not any(
                sku in ("", line.sku) and start <= issue and (end is None or issue <= end)
                and pct >= disc for sku, pct, start, end in book.approvals):
            return "unapproved_discount", qty * line.price * (100 - FREE_DISCOUNT) // 100
        return "", 0

    # the funnel ------------------------------------------------------------------------------

    def _write_opp(self, row: list, created: datetime, intent: str, stage: str,
                   expected_close: date | None, events: list[tuple], *,
                   closed: datetime | None = None, contact: str | None = None,
                   cents: int = 0) -> None:
        """Write an opportunity with its events; count it into the history (won and lost
        deals) and the checked week's zones as RULES say, and note it when it went stale."""
        add_event, opp_id, new_id = self.out.add["opportunity_events"], row[0], self.new["E"]
        events.sort(key=lambda e: e[0])
        for when, kind, actor, team, next_due, stage_to, note in events:
            add_event([new_id(), opp_id, _ts(when), kind, actor, team,
                       _ts(next_due) if next_due else "", stage_to, _bool(note)])
        self.out.write("opportunities", row)
        channel, until = row[4], self.week_until
        if stage in CLOSED and closed and self.history_from <= closed < until:
            self.closed[(channel, intent)][0] += 1
            if stage == "closed_won":
                self.closed[(channel, intent)][1] += 1
                self.won_cents[(channel, intent, row[10])] += cents
        if contact and self.week_from - DUPLICATE_WINDOW <= created < until:
            self.contacts[contact].append((created, opp_id))

        def closed_by(moment: datetime) -> bool:
            return stage in CLOSED and (closed is None or closed <= moment)

        def at(kinds: tuple, start: datetime, end: datetime) -> list:
            return [e for e in events if e[1] in kinds and start <= e[0] <= end]

        open_at_end = created < until and not (stage in CLOSED
                                                and (closed is None or closed < until))

        assigned = min((e[0] for e in events if e[1] == "assigned"), default=None)
        if self.week_from <= created < until:
            states = []
            if assigned is None or assigned > created + ROUTING_LIMIT:
                states.append("unassigned_past_limit")
            if any(e[1] == "reassigned" and e[0] < until and e[6] is not True for e in events):
                states.append("reassigned_without_note")
            if not row[7] and open_at_end and not any(
                    e[1] in ("assigned", "reassigned") and e[0] < until for e in events):
                states.append("ownerless")
            self.week_opps.append((opp_id, channel, intent, created, contact, states))
            if intent == "high":
                deadline = created + RESPONSE_TARGET
                if not at(("first_response",), datetime.min, deadline):
                    late = ["response_past_target"]
                    if at(("auto_ack",), datetime.min, deadline):
                        late.append("auto_ack_only")
                    self.zones["response"].add(late, channel, intent)
                else:
                    self.zones["response"].add([], channel, intent)
        if assigned and self.week_from <= assigned + FOLLOW_UP < until:
            deadline, states = assigned + FOLLOW_UP, []
            if not closed_by(deadline):
                if len(at(("first_response", "touch"), assigned, deadline)) < 2:
                    states.append("no_second_touch")
                if not at(("next_step_set",), assigned, deadline):
                    states.append("no_next_step")
            steps = [e for e in events if e[1] == "next_step_set" and e[0] < until]
            if steps and open_at_end and steps[-1][4] < until and not any(
                    e[1] in ("first_response", "touch") and steps[-1][4] <= e[0] < until
                    for e in events):
                states.append("next_step_overdue")
            self.zones["follow_up"].add(states, channel, intent)
        if open_at_end:
            last = max([created] + [e[0] for e in events if e[1] != "auto_ack" and e[0] < until])
            stale = last.date() <= self.week_end - timedelta(days=STALE_DAYS)
            ahead = any(e[1] == "next_step_set" and e[0] < until
                        and e[4].date() >= self.week_end for e in events)
            states = ["past_expected_close"] if (
                expected_close and expected_close < self.week_end and not ahead) else []
            if stale:
                states.append("silent_drop_off")
                self.stale.append({"id": opp_id, "customer": row[1] or None, "channel": channel,
                                   "intent": intent, "cents": cents, "currency": row[10],
                                   "last": last.date()})
            self.zones["close"].add(states, channel, intent)

    def _funnel(self) -> None:
        """A year of inbound demand. Older leads close, stay in play or stall; the checked
        week leaks in every zone and every named state, and a few deals go stale."""
        per_week = max(60, self.customers // 50)
        self.stale_left = max(2, round(self.customers * LEAK_RATE))
        # stalled leads: about a third of what is open at the week's end (open renewals
        # counted so far, the last weeks' leads), drawn from the leads of weeks 3 to 26 back
        self.stalled_left = math.ceil(0.45 * (self.zones["close"].total + 4 * per_week))
        self.stalled_chance = min(1.0, 1.5 * self.stalled_left / (24 * per_week))
        for weeks_back in range(52, -1, -1):
            week = self.week_start - timedelta(weeks=weeks_back)
            leads = sorted((self._moment(week + timedelta(days=self._below(7)), 8, 18),
                            i) for i in range(per_week))
            self._week(week, [received for received, _ in leads], weeks_back)
        for opp_id, channel, intent, created, contact, states in self.week_opps:
            if contact and any(created - DUPLICATE_WINDOW <= c_at and (c_at, c_id) < (
                    created, opp_id) for c_at, c_id in self.contacts[contact]):
                states = [*states, "duplicate"]
            self.zones["routing"].add(states, channel, intent)

    def _week(self, week: date, received: list[datetime], weeks_back: int) -> None:
        """One week of inbound leads: who was captured, routed, answered and followed up."""
        rng, leads, checked = self.rng, len(received), weeks_back == 0
        plan: dict[int, set[str]] = defaultdict(set)
        if checked:  # the seeded leaks: shares well past each zone's limit
            order = rng.sample(range(leads), leads)
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
        contacts: dict[int, str] = {}
        for i, at in enumerate(received):
            channel = self._pick(CHANNELS)
            intent = self._pick(("high", "high", "medium", "medium", "low"))
            todo = plan[i]
            if todo & {"missed_call", "missed_call_late"}:
                channel = "phone"
            signal_id = self.new["S"]()
            contact = f"{rng.getrandbits(64):016x}"
            dup = next((int(x.split(":")[1]) for x in todo if x.startswith("duplicate:")), None)
            contact = contacts.get(dup, contact)
            contacts[i] = contact
            missed_call = channel == "phone" and (
                bool(todo & {"missed_call", "missed_call_late"}) or "never" in todo)
            created: datetime | None = at + timedelta(
                minutes=self._int(2, 10) if missed_call else self._int(2, 25))
            if "never" in todo:
                created = None
            elif todo & {"late", "later"}:
                days = 2 if "later" in todo else 1
                created = self._moment(at.date() + timedelta(days=days), 9, 12)
                if created >= self.week_until:
                    created = None
            self.out.write("inbound_signals", [
                signal_id, _ts(at), channel, intent, contact, self._pick(SOURCES),
                _bool(not missed_call) if channel == "phone" else ""])
            events: list[tuple] = []
            if created is not None:
                events = self._lead(signal_id, created, channel, intent, todo, weeks_back,
                                    contact, missed_call)
            if checked:
                self._count_intake(at, created, channel, intent, missed_call, events)
        self.out.flush()

    def _count_intake(self, received: datetime, created: datetime | None, channel: str,
                      intent: str, missed_call: bool, events: list[tuple]) -> None:
        states = []
        if created is None:
            states.append("never_captured")
        elif created.date() != received.date():
            business = sum(1 for n in range(1, (created.date() - received.date()).days + 1)
                           if (received.date() + timedelta(days=n)).weekday() < 5)
            states.append("captured_within_a_business_day" if business <= 1
                          else "captured_over_a_business_day_late")
        if missed_call and not any(e[1] in ("first_response", "touch")
                                   and received <= e[0] <= received + CALLBACK for e in events):
            states.append("missed_call_no_callback")
        self.zones["intake"].add(states, channel, intent)

    def _lead(self, signal_id: str, created: datetime, channel: str, intent: str,
              todo: set[str], weeks_back: int, contact: str, missed_call: bool) -> list[tuple]:
        """One inbound opportunity: its events and where it stands; returns its events."""
        rng, events, checked = self.rng, [], weeks_back == 0
        limit = self.week_until if checked else self.horizon_end
        owner = team = ""

        def event(when, kind, next_due=None, stage_to="", note=None) -> bool:
            if when >= limit:
                return False
            events.append((when, kind, owner or "system", team, next_due, stage_to, note))
            return True

        if channel in ACKED:
            event(created + timedelta(minutes=1), "auto_ack")
        assigned = None
        if "no_route" not in todo:
            owner, team = self._pick(OWNERS), INBOUND_TEAM
            delay = (timedelta(hours=self._int(5, 30)) if "late_route" in todo
                     else timedelta(minutes=self._int(3, 15 if missed_call else 40)))
            assigned = created + delay if event(created + delay, "assigned") else None
        if not assigned:
            owner = team = ""
        elif todo & {"reassigned_bare", "reassigned_noted"}:
            owner = self._pick(OWNERS)
            event(assigned + timedelta(minutes=self._int(20, 90)), "reassigned",
                  note="reassigned_noted" in todo)
        touched = None
        if assigned:
            if "missed_call_late" in todo:
                reply = assigned + timedelta(minutes=self._int(90, 180))
            elif "slow" in todo or intent != "high":
                reply = assigned + timedelta(minutes=self._int(120, 360))
            else:
                reply = assigned + timedelta(minutes=self._int(5, 15))
            if event(reply, "first_response"):
                touched = reply
        stage, expected, closed, reason, next_due = "new", None, None, "", None
        if touched and "no_follow" not in todo:
            room = max(31, min(24 * 60, int((limit - touched).total_seconds() // 60) - 1))
            second = touched + timedelta(minutes=self._int(30, room))
            if event(second, "touch"):
                stage = "qualified"
                event(second, "stage_changed", stage_to="qualified")
                touched = second
        kind = self._old_lead_kind(weeks_back, touched) if touched else ""
        if kind == "closed":  # within 25 days: never silent long enough to go stale
            closed = touched + timedelta(days=self._int(3, 25))
            closed = min(closed, datetime.combine(self.week_start - DAY, time(17)))
            stage, reason = "closed_lost", self._pick(LOST_REASONS)
            event(closed, "stage_changed", stage_to="closed_lost", note=True)
            expected = closed.date()
        elif kind in ("stalled", "pending"):  # still in play a few weeks later
            stage = self._pick(OPEN_STAGES)
            recent = self._moment(self.week_start - timedelta(days=self._int(1, 12)), 9, 17)
            while (touched := touched + timedelta(days=self._int(10, 20))) < recent:
                event(touched, "touch")  # worked every few weeks: never stale on the way
            event(recent, "touch")
            if kind == "stalled":  # past its close date, its next step already due
                expected = recent.date() - timedelta(days=self._int(1, 10))
                next_due = recent + timedelta(days=2)
            else:
                expected = self.week_end + timedelta(days=self._int(10, 60))
                next_due = self._moment(self.week_end + timedelta(days=self._int(2, 14)))
            event(recent + timedelta(minutes=5), "next_step_set", next_due=next_due)
        elif kind == "stale":  # worked for a day, then nobody came back to it
            stage = self._pick(OPEN_STAGES)
            expected = self.week_end + timedelta(days=self._int(10, 60))
            event(touched + timedelta(minutes=5), "next_step_set",
                  next_due=touched + timedelta(days=7))
        elif touched:
            expected = self.week_end + timedelta(days=self._int(10, 60))
            if "no_next_step" not in todo:
                due = (touched + timedelta(days=1) if "overdue" in todo
                       else self._moment(self.week_end + timedelta(days=self._int(2, 14))))
                event(touched + timedelta(minutes=5), "next_step_set", next_due=due,
                      note=rng.random() < 0.3)
        else:
            expected = self.week_end + timedelta(days=self._int(10, 60))
        customer = f"C{self._below(self.customers) + 1:06d}" if rng.random() < 0.3 else ""
        cents = self._int(10, 500) * 10_000 if stage != "new" else 0
        amount = money(cents) if cents else ""
        self._write_opp([self.new["O"](), customer, signal_id, _ts(created), channel, intent,
                         team, owner, stage, amount, "USD" if amount else "", _d(expected),
                         _ts(closed) if closed else "", reason, "", "", "", "", "",
                         self._pick(SOURCES)], created, intent, stage, expected, events,
                        closed=closed, contact=contact, cents=cents)
        return events

    def _old_lead_kind(self, weeks_back: int, touched: datetime) -> str:
        """Where a lead of an earlier week stands at the checked week's end."""
        if weeks_back < 3:
            return ""
        if weeks_back >= 8 and self.stale_left and self.random() < 0.05:
            self.stale_left -= 1
            return "stale"
        if weeks_back <= 26 and self.stalled_left and self.random() < self.stalled_chance:
            self.stalled_left -= 1
            return "stalled"
        return "pending" if weeks_back <= 12 and self.random() < 0.1 else "closed"

    # manifest --------------------------------------------------------------------------------

    def _expected_values(self) -> dict[tuple[str, str], tuple[int, int, Decimal, Decimal]]:
        """(closed, won, won revenue in USD, value of one opportunity) per channel × intent
        of the history (the company-wide figure under the key (None, None))."""
        won_base: dict[tuple, Decimal] = defaultdict(Decimal)
        for (channel, intent, ccy), cents in self.won_cents.items():
            amount = Decimal(cents) / 100 * self.fx_at_week_end[ccy]
            won_base[(channel, intent)] += amount
            won_base[(None, None)] += amount
        totals = [sum(h[0] for h in self.closed.values()),
                  sum(h[1] for h in self.closed.values())]
        out = {}
        for key, (closed, won) in [*self.closed.items(), ((None, None), totals)]:
            value = (won_base[key] / closed).quantize(Decimal("0.01"), ROUND_HALF_UP) \
                if closed else Decimal(0)
            out[key] = (closed, won, won_base[key], value)
        return out

    def _value(self, channel: str, intent: str) -> tuple[int, int, Decimal, Decimal]:
        """The history figures a channel × intent is valued at (its own, or the company's)."""
        figures = self.values.get((channel, intent), (0, 0, Decimal(0), Decimal(0)))
        return figures if figures[0] >= VALUE_MIN_CLOSED else self.values[(None, None)]

    def _funnel_findings(self) -> list[dict]:
        self.values = self._expected_values()
        out = []
        for zone, tally in self.zones.items():
            value = tally.total - tally.bad if zone == "intake" else tally.bad  # as RULES say
            limit, population = FUNNEL[zone], max(1, tally.total)
            share = (Decimal(100 * value) / population).quantize(Decimal("0.01"))
            breached = (100 * value < limit * population if zone == "intake"
                        else 100 * value > limit * population)
            unseeded = [s for s in ZONE_STATES[zone] if not tally.states[s]]
            if not breached or unseeded:
                raise RuntimeError(f"demo generator bug: funnel zone {zone} at {share}% (limit "
                                   f"{limit}%), states never seeded: {unseeded}")
            lost = sum(n * self._value(*key)[3] for key, n in tally.lost.items())
            out.append({"check": "funnel_leak_weekly", "category": zone, "entity_type": "zone",
                        "entity_id": zone, "customer_id": None,
                        "as_of": self.week_end.isoformat(), "expected_amount": None,
                        "actual_amount": None, "gap_amount": None, "currency": None,
                        "days_outstanding": None, "value_pct": str(share),
                        "limit_pct": str(limit), "problems": tally.bad,
                        "population": tally.total,
                        "states": {s: tally.states[s] for s in ZONE_STATES[zone]},
                        "lost_value_base": str(lost)})
        return out + [self._stale_finding(deal) for deal in self.stale]

    def _stale_finding(self, deal: dict) -> dict:
        closed, won, _, value = self._value(deal["channel"], deal["intent"])
        if deal["cents"]:
            value = (Decimal(deal["cents"] * won) / Decimal(closed * 100)).quantize(
                Decimal("0.01"), ROUND_HALF_UP)
        return {"check": "funnel_leak_weekly", "category": "stale_deal",
                "entity_type": "opportunity", "entity_id": deal["id"],
                "customer_id": deal["customer"], "as_of": self.week_end.isoformat(),
                "expected_amount": str(value), "actual_amount": "0.00", "gap_amount": str(value),
                "currency": deal["currency"] or BASE_CURRENCY,
                "days_outstanding": (self.week_end - deal["last"]).days - STALE_DAYS}

    def _portfolio(self) -> dict:
        """The booked-vs-billed portfolio figure (base currency, fx on as_of)."""
        due = sum(self.fx_at_as_of[c] * self.due[c] for c in CURRENCIES) / 100
        short = sum(self.fx_at_as_of[c] * self.shortfall[c] for c in CURRENCIES) / 100
        fires = short > max(due * Decimal("0.005"), Decimal(1))
        if fires:
            raise RuntimeError("demo generator bug: portfolio shortfall above tolerance")
        cents = Decimal("0.01")
        return {"due_base": str(due.quantize(cents)), "shortfall_base": str(short.quantize(cents)),
                "finding": fires}

    def _manifest(self) -> dict:
        daily = {"logical_date": (self.as_of + DAY).isoformat(), "as_of": self.as_of.isoformat()}
        weekly = {"logical_date": (self.week_end + DAY).isoformat(),
                  "as_of": self.week_end.isoformat(), "window_start": self.week_start.isoformat()}
        quarterly = {"logical_date": (self.q_end + DAY).isoformat(),
                     "as_of": self.q_end.isoformat(), "window_start": self.q_start.isoformat()}
        leaks = self.leaks + self._funnel_findings()
        leaks.sort(key=lambda f: (f["check"], f["category"], f["entity_id"]))
        return {
            "generator": "revleak.demo", "version": VERSION, "seed": self.seed,
            "scale": self.scale, "as_of": self.as_of.isoformat(), "base_currency": BASE_CURRENCY,
            "runs": {"booked_vs_billed_daily": daily, "billed_vs_collected_weekly": weekly,
                     "funnel_leak_weekly": dict(weekly),
                     "recognized_vs_collected_quarterly": quarterly,
                     "pricing_drift_quarterly": dict(quarterly)},
            "price_change": self.price_change.isoformat(),
            "rows": dict(self.out.rows),
            "rules": RULES,
            "leaks": leaks,
            "decoys": sorted(self.decoys, key=lambda d: (d["check"], d["kind"], d["entity_id"])),
            "totals": {"booked_vs_billed_daily": {
                "due": {c: money(self.due[c]) for c in CURRENCIES},
                "billed": {c: money(self.billed[c]) for c in CURRENCIES},
                "shortfall": {c: money(self.shortfall[c]) for c in CURRENCIES},
                "portfolio": self._portfolio()}},
        }


def generate(out_dir: Path, seed: int = 7, scale: str = "small", as_of: date = DEFAULT_AS_OF,
             progress: Callable[[str, int], None] | None = None) -> dict:
    """Write one <table>.csv per contract table plus manifest.json into out_dir.

    Returns the manifest (also written as ``manifest.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = _Company(out_dir, seed, scale, as_of, progress).run()
    with open(out_dir / "manifest.json", "w", encoding="utf-8", newline="\n") as handle:
        json.dump(manifest, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    return manifest
