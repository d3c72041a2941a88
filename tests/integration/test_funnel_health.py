"""The pipeline's weekly health figures on a hand-built history: stage-to-stage conversion,
average time in stage, win rate, average deal, cycle length, pipeline velocity and lead-source
quality, kept in revleak.metrics for the week checked."""

from __future__ import annotations

from decimal import Decimal

from revleak import reports
from tests.integration.test_funnel_leak import SUNDAY, Funnel, metrics, run


def test_pipeline_health(conn, tmp_path):
    f = Funnel()
    # H1 walks every stage: 2 days new, 5 qualified, 2 meeting, 10 proposal, 10 negotiation,
    # won USD 9,000 after 29 days
    f.won("2026-01-30 00:00", "9000.00", created="2026-01-01 00:00", oid="H1",
          source="webinar")
    for day, stage in (("03", "qualified"), ("08", "meeting"), ("10", "proposal"),
                       ("20", "negotiation"), ("30", "closed_won")):
        f.event("H1", "stage_changed", f"2026-01-{day} 00:00", stage_to=stage)
    # H2: 4 days new, 10 qualified, then lost
    f.lost("2026-01-15 00:00", created="2026-01-01 00:00", oid="H2", source="webinar",
           reason="lost_to_competitor")
    f.event("H2", "stage_changed", "2026-01-05 00:00", stage_to="qualified")
    f.event("H2", "stage_changed", "2026-01-15 00:00", stage_to="closed_lost")
    # H3: 1 day new, qualified, now in meeting (the CRM's stage, no event): open
    f.opportunity("2026-02-01 00:00", oid="H3", stage="meeting", channel="web_form")
    f.event("H3", "stage_changed", "2026-02-02 00:00", stage_to="qualified")
    f.event("H3", "touch", "2026-03-02 10:00")
    # H4: new, untouched, open
    f.opportunity("2026-02-10 00:00", oid="H4", channel="chat")
    f.event("H4", "touch", "2026-03-02 10:00")
    # H5: won USD 3,000 straight from new after 10 days (it passed every stage)
    f.won("2026-02-11 00:00", "3000.00", created="2026-02-01 00:00", oid="H5",
          channel="email", source="partner")
    f.event("H5", "stage_changed", "2026-02-11 00:00", stage_to="closed_won")
    f.load(conn, tmp_path)
    run(conn)
    got = {k: v for k, (v, _) in metrics(conn).items()}
    # furthest stage: H1 won, H2 qualified, H3 meeting, H4 new, H5 won
    assert {k: got[k] for k in got if k.startswith("conversion_")} == {
        "conversion_new_to_qualified_pct": 80,  # 4 of 5
        "conversion_qualified_to_meeting_pct": 75,  # 3 of 4
        "conversion_meeting_to_proposal_pct": Decimal("66.67"),  # 2 of 3
        "conversion_proposal_to_negotiation_pct": 100,
        "conversion_negotiation_to_closed_won_pct": 100}
    assert {k: got[k] for k in got if k.startswith("time_in_")} == {
        "time_in_new_days": 4.25,  # (2 + 4 + 1 + 10) / 4 completed stays
        "time_in_qualified_days": 7.5,  # (5 + 10) / 2; H3 is still qualified
        "time_in_meeting_days": 2, "time_in_proposal_days": 10,
        "time_in_negotiation_days": 10}
    assert got["win_rate_pct"] == Decimal("66.67")  # H1, H5 won; H2 lost
    assert got["average_deal_base"] == 6000
    assert got["sales_cycle_days"] == 19.5  # (29 + 10) / 2
    assert got["qualified_pipeline"] == 1  # H3 (H4 is still new)
    assert got["pipeline_velocity_base_per_day"] == Decimal("205.13")  # 1 × 6,000 × 2/3 ÷ 19.5
    sources = metrics(conn)["lead_source_quality"]
    assert sources[0] == 12000
    assert sources[1]["sources"] == [
        {"source": "webinar", "channel": "referral", "closed": 2, "won": 1, "win_rate_pct": 50,
         "won_revenue_base": 9000},
        {"source": "partner", "channel": "email", "closed": 1, "won": 1, "win_rate_pct": 100,
         "won_revenue_base": 3000}]
    # the week's report shows the same health (hand-computed figures above)
    page = reports.stored_or_rendered("funnel_leak_weekly", SUNDAY, "html").decode()
    health = page[page.index('<section id="pipeline-health">'):]
    health = health[:health.index("</section>")]
    assert "win rate 66.7%, average won deal USD 6,000.00, sales cycle 20 days" in health
    assert "pipeline velocity USD 205.13 a day" in health
    assert ('<tr data-stage="new"><td>new → qualified</td><td class="num">5</td>'
            '<td class="num">80.0%</td><td class="num">4.2</td></tr>') in health
    assert ("<td>webinar</td><td>referral</td><td class=\"num\">2</td><td class=\"num\">1</td>"
            "<td class=\"num\">50.0%</td><td class=\"num\">USD 9,000.00</td>") in health
