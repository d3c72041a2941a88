"""The demo company's checked week through funnel_leak_weekly: every zone the generator
seeded leaks, with the rate, population and leak-state counts its manifest names, worth the
value the manifest worked out from the demo's own won and lost deals; every seeded stale deal
is found with its expected value and days outstanding, and nothing else."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from revleak import demo, loader
from tests.integration.test_funnel_leak import CHECK, run


def test_the_demo_week_is_found_as_seeded(conn, tmp_path):
    manifest = demo.generate(tmp_path / "demo", seed=7, scale="small")
    loader.load(conn, tmp_path / "demo")
    conn.commit()
    got = run(conn, date.fromisoformat(manifest["runs"][CHECK]["as_of"]))
    seeded = {x["entity_id"]: x for x in manifest["leaks"] if x["check"] == CHECK}
    assert set(got) == set(seeded)
    for zone in demo.ZONES:
        found, leak = got[zone], seeded[zone]
        evidence = found["evidence"]
        assert (evidence["value_pct"], evidence["problems"], evidence["population"]) == (
            float(leak["value_pct"]), leak["problems"], leak["population"]), zone
        assert {s: v["count"] for s, v in evidence["states"].items()} == leak["states"], zone
        assert found["gap_amount_base"] == Decimal(leak["lost_value_base"]) > 0, zone
    stale = {k for k, x in seeded.items() if x["category"] == "stale_deal"}
    assert len(stale) >= 2
    assert got["close"]["evidence"]["states"]["silent_drop_off"]["ids"] == sorted(stale)
    for deal in stale:
        found, leak = got[deal], seeded[deal]
        assert (found["customer_id"], found["currency"], found["expected_amount"],
                found["actual_amount"], found["gap_amount"], found["days_outstanding"]) == (
            leak["customer_id"], leak["currency"], Decimal(leak["expected_amount"]), 0,
            Decimal(leak["gap_amount"]), leak["days_outstanding"]), deal
        assert found["evidence"]["team"] == demo.INBOUND_TEAM
