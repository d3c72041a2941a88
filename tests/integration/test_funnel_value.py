"""What a funnel leak costs, on hand-built books: a zone's lost opportunities valued at the
expected value of their channel and intent (won revenue ÷ opportunities closed over the
trailing year, in base currency), and stale deals (no activity in 30 days) as findings worth
their amount × win rate, routed to the team that owns the deal."""

from __future__ import annotations

from decimal import Decimal

import yaml

from revleak import findings
from tests.conftest import ROOT
from tests.integration.test_funnel_leak import CHECK, SUNDAY, Funnel, run


def history(f: Funnel) -> None:
    """The CRM's closed deals of the year to Sunday 2026-03-08 (window from 2025-03-09).

    phone × high: won EUR 4,000 (USD 5,000 at 1.25) and 4 lost → 5 closed: 1,000.00 each;
    chat × high: won USD 3,000, 1 lost → 2 closed, too few: the company's figure,
    (5,000 + 3,000) ÷ 7 = 1,142.86. A phone deal lost the minute before the window is out."""
    f.books.fx("EUR", "2026-01-01", "1.25").fx("EUR", "2026-03-09", "2.00")
    f.won("2025-11-03 10:00", "4000.00", channel="phone", currency="EUR")
    f.lost("2025-03-09 00:00", channel="phone")  # the window's first minute
    for closed in ("2025-06-02 10:00", "2025-09-01 10:00", "2026-02-02 10:00"):
        f.lost(closed, channel="phone")
    f.lost("2025-03-08 23:59", channel="phone")
    f.won("2026-01-05 10:00", "3000.00", channel="chat")
    f.lost("2026-01-06 10:00", channel="chat")


def test_a_zone_is_worth_its_lost_opportunities(conn, tmp_path):
    f = Funnel()
    history(f)
    for i, (channel, late) in enumerate((("phone", True), ("phone", True), ("phone", True),
                                        ("phone", False), ("phone", False), ("chat", True),
                                        ("chat", True)), 1):
        oid = f.opportunity("2026-03-02 10:00", oid=f"R{i}", channel=channel)
        f.event(oid, "first_response", "2026-03-02 12:00" if late else "2026-03-02 10:30")
    f.load(conn, tmp_path)
    response = run(conn)["response"]
    # 3 phone × 1,000.00 + 2 chat × 1,142.86 = 5,285.72, open 7 days (its first week)
    assert (response["gap_amount"], response["gap_amount_base"], response["currency"]) == (
        Decimal("5285.72"), Decimal("5285.72"), "USD")
    assert (response["expected_amount"], response["actual_amount"]) == (None, None)
    assert response["days_outstanding"] == 7
    assert response["time_weighted_loss"] == Decimal("37000.04")
    value = response["evidence"]["value"]
    assert value["amount_base"] == 5285.72 and value["currency"] == "USD"
    assert "2025-03-09 to 2026-03-08" in value["method"]
    assert value["by_channel_intent"] == [
        {"channel": "phone", "intent": "high", "leaked": 3, "expected_value_base": 1000,
         "value_base": 3000, "basis": "channel_intent", "closed": 5, "won": 1,
         "win_rate_pct": 20, "average_won_base": 5000},
        {"channel": "chat", "intent": "high", "leaked": 2, "expected_value_base": 1142.86,
         "value_base": 2285.72, "basis": "company", "closed": 7, "won": 2,
         "win_rate_pct": 28.57, "average_won_base": 4000}]


def test_with_no_history_a_leak_is_worth_nothing_yet(conn, tmp_path):
    f = Funnel()
    oid = f.opportunity("2026-03-02 10:00", oid="R1")
    f.event(oid, "first_response", "2026-03-02 12:00")
    f.load(conn, tmp_path)
    response = run(conn)["response"]
    assert (response["gap_amount_base"], response["time_weighted_loss"]) == (0, 0)


def stale_books(f: Funnel) -> None:
    """referral × high: won 6,000 and 4,000, lost 3 in the window → 2 of 5 won; one lost
    the day before the window is out. A walk-in lost this week makes the company 6 closed,
    10,000 won: 1,666.67 per opportunity."""
    f.books.fx("EUR", "2026-01-01", "1.10")
    f.won("2026-03-04 10:00", "6000.00")
    f.won("2025-12-01 10:00", "4000.00")
    for closed in ("2025-06-01 10:00", "2025-03-09 00:00", "2026-01-15 10:00"):
        f.lost(closed)
    f.lost("2025-03-08 12:00")
    f.lost("2026-03-03 10:00", channel="walk_in")

    def deal(oid: str, last_touch: str | None, team: str, **kw) -> None:
        f.opportunity(kw.pop("created", "2026-01-05 10:00"), oid=oid, stage="proposal",
                      channel=kw.pop("channel", "referral"), team="", owner="Dev Patel", **kw)
        if last_touch:
            f.event(oid, "assigned", "2026-01-05 10:10", team=team)
            f.event(oid, "touch", last_touch, team=team)

    deal("K1", "2026-02-06 10:00", "Enterprise", amount="10000.00", customer="C1")
    deal("K2", "2026-02-07 10:00", "Enterprise", amount="10000.00")  # 29 days: not stale
    deal("K7", "2026-01-20 10:00", "Mid-Market", amount="5000.00", currency="EUR")
    deal("K8", None, "", channel="phone", created="2026-01-10 10:00")
    f.books.rows["opportunities"][-1]["team"] = "Inbound Desk"
    f.books.customer("C1")


def team_config(tmp_path) -> str:
    data = yaml.safe_load((ROOT / "tests" / "fixture_config.yaml").read_text(encoding="utf-8"))
    data["routing"]["rules"][:0] = [
        {"match": {"check": CHECK, "category": "stale_deal", "team": "Enterprise"},
         "owner": {"team": "Enterprise", "name": "Enterprise desk", "email": "ent@example.com"}},
        {"match": {"check": CHECK, "category": "stale_deal", "team": ["Mid-Market", "SMB"]},
         "owner": {"team": "Mid-Market", "name": "Mid-market lead", "email": "mm@example.com"}}]
    path = tmp_path / "teams.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_stale_deals_are_findings_for_their_teams(conn, tmp_path, monkeypatch):
    monkeypatch.setenv("REVLEAK_CONFIG", team_config(tmp_path))
    f = Funnel()
    stale_books(f)
    f.load(conn, tmp_path / "books")
    got = run(conn)
    stale = {k: v for k, v in got.items() if v["category"] == "stale_deal"}
    assert set(stale) == {"K1", "K7", "K8"}
    figures = {k: (v["customer_id"], v["currency"], v["expected_amount"], v["actual_amount"],
                   v["gap_amount"], v["gap_amount_base"], v["gap_pct"], v["days_outstanding"],
                   v["time_weighted_loss"]) for k, v in stale.items()}
    assert figures == {
        # 10,000 × 2/5, stale since 30 days without activity: 0 days outstanding
        "K1": ("C1", "USD", Decimal("4000.00"), 0, Decimal("4000.00"), Decimal("4000.00"), 100,
               0, 0),
        # EUR 5,000 × 2/5 = 2,000 (USD 2,200 at 1.10); silent since Jan 20: stale Feb 19
        "K7": (None, "EUR", Decimal("2000.00"), 0, Decimal("2000.00"), Decimal("2200.00"), 100,
               17, Decimal("37400.00")),
        # no amount, no activity since created Jan 10, phone history too thin: 1,666.67
        "K8": (None, "USD", Decimal("1666.67"), 0, Decimal("1666.67"), Decimal("1666.67"), 100,
               27, Decimal("45000.09")),
    }
    k1 = stale["K1"]["evidence"]
    assert (k1["team"], k1["crm_owner"], k1["days_without_activity"]) == (
        "Enterprise", "Dev Patel", 30)
    assert (k1["value"]["basis"], k1["value"]["win_rate_pct"]) == ("channel_intent", 40)
    assert stale["K8"]["evidence"]["value"]["basis"] == "company"
    owners = {x["entity_id"]: x["owner"]["team"] for x in findings.query(conn, CHECK, SUNDAY)
              if x["category"] == "stale_deal"}
    assert owners == {"K1": "Enterprise", "K7": "Mid-Market", "K8": "Sales Ops"}
    stale_metric = conn.execute(
        "select value, detail from revleak.metrics where check_id = %s and as_of = %s"
        " and metric = 'stale_deals'", (CHECK, SUNDAY)).fetchone()
    assert stale_metric == (3, {"value_base": 7866.67, "stale_days": 30})


def test_stale_days_are_configurable(conn, tmp_path):
    f = Funnel()
    stale_books(f)
    f.load(conn, tmp_path)
    got = run(conn, stale_days=29)
    assert {k for k, v in got.items() if v["category"] == "stale_deal"} == {"K1", "K2", "K7",
                                                                          "K8"}
