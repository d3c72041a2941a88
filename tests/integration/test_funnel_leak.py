"""funnel_leak_weekly at its limits, on hand-built signals, opportunities and events: each
zone exactly at its limit is no finding, one more problem is."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from revleak import findings, pipeline
from tests.books import Books

CHECK = "funnel_leak_weekly"
SUNDAY = date(2026, 3, 8)
MONDAY = datetime.fromisoformat("2026-03-02T09:00:00+00:00")


def ts(moment: datetime) -> str:
    return moment.isoformat()


def week(books: Books, n: int, *, same_day: int, routed: int, answered: int,
         followed: int) -> None:
    """n high-intent inquiries on Monday: the first `same_day` captured that day, the first
    `routed` assigned within 4 h, `answered` answered within 1 h, `followed` touched twice."""
    for i in range(n):
        sid, oid = f"S{i}", f"O{i}"
        books.rows["inbound_signals"].append({"signal_id": sid, "received_at": ts(MONDAY),
                                              "channel": "phone", "intent": "high",
                                              "contact_key": f"k{i}"})
        created = MONDAY if i < same_day else MONDAY + timedelta(days=1)
        books.rows["opportunities"].append({
            "opportunity_id": oid, "signal_id": sid, "created_at": ts(created),
            "channel": "phone", "intent": "high", "stage": "qualified"})
        assigned = created + timedelta(hours=1 if i < routed else 5)
        events = [("assigned", assigned)]
        if i < answered:
            events.append(("first_response", created + timedelta(minutes=30)))
        events.append(("touch", assigned + timedelta(hours=2)))
        if i < followed:
            events.append(("touch", assigned + timedelta(hours=20)))
        for j, (kind, at) in enumerate(events):
            books.rows["opportunity_events"].append({
                "event_id": f"E{i}-{j}", "opportunity_id": oid, "occurred_at": ts(at),
                "event_type": kind})


@pytest.mark.parametrize(("extra", "zones"), [
    (0, set()),
    (1, {"intake", "routing", "response", "follow_up"}),
])
def test_zone_limits(conn, tmp_path, extra, zones):
    # 20 inquiries: intake 95% captured; routing 10% late; response 30% late;
    # follow-up 40% without a second touch — each exactly at its limit
    b = Books()
    week(b, 20, same_day=19 - extra, routed=18 - extra, answered=14 - extra,
         followed=12 - extra)
    b.load(conn, tmp_path)
    pipeline.run_check(CHECK, SUNDAY)
    conn.commit()
    got = {f["entity_id"]: f for f in findings.query(conn, CHECK, SUNDAY)}
    assert set(got) == zones
    if zones:
        assert got["intake"]["gap_pct"] == 90
        assert got["routing"]["evidence"]["problems"] == 3
        assert got["response"]["evidence"]["population"] == 20
