"""Configuration: defaults, overrides, and one clear line for every mistake."""

from decimal import Decimal

import pytest

from revleak.config import DEFAULT_PATH, _load, parse_config
from revleak.errors import RevleakError


def test_repo_config_is_valid_and_matches_the_contract_defaults():
    config = _load(str(DEFAULT_PATH))
    rules = config.rules["booked_vs_billed_daily"]
    assert (rules["tolerance_pct"], rules["tolerance_min"]) == (Decimal("0.5"), Decimal("1"))
    assert (rules["billing_lag_days"], rules["renewal_grace_days"]) == (31, 30)
    assert (config.timezone, config.base_currency) == ("UTC", "USD")
    teams = {check: r.owner.team for r in config.routes for check in r.match.check}
    assert teams["pricing_drift_quarterly"] == "Finance"
    assert teams["recognized_vs_collected_quarterly"] == "Accounting"


def test_empty_config_gets_defaults():
    config = parse_config(None)
    assert config.rules["booked_vs_billed_daily"]["billing_lag_days"] == 31
    assert {r.match.check[0]: r.owner.team for r in config.routes}["funnel_leak_weekly"] \
        == "Sales Ops"


@pytest.mark.parametrize(("data", "message"), [
    ({"company": {"timezone": "Mars/Olympus"}}, "company.timezone must be an IANA timezone"),
    ({"company": {"base_currency": "usd"}}, "company.base_currency must be an ISO 4217 code"),
    ({"checks": {"booked_vs_billed_daily": {"tolerance_pct": 150}}},
     "checks.booked_vs_billed_daily.tolerance_pct must be a number from 0 to 100 (got 150)"),
    ({"checks": {"booked_vs_billed_daily": {"billing_lag": 3}}},
     "unknown key checks.booked_vs_billed_daily.billing_lag; allowed keys: schedule_hour"),
    ({"checks": {"booked_vs_billed": {}}}, "unknown check checks.booked_vs_billed"),
    ({"routing": {"rules": [{"match": {"check": "booked_vs_billed_daily"},
                              "owner": {"team": "RevOps", "name": "x", "email": ""}}]}},
     "routing.rules[0].owner.email must be a non-empty text"),
    ({"routing": {"rules": [{"match": {"categry": "unbilled"}, "owner": {}}]}},
     "unknown key routing.rules[0].match.categry"),
    ({"routing": {"rules": [{"match": {"check": "nightly"}, "owner": {}}]}},
     "routing.rules[0].match.check 'nightly' is not a check"),
    ({"tickets": {"update_share": "lots"}}, "tickets.update_share must be a number"),
    ({"tolerances": {}}, "unknown section 'tolerances'"),
])
def test_invalid_config_names_the_key_and_allowed_values(data, message):
    with pytest.raises(RevleakError) as err:
        parse_config(data, "test.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
