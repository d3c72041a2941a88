"""The check registry agrees with everything that reads it: one DAG file per check whose docs
say the spec's owner and cadence, one SQL file holding the steps the spec names, windows of
the cadence's length, rule defaults of the contract (§3) and a trigger form whose Params are
the rules' own, with the rules' bounds."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from revleak import periods, statements
from revleak.registry import CHECK_IDS, CHECKS, FunnelLeak
from revleak.tables import TABLES
from tests.contract import OWNING_TEAMS

DAGS = Path(__file__).resolve().parents[2] / "dags"
RUNS = {"daily": "**Runs** daily", "weekly": "**Runs** every Monday",
        "quarterly": "**Runs** on the first day of each quarter",
        "on_change": "**Runs** whenever a price table changes"}
# Contract §3 "Default rules", written down from the contract, not from the code.
CONTRACT_DEFAULTS = {
    "booked_vs_billed_daily": {"tolerance_pct": Decimal("0.5"), "tolerance_min": Decimal("1.00"),
                               "billing_lag_days": 31, "renewal_grace_days": 30},
    "billed_vs_collected_weekly": {"tolerance_pct": Decimal("0.5"),
                                   "tolerance_min": Decimal("1.00"),
                                   "realization_alarm_pct": Decimal("95")},
    "recognized_vs_collected_quarterly": {"collection_lag_days": 90, "deposit_lag_days": 5},
    "pricing_drift_quarterly": {"max_unapproved_discount_pct": Decimal("15"),
                                "subscription_drift_pct": Decimal("5")},
    "funnel_leak_weekly": {"intake_min_pct": Decimal("95"), "response_minutes": 60,
                           "response_max_pct": Decimal("30"), "follow_up_hours": 48,
                           "follow_up_max_pct": Decimal("40")},
}


def _own(spec):
    return CHECKS[spec.same_as] if spec.same_as else spec


def test_one_dag_file_per_check_and_nothing_else():
    assert {p.stem for p in DAGS.glob("*.py")} == set(CHECK_IDS)


@pytest.mark.parametrize("check", CHECK_IDS)
def test_the_dag_file_is_the_factory_call_and_its_docs_match_the_spec(check):
    spec = CHECKS[check]
    module = ast.parse((DAGS / f"{check}.py").read_text(encoding="utf-8"))
    calls = [ast.unparse(n.value) for n in module.body
             if isinstance(n, ast.Assign) and [ast.unparse(t) for t in n.targets] == ["dag"]]
    assert calls == ["check_dag(Path(__file__).stem, __doc__)"]
    doc = ast.get_docstring(module)
    assert f"### {check} " in doc
    assert f"**Owner:** {spec.owner}." in doc
    assert RUNS[spec.cadence] in doc


@pytest.mark.parametrize("check", CHECK_IDS)
def test_the_sql_file_exists_and_holds_the_steps_the_spec_names(check):
    spec = CHECKS[check]
    assert (statements.SQL_DIR / spec.sql).is_file()
    steps = statements.named(spec.sql)
    assert "findings" in steps, "every check ends in its findings step"
    assert any("run_findings" in body for body in steps.values())
    if spec.trend_steps:
        names = list(steps)
        assert [n for n in names if n in spec.trend_steps] == list(spec.trend_steps)
        assert "forget_week" in names


@pytest.mark.parametrize("check", CHECK_IDS)
def test_sources_and_triggers_are_contract_tables(check):
    spec = CHECKS[check]
    assert spec.sources and set(spec.sources) <= set(TABLES)
    assert set(spec.triggered_by) <= set(TABLES)
    assert bool(spec.triggered_by) == (spec.cadence == "on_change")


def test_a_check_that_borrows_another_ones_sql_shares_its_rules_and_leaves_it_the_tickets():
    borrowers = [s for s in CHECKS.values() if s.same_as]
    assert borrowers, "pricing_drift_on_change reuses the quarterly audit"
    for spec in borrowers:
        own = CHECKS[spec.same_as]
        assert own.same_as is None and own.tickets
        assert (spec.sql, spec.rules, spec.rule_version) == (own.sql, own.rules, own.rule_version)
        assert not spec.tickets
    assert all(s.tickets for s in CHECKS.values() if not s.same_as)


@pytest.mark.parametrize("check", CHECK_IDS)
def test_the_owner_is_the_contracts_owning_team(check):
    assert CHECKS[check].owner == OWNING_TEAMS[_own(CHECKS[check]).id]


@pytest.mark.parametrize("check", sorted(CONTRACT_DEFAULTS))
def test_rule_defaults_are_the_contracts(check):
    defaults = CHECKS[check].rules()
    for rule, expected in CONTRACT_DEFAULTS[check].items():
        assert getattr(defaults, rule) == expected, rule
    assert defaults.schedule_hour == 6


# Each cadence's window, for every day of two years: its length, its end before day D, and
# the same start whether derived from D (a run) or from its as-of date (a report).
LENGTHS = {"daily": {1}, "weekly": {7}, "quarterly": {90, 91, 92}, "on_change": set(range(1, 93))}


@pytest.mark.parametrize("check", CHECK_IDS)
def test_every_window_has_its_cadences_length_and_ends_before_the_run_day(check):
    cadence = CHECKS[check].cadence
    for n in range(731):
        day = date(2025, 1, 1) + timedelta(days=n)
        w = periods.window(check, day)
        assert (w.as_of - w.start).days + 1 in LENGTHS[cadence], (check, day, w)
        assert w.as_of < day
        assert periods.window_start(check, w.as_of) == w.start, (check, day)
        if cadence in ("daily", "on_change"):
            assert w.as_of == day - timedelta(days=1)
        if cadence == "weekly":
            assert w.start.weekday() == 0
        if cadence == "quarterly":
            assert (w.start.month, w.start.day) in {(1, 1), (4, 1), (7, 1), (10, 1)}


def test_params_are_rules_of_their_check_with_the_rules_type_and_bounds():
    """The trigger form offers a spec's Params with the rule's JSON type and the rule's bounds
    (where the form states one), so a manual run cannot ask for what configuration refuses."""
    from revleak.airflow_dags import PARAMS

    offered = {p for spec in CHECKS.values() for p in spec.params}
    assert set(PARAMS) == {"dry_run", *offered}
    for spec in CHECKS.values():
        for name in spec.params:
            field = spec.rules.model_fields[name]
            schema = PARAMS[name].schema
            kind = "number" if field.annotation is Decimal else "integer"
            assert schema["type"] == ["null", kind], (spec.id, name)
            assert PARAMS[name].value is None, "no override unless a person sets one"
            bounds = {type(m).__name__: m for m in field.metadata}
            assert schema["minimum"] == bounds["Ge"].ge, (spec.id, name)
            if "maximum" in schema:
                assert schema["maximum"] == bounds["Le"].le, (spec.id, name)


def test_business_hours_must_end_after_they_start():
    assert FunnelLeak(business_hours_start=9, business_hours_end=24).business_hours_end == 24
    with pytest.raises(ValidationError, match="an hour after business_hours_start"):
        FunnelLeak(business_hours_start=9, business_hours_end=9)
