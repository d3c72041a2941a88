"""The demo company's checked week through funnel_leak_weekly: every zone the generator planted
leaks in is found, with each leak state it planted there; every planted stale deal is found,
and nothing else; every figure (each zone's value and rate, each deal's expected value and
days) is the independent oracle's."""

from __future__ import annotations

from datetime import date

from revleak import demo, loader
from tests import demo_books
from tests.integration.test_funnel_leak import CHECK, run
from tests.property.test_checks_agree_with_oracle import differences, found


def test_the_demo_week_is_found_as_planted(conn, tmp_path):
    manifest = demo.generate(tmp_path / "demo", seed=7, scale="small")
    loader.load(conn, tmp_path / "demo")
    conn.commit()
    as_of = date.fromisoformat(manifest["runs"][CHECK]["as_of"])
    got = run(conn, as_of)
    planted = {x["entity_id"]: x for x in manifest["leaks"] if x["check"] == CHECK}
    assert set(got) == set(planted)
    for zone in demo.ZONES:
        states = got[zone]["evidence"]["states"]
        assert planted[zone]["states"] and all(
            states[s]["count"] > 0 for s in planted[zone]["states"]), zone
        assert got[zone]["gap_amount_base"] > 0, zone
    stale = sorted(k for k, x in planted.items() if x["category"] == "stale_deal")
    assert len(stale) >= 2
    assert got["close"]["evidence"]["states"]["silent_drop_off"]["ids"] == stale
    for deal in stale:
        assert got[deal]["customer_id"] == planted[deal]["customer_id"], deal
        assert got[deal]["evidence"]["team"] == demo.INBOUND_TEAM, deal
    want = demo_books.judged(demo_books.read(tmp_path / "demo"), manifest, CHECK)
    assert not differences(found(conn, CHECK, as_of), want)
