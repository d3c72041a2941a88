"""The normal demo company: customers, contracts, invoices, payments, the general ledger, the
bank, the CRM and a year of inbound demand, one CSV per contract table (§2).

Customers are built and written one at a time (their books never outlive the customer), so
memory stays flat at any scale. Every row is valid and the normal books are clean; the leaks
and decoys are planted by ``leaks.Seeded`` through the hooks at the end of ``Company``.

Money is kept in integer cents (exact, and fast enough to stream ten million invoice lines);
list prices are whole currency units and discounts whole percents, so every line amount is
exactly quantity × unit_price × (1 − discount_pct/100) to the cent with no rounding.
"""

from __future__ import annotations

import calendar
import csv
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from itertools import count
from pathlib import Path

from revleak.tables import TABLES

DEFAULT_AS_OF = date(2026, 9, 30)
SCALES = {"small": 200, "medium": 5_000, "large": 100_000}  # customers
BASE_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP")

DAY = timedelta(days=1)
ID_WIDTHS = {"C": 6, "O": 7, "INV": 8, "P": 8, "T": 9, "GL": 9, "S": 8, "E": 9, "A": 6}
STEP = {"monthly": 1, "quarterly": 3, "annual": 12}
PROGRESS_EVERY = 100_000

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
# The checked quarter's price rise: this sku's USD list price from RISE_DAY of the quarter's
# second month (subscription drift, docs/pricing.md). Contracts across it sell without the sku;
# a few planted ones keep billing the old price (``leaks.Seeded``).
RAISED_SKU, RAISED_PRICE, RISE_DAY = "ANL-ADDON", 180, 12
LOCAL_PRICE_PCT = {"USD": 100, "EUR": 92, "GBP": 80}  # local list price = USD × pct, whole units
CLOSED = ("closed_won", "closed_lost")

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
    pay: str = "normal"  # how the customer pays it (see Company._settle)
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
    renewed: set[str] = field(default_factory=set)
    invoices: list[Invoice] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
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
        for table, spec in TABLES.items():
            handle = open(out_dir / f"{table}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
            self.files[table] = handle
            self.writers[table] = csv.writer(handle, lineterminator="\n")
            self.writers[table].writerow(spec.column_names)
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


# ---------------------------------------------------------------------------------------------
# the company


class Company:
    """The normal company, written table by table as it is built. A customer carrying a role
    (a leak or a decoy, see ``leaks.Seeded``) gets a plain profile and the role's books on top
    of its normal ones; the hooks at the end are where the roles plug in."""

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
        self.price_rise = add_months(self.q_start, 1) + timedelta(days=RISE_DAY - 1)
        self.out = _Out(out_dir, progress)
        self.random = self.rng.random
        self.new = {prefix: _counter(prefix, width) for prefix, width in ID_WIDTHS.items()}
        self.prices = {(sku, ccy): self._rate_card(sku, ccy) for sku in SKUS for ccy in CURRENCIES}
        self.crm_rng = random.Random(f"{seed}:crm")  # deal intents, apart from the books' draws
        self.open_deals = 0  # opportunities open at the checked week's end

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

    def _rate_card(self, sku: str, ccy: str) -> list[tuple[date, int]]:
        """The sku's list prices in ``ccy``, each with the day it takes effect."""
        old, new, _ = SKUS[sku]
        card = [(self.history - timedelta(days=365), self._local(old, ccy))]
        if new != old:
            card.append((self.price_change, self._local(new, ccy)))
        if sku == RAISED_SKU:
            card.append((self.price_rise, self._local(RAISED_PRICE, ccy)))
        return card

    def _price(self, sku: str, ccy: str, on: date) -> int:
        """The list price in force on ``on`` (the first one before the rate card begins)."""
        card = self.prices[(sku, ccy)]
        price = card[0][1]
        for since, listed in card[1:]:
            if since > on:
                break
            price = listed
        return price

    def _moment(self, day: date, first_hour: int = 8, last_hour: int = 18) -> datetime:
        """A time of day on ``day`` within office hours."""
        return datetime(day.year, day.month, day.day, self._int(first_hour, last_hour),
                        self._below(60))

    # the whole run ---------------------------------------------------------------------------

    def run(self) -> None:
        """Write every table: reference tables, the customers one by one, the funnel, then
        what is planted on top of finished books."""
        self._price_book()
        self._fx_rates()
        self._bank_fees()
        roles = self._plan_roles()
        for index in range(self.customers):
            self._customer(index, roles.get(index))
        self._funnel()
        self._plant_last()
        self.out.close()

    # reference tables ------------------------------------------------------------------------

    def _price_book(self) -> None:
        """Rate cards (three skus change price at the start of the checked quarter, one of them
        again in its second month), promotions."""
        for (sku, ccy), card in self.prices.items():
            for (since, price), (until, _) in zip(card, [*card[1:], (None, 0)], strict=True):
                self.out.write("rate_cards", [sku, ccy, money(price), _d(since),
                                              _d(until and until - DAY)])
        since = self.history - timedelta(days=365)
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
        """One customer's books, its role (if any) planted on top, settled and written."""
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
                    seats, avoid=self._kept_off(kind, k) if kind else "")
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
        planted = self._plant(book, kind, k) if kind else None
        self._close_books(book)
        self._record(book, kind, planted)
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
                         "renewal"], events, created, stage, closed)

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
                        events, created, "closed_won", closed)
        return c

    def _lines(self, book: Book, freq: str, start: date, end: date, auto: bool,
               offset: int) -> list[Line]:
        """What a normal contract sells each period, at the rate card of its invoice dates."""
        rng = self.rng

        def across(change: date) -> bool:
            """Its invoices fall on both sides of a price change."""
            return start < change and (auto or end + timedelta(days=offset + 4) > change)

        changed = CHANGED if across(self.price_change) else ()  # skus kept off it
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
            if sku == book.avoid or sku in changed:
                continue
            disc, promo = self._discount(book)
            if sku == RAISED_SKU and across(self.price_rise):
                continue  # kept off after its discount is drawn: no other line of the books moves
            lines.append(Line(sku, qty, self._price(sku, book.ccy, start), disc, promo))
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
        share = inv.net // inv.months
        for i in range(inv.months):
            posted = add_months(inv.ps, i + 1) - DAY
            if posted > self.horizon:
                break
            amount = share if i < inv.months - 1 else inv.net - share * (inv.months - 1)
            add([new_id(), posted.isoformat(), "revenue", cid, inv.inv_id, money(amount), ccy])

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
        write("bank_transactions", [self.new["T"](), booked.isoformat(), money(amount), ccy,
                                    payment.pay_id, book.name])
        back = booked + timedelta(days=self._int(7, 12))
        if status != "succeeded" and back <= self.horizon:  # refund or chargeback
            write("bank_transactions", [self.new["T"](), back.isoformat(), money(-amount), ccy,
                                        payment.pay_id, book.name])

    # the funnel ------------------------------------------------------------------------------

    def _write_opp(self, row: list, events: list[tuple], created: datetime, stage: str,
                   closed: datetime | None = None) -> None:
        """Write an opportunity with its events; count it when open at the checked week's end."""
        add_event, opp_id, new_id = self.out.add["opportunity_events"], row[0], self.new["E"]
        events.sort(key=lambda e: e[0])
        for when, kind, actor, team, next_due, stage_to, note in events:
            add_event([new_id(), opp_id, _ts(when), kind, actor, team,
                       _ts(next_due) if next_due else "", stage_to, _bool(note)])
        self.out.write("opportunities", row)
        until = self.week_until
        if created < until and not (stage in CLOSED and (closed is None or closed < until)):
            self.open_deals += 1

    def _funnel(self) -> None:
        """A year of inbound demand. Older leads close, stay in play or stall; the checked
        week carries the planted funnel leaks."""
        per_week = max(60, self.customers // 50)
        self._plan_old_leads(per_week)
        for weeks_back in range(52, -1, -1):
            week = self.week_start - timedelta(weeks=weeks_back)
            leads = sorted((self._moment(week + timedelta(days=self._below(7)), 8, 18),
                            i) for i in range(per_week))
            self._week(week, [received for received, _ in leads], weeks_back)

    def _week(self, week: date, received: list[datetime], weeks_back: int) -> None:
        """One week of inbound leads: who was captured, routed, answered and followed up."""
        rng, checked = self.rng, weeks_back == 0
        plan = defaultdict(set, self._plan_week(received) if checked else {})
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
            if created is not None:
                self._lead(signal_id, created, channel, intent, todo, weeks_back, missed_call)
        self.out.flush()

    def _lead(self, signal_id: str, created: datetime, channel: str, intent: str,
              todo: set[str], weeks_back: int, missed_call: bool) -> None:
        """One inbound opportunity: its events and where it stands (``todo``: its plan)."""
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
        amount, opp_id = money(cents) if cents else "", self.new["O"]()
        self._write_opp([opp_id, customer, signal_id, _ts(created), channel, intent, team,
                         owner, stage, amount, "USD" if amount else "", _d(expected),
                         _ts(closed) if closed else "", reason, "", "", "", "", "",
                         self._pick(SOURCES)], events, created, stage, closed)
        if kind == "stale":
            self._went_stale(opp_id, customer, amount)

    def _old_lead_kind(self, weeks_back: int, touched: datetime) -> str:
        """Where a lead of an earlier week stands at the checked week's end: closed, or a
        few still in play (``stale`` and ``stalled`` are planted, see ``leaks.Seeded``)."""
        if weeks_back < 3:
            return ""
        return "pending" if weeks_back <= 12 and self.random() < 0.1 else "closed"

    # where the roles plug in: the normal company has none (see leaks.Seeded) ------------------

    def _plan_roles(self) -> dict[int, tuple[str, int]]:
        """Customer index → its role (kind, k): a leak or a decoy to plant."""
        return {}

    def _kept_off(self, kind: str, k: int) -> str:
        """A sku kept off a role customer's normal contracts."""
        return ""

    def _plant(self, book: Book, kind: str, k: int) -> object:
        """Add a role's books to a customer's; what it returns goes to ``_record``."""
        return None

    def _record(self, book: Book, kind: str, planted: object) -> None:
        """Once a customer's books are settled (ids known): note what its role planted (kind
        ``""``: a customer without a role)."""

    def _plant_last(self) -> None:
        """After every other book is written: leaks planted on top, with ids of their own."""

    def _plan_old_leads(self, per_week: int) -> None:
        """Before the year of demand: how many older leads to plant as stale or stalled."""

    def _plan_week(self, received: list[datetime]) -> dict[int, set[str]]:
        """The checked week's plan: lead index → what goes wrong with it."""
        return {}

    def _went_stale(self, opp_id: str, customer: str, amount: str) -> None:
        """A planted stale deal was written."""

