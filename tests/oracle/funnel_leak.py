"""funnel_leak_weekly by hand (contract §3): one rate per zone for the ISO week ending on the
as-of Sunday (company timezone), a finding per zone past its limit, its rate as gap_pct.

- intake: inbound signals received in the week; a problem when no opportunity was created from
  the signal on the day it arrived; a finding when the captured share is below the minimum;
- routing: opportunities created in the week with no ``assigned`` event within the routing
  hours of their creation;
- response: high-intent opportunities created in the week with no ``first_response`` (an
  auto-ack is no response) within the response minutes;
- follow_up: opportunities first assigned in the week with fewer than two first responses or
  touches from assignment to the follow-up hours after it;
- close: opportunities open (not closed won or lost) created by the week's end, past their
  expected close date with no next step set (by the week's end) due on or after the as-of date.

The share of problems is rounded to 2 decimals, then compared with the limit.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

from tests.oracle.common import (
    Finding,
    Rows,
    Run,
    by,
    day,
    local_day,
    local_midnight,
    moment,
    rounded,
)


def findings(rows: Rows, run: Run) -> list[Finding]:
    as_of, end, tz = run.as_of, run.as_of_end, run.tz
    start = local_midnight(as_of - timedelta(days=as_of.weekday()), tz)
    events = by(rows["opportunity_events"], "opportunity_id")
    opportunities = rows["opportunities"]

    def in_week(ts: str) -> bool:
        return start <= moment(ts) < end

    def has_event(opp: dict, kind: str, within: timedelta) -> bool:
        deadline = moment(opp["created_at"]) + within
        return any(e["event_type"] == kind and moment(e["occurred_at"]) <= deadline
                   for e in events.get(opp["opportunity_id"], []))

    captured = {(o["signal_id"], local_day(o["created_at"], tz)) for o in opportunities
                if o.get("signal_id")}
    week = [o for o in opportunities if in_week(o["created_at"])]
    zones: dict[str, list[bool]] = {
        "intake": [(s["signal_id"], local_day(s["received_at"], tz)) not in captured
                   for s in rows["inbound_signals"] if in_week(s["received_at"])],
        "routing": [not has_event(o, "assigned", timedelta(hours=run.rules["routing_hours"]))
                    for o in week],
        "response": [not has_event(o, "first_response",
                                   timedelta(minutes=run.rules["response_minutes"]))
                     for o in week if o["intent"] == "high"],
        "follow_up": [],
        "close": [],
    }
    window = timedelta(hours=run.rules["follow_up_hours"])
    for opp_events in events.values():
        assigned = [moment(e["occurred_at"]) for e in opp_events if e["event_type"] == "assigned"]
        if not assigned or not start <= min(assigned) < end:
            continue
        at = min(assigned)
        touches = sum(1 for e in opp_events if e["event_type"] in ("first_response", "touch")
                      and at <= moment(e["occurred_at"]) <= at + window)
        zones["follow_up"].append(touches < 2)
    for o in opportunities:
        if o["stage"] in ("closed_won", "closed_lost") or moment(o["created_at"]) >= end:
            continue
        close_by = day(o.get("expected_close_date"))
        next_step_ahead = any(
            e["event_type"] == "next_step_set" and moment(e["occurred_at"]) < end
            and e.get("next_step_due") and local_day(e["next_step_due"], tz) >= as_of
            for e in events.get(o["opportunity_id"], []))
        zones["close"].append(close_by is not None and close_by < as_of and not next_step_ahead)

    limits = {"intake": 100 - run.rule("intake_min_pct"), "routing": run.rule("routing_max_pct"),
              "response": run.rule("response_max_pct"),
              "follow_up": run.rule("follow_up_max_pct"), "close": run.rule("close_max_pct")}
    out = []
    for zone, problems in zones.items():
        if not problems:
            continue
        share = Fraction(rounded(Fraction(100 * sum(problems), len(problems)), 2))
        if share > limits[zone]:
            rate = 100 - share if zone == "intake" else share
            out.append(run.finding(zone, "zone", zone, None, None, None, None, None, None,
                                   gap_pct=rate))
    return out
