"""funnel_leak_weekly by hand (docs/funnel.md, rule version fl-2): for the ISO week ending on
the as-of Sunday (company timezone), each zone's population and leak states, its channel ×
intent × time-of-day cells, the triggers that open its finding (rate, cells, a worsening
trend measured from the books as they stood at each earlier week's end) and what the week's
leak was worth; and a ``stale_deal`` finding per opportunity open with no activity in the last
``stale_days`` days.

Where the doc is silent, the oracle decides (and the check agrees):
- a closed deal without ``closed_at`` is closed at any moment (it is never open, never part of
  the history window);
- rates of zones, cells and trend weeks are compared as rounded to 2 decimals;
- of two opportunities of one contact created at the same instant, the later id is the
  duplicate;
- a missed call's callback counts when it is logged on any opportunity of the signal, even one
  created after the week's end (the callback target started in the week);
- with no closed deal in the history window, a win rate is 0 and a lead is worth 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise

from tests.oracle.common import (
    Finding,
    Fx,
    Rows,
    Run,
    by,
    cents,
    day,
    flag,
    local_day,
    local_midnight,
    moment,
    money,
    rounded,
)

CLOSED = ("closed_won", "closed_lost")
TOUCHES = ("first_response", "touch")
ZONES = ("intake", "routing", "response", "follow_up", "close")


@dataclass(frozen=True)
class Item:
    """One item of a zone's population: where its clock started and its leak states."""

    id: str
    channel: str
    intent: str
    clock: datetime
    states: frozenset[str]


class Books:
    """The funnel's rows, indexed, read in the company's timezone."""

    def __init__(self, rows: Rows, run: Run):
        self.run, self.tz = run, run.tz
        self.signals = rows["inbound_signals"]
        self.opportunities = rows["opportunities"]
        self.events = {k: sorted(v, key=lambda e: (moment(e["occurred_at"]), e["event_id"]))
                       for k, v in by(rows["opportunity_events"], "opportunity_id").items()}
        self.by_signal = by(self.opportunities, "signal_id")
        contact = {s["signal_id"]: s["contact_key"] for s in self.signals}
        self.contact = {o["opportunity_id"]: contact.get(o["signal_id"] or "")
                        for o in self.opportunities}
        self.by_contact = defaultdict(list)
        for o in self.opportunities:
            if self.contact[o["opportunity_id"]]:
                self.by_contact[self.contact[o["opportunity_id"]]].append(o)
        self.fx = Fx(rows["fx_rates"], run.base_currency)

    def of(self, opp: dict, *kinds: str) -> list[dict]:
        return [e for e in self.events.get(opp["opportunity_id"], [])
                if e["event_type"] in kinds]

    def band(self, at: datetime) -> str:
        local = at.astimezone(self.tz)
        if local.weekday() >= 5:
            return "weekend"
        start, end = self.run.rules["business_hours_start"], self.run.rules["business_hours_end"]
        return "business_hours" if start <= local.hour < end else "evening"


def closed_by(opp: dict, when: datetime, inclusive: bool = False) -> bool:
    """Closed won or lost by that moment (a close without a date: always)."""
    if opp["stage"] not in CLOSED:
        return False
    at = moment(opp["closed_at"])
    return at is None or at < when or (inclusive and at == when)


def business_days_after(first: date, last: date) -> int:
    """Monday–Friday days after ``first`` up to and including ``last``."""
    return sum(1 for n in range(1, (last - first).days + 1)
               if (first + timedelta(days=n)).weekday() < 5)


def measure(books: Books, as_of: date) -> dict[str, list[Item]]:
    """Each zone's population for the week ending on ``as_of``, by the books at its end."""
    rules, tz = books.run.rules, books.tz
    start = local_midnight(as_of - timedelta(days=as_of.weekday()), tz)
    end = local_midnight(as_of + timedelta(days=1), tz)
    zones: dict[str, list[Item]] = {zone: [] for zone in ZONES}

    def item(zone: str, oid: str, row: dict, clock: datetime, states: list[str]) -> None:
        zones[zone].append(Item(oid, row["channel"], row["intent"], clock, frozenset(states)))

    callback = timedelta(minutes=rules["callback_minutes"])
    for s in books.signals:
        received = moment(s["received_at"])
        if not start <= received < end:
            continue
        states = []
        captures = {local_day(o["created_at"], tz) for o in books.by_signal.get(s["signal_id"], [])
                    if moment(o["created_at"]) < end}
        arrived = received.astimezone(tz).date()
        if not captures:
            states.append("never_captured")
        elif arrived not in captures:
            late = business_days_after(arrived, min(captures))
            states.append("captured_within_a_business_day" if late <= 1
                          else "captured_over_a_business_day_late")
        if s["answered"] == "false" and not any(
                received <= moment(e["occurred_at"]) <= received + callback
                for o in books.by_signal.get(s["signal_id"], [])
                for e in books.of(o, *TOUCHES)):
            states.append("missed_call_no_callback")
        item("intake", s["signal_id"], s, received, states)

    routing = timedelta(hours=rules["routing_hours"])
    duplicate = timedelta(days=rules["duplicate_days"])
    targets = {"high": rules["response_minutes"], "medium": rules["response_minutes_medium"],
               "low": rules["response_minutes_low"]}
    for o in books.opportunities:
        created, oid = moment(o["created_at"]), o["opportunity_id"]
        if not start <= created < end:
            continue
        states = []
        assigned = [moment(e["occurred_at"]) for e in books.of(o, "assigned")]
        if not assigned or min(assigned) > created + routing:
            states.append("unassigned_past_limit")
        if any(moment(e["occurred_at"]) < end and not flag(e["has_note"])
               for e in books.of(o, "reassigned")):
            states.append("reassigned_without_note")
        if any(created - duplicate <= moment(p["created_at"])
               and (moment(p["created_at"]), p["opportunity_id"]) < (created, oid)
               for p in books.by_contact.get(books.contact[oid], [])):
            states.append("duplicate")
        if not o["owner"] and not closed_by(o, end) and not any(
                moment(e["occurred_at"]) < end for e in books.of(o, "assigned", "reassigned")):
            states.append("ownerless")
        item("routing", oid, o, created, states)

        if targets[o["intent"]] is None:
            continue
        deadline = created + timedelta(minutes=targets[o["intent"]])
        states = []
        if not any(moment(e["occurred_at"]) <= deadline for e in books.of(o, "first_response")):
            states.append("response_past_target")
            if any(moment(e["occurred_at"]) <= deadline for e in books.of(o, "auto_ack")):
                states.append("auto_ack_only")
        item("response", oid, o, created, states)

    window = timedelta(hours=rules["follow_up_hours"])
    for o in books.opportunities:
        assigned = [moment(e["occurred_at"]) for e in books.of(o, "assigned")]
        if not assigned:
            continue
        first = min(assigned)
        closes = first + window
        if not start <= closes < end:
            continue
        states = []
        if not closed_by(o, closes, inclusive=True):
            if sum(1 for e in books.of(o, *TOUCHES)
                   if first <= moment(e["occurred_at"]) <= closes) < 2:
                states.append("no_second_touch")
            if not any(first <= moment(e["occurred_at"]) <= closes
                       for e in books.of(o, "next_step_set")):
                states.append("no_next_step")
            steps = [e for e in books.of(o, "next_step_set") if moment(e["occurred_at"]) < end]
            due = moment(steps[-1]["next_step_due"]) if steps else None
            if not closed_by(o, end) and due is not None and due < end and not any(
                    due <= moment(e["occurred_at"]) < end for e in books.of(o, *TOUCHES)):
                states.append("next_step_overdue")
        item("follow_up", o["opportunity_id"], o, first, states)

    for o in open_at(books, end):
        states = []
        expected_close = day(o["expected_close_date"])
        step_ahead = any(moment(e["occurred_at"]) < end and e["next_step_due"]
                         and local_day(e["next_step_due"], tz) >= as_of
                         for e in books.of(o, "next_step_set"))
        if expected_close is not None and expected_close < as_of and not step_ahead:
            states.append("past_expected_close")
        if stale_since(books, o, end) <= as_of:
            states.append("silent_drop_off")
        item("close", o["opportunity_id"], o, moment(o["created_at"]), states)
    return zones


def open_at(books: Books, end: datetime) -> list[dict]:
    """Opportunities created and not closed won or lost by that moment."""
    return [o for o in books.opportunities
            if moment(o["created_at"]) < end and not closed_by(o, end)]


def stale_since(books: Books, opp: dict, end: datetime) -> date:
    """The day an open deal goes stale: its last activity (creation or any event but an
    auto-ack, by ``end``) plus ``stale_days``."""
    last = max([moment(opp["created_at"])] + [
        moment(e["occurred_at"]) for e in books.events.get(opp["opportunity_id"], [])
        if e["event_type"] != "auto_ack" and moment(e["occurred_at"]) < end])
    return last.astimezone(books.tz).date() + timedelta(days=books.run.rules["stale_days"])


def share(items: list[Item]) -> Fraction:
    """The share with a problem, in percent, rounded to 2 decimals as the rules compare it."""
    return Fraction(rounded(Fraction(100 * sum(1 for i in items if i.states), len(items)), 2))


@dataclass(frozen=True)
class Basis:
    """Closed and won opportunities over the history window and their won revenue (base)."""

    closed: int
    won: int
    won_base: Fraction

    @property
    def win_rate(self) -> Fraction:
        return Fraction(self.won, self.closed) if self.closed else Fraction(0)

    @property
    def expected_value(self) -> Fraction:
        """Won revenue ÷ opportunities closed, to the cent (0 with no history)."""
        return Fraction(cents(self.won_base / self.closed)) if self.closed else Fraction(0)


def history(books: Books, as_of: date, end: datetime):
    """The basis of an opportunity's channel and intent: its own history when it has at least
    ``value_min_closed`` closed deals, else the company's."""
    rules = books.run.rules
    since = local_midnight(as_of - timedelta(days=rules["history_days"] - 1), books.tz)
    cells: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, Fraction(0)])
    for o in books.opportunities:
        at = moment(o["closed_at"])
        if o["stage"] not in CLOSED or at is None or not since <= at < end:
            continue
        for key in ((o["channel"], o["intent"]), None):
            cells[key][0] += 1
            if o["stage"] == "closed_won":
                cells[key][1] += 1
                rate = books.fx.rate(o["currency"], as_of)
                if rate is not None:
                    cells[key][2] += money(o["amount"]) * rate

    def basis(channel: str, intent: str) -> Basis:
        own = cells.get((channel, intent))
        figures = own if own and own[0] >= rules["value_min_closed"] else cells.get(None)
        return Basis(*figures) if figures else Basis(0, 0, Fraction(0))

    return basis


def findings(rows: Rows, run: Run) -> list[Finding]:
    books, as_of, rules = Books(rows, run), run.as_of, run.rules
    end = run.as_of_end
    limits = {"intake": 100 - run.rule("intake_min_pct"), "routing": run.rule("routing_max_pct"),
              "response": run.rule("response_max_pct"),
              "follow_up": run.rule("follow_up_max_pct"), "close": run.rule("close_max_pct")}
    weeks = [measure(books, as_of - timedelta(weeks=n))
             for n in range(rules["trend_weeks"] - 1, -1, -1)]
    this_week = weeks[-1]
    basis = history(books, as_of, end)
    out = []
    for zone in ZONES:
        items = this_week[zone]
        if not items:
            continue
        over_limit = share(items) > limits[zone]
        cells: dict[tuple[str, str, str], list[Item]] = defaultdict(list)
        for i in items:
            cells[(i.channel, i.intent, books.band(i.clock))].append(i)
        cell_past_limit = any(len(c) >= rules["cell_min_population"]
                              and share(c) > limits[zone] for c in cells.values())
        rates = [share(w[zone]) if w[zone] else None for w in weeks]
        worsening = None not in rates and all(a < b for a, b in pairwise(rates))
        if not (over_limit or cell_past_limit or worsening):
            continue
        value = sum((basis(i.channel, i.intent).expected_value for i in items if i.states),
                    Fraction(0))
        rate = 100 - share(items) if zone == "intake" else share(items)
        out.append(run.finding(zone, "zone", zone, run.base_currency, None, None, value,
                               Fraction(1), 7, gap_pct=rate))

    for o in open_at(books, end):
        went_stale = stale_since(books, o, end)
        if went_stale > as_of:
            continue
        worth = basis(o["channel"], o["intent"])
        amount = money(o["amount"])
        if amount is None:
            currency, value = run.base_currency, worth.expected_value
        else:
            currency, value = o["currency"], amount * worth.win_rate
        out.append(run.finding("stale_deal", "opportunity", o["opportunity_id"], currency,
                               value, Fraction(0), value, books.fx.rate(currency, as_of),
                               (as_of - went_stale).days))
    return out
