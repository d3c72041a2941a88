"""Many companies, one oracle (issue 8): hypothesis builds small companies (tests/companies.py),
loads them with ``revleak load``'s loader, runs each check through ``pipeline.run_check`` on
random as-of dates of the year with random rules and company timezones, and compares every
finding's identity and figures with the independent oracle (tests/oracle). Delivered books are
never ``data_missing``.

One database per test, emptied between examples. Examples per check: the ``ci`` profile
(default); a long run: ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/property``.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from revleak import loader, pipeline
from revleak.checks import DataMissing
from tests import oracle
from tests.companies import BASE_CURRENCY, TIMEZONES, YEAR_END, YEAR_START, Company, companies

FIGURES = ("expected_amount", "actual_amount", "gap_amount", "currency", "gap_amount_base",
           "gap_pct", "days_outstanding", "time_weighted_loss")
QUARTER_ENDS = tuple(date(2025, m, d) for m, d in ((3, 31), (6, 30), (9, 30), (12, 31)))

# The rules each run is judged by, passed to the check as run overrides and to the oracle:
# the configured defaults and a few other settings a company might choose.
RULES = {
    "booked_vs_billed_daily": {
        "tolerance_pct": ("0.5", "0", "2"), "tolerance_min": ("1.00", "0.01", "25.00"),
        "billing_lag_days": (31, 0, 10, 45), "renewal_grace_days": (30, 0, 7)},
    "billed_vs_collected_weekly": {
        "tolerance_pct": ("0.5", "0", "2"), "tolerance_min": ("1.00", "0.01"),
        "realization_alarm_pct": ("95", "80", "99.5")},
    "recognized_vs_collected_quarterly": {
        "tolerance_pct": ("0.5", "0", "2"), "tolerance_min": ("1.00", "0.01"),
        "collection_lag_days": (90, 0, 30), "deposit_lag_days": (5, 0, 2)},
    "pricing_drift_quarterly": {
        "tolerance_pct": ("0", "1"), "tolerance_min": ("0.01", "1.00"),
        "max_unapproved_discount_pct": ("15", "10", "25"),
        "subscription_drift_pct": ("5", "0", "10")},
    "funnel_leak_weekly": {  # every rule (the oracle reads each): docs/funnel.md
        "intake_min_pct": ("95", "80"), "callback_minutes": (60, 30, 120),
        "routing_hours": (4, 1, 24), "routing_max_pct": ("10", "0", "50"),
        "duplicate_days": (14, 1, 30), "response_minutes": (60, 15, 240),
        "response_minutes_medium": (None, 60, 1440), "response_minutes_low": (None, 240),
        "response_max_pct": ("30", "0"), "follow_up_hours": (48, 24),
        "follow_up_max_pct": ("40", "0"), "close_max_pct": ("20", "0", "60"),
        "stale_days": (30, 7, 14), "cell_min_population": (5, 2, 3),
        "business_hours_start": (9, 0, 7), "business_hours_end": (18, 20, 24),
        "trend_weeks": (3, 2), "history_days": (365, 90, 30),
        "value_min_closed": (5, 1, 2)},
}
# the change check judges by the quarterly audit's rules, for the quarter up to any day
RULES["pricing_drift_on_change"] = RULES["pricing_drift_quarterly"]
FIXTURE_CONFIG = Path(__file__).resolve().parents[1] / "fixture_config.yaml"
_example_dirs = itertools.count()


def rules(check_id: str) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({k: st.sampled_from(v) for k, v in RULES[check_id].items()})


def as_of_dates(check_id: str, company: Company, rule_set: dict) -> st.SearchStrategy[list]:
    """One to three as-of dates of the year for the check's cadence, often near the days the
    company's books changed (a period falling due, a contract's grace ending, a busy week of
    demand) and the day before or after, where off-by-one rules show."""
    if check_id.endswith("quarterly"):
        return st.lists(st.sampled_from(QUARTER_ENDS), min_size=1, max_size=3, unique=True)
    near = sorted(company.busy_weeks if check_id == "funnel_leak_weekly"
                  else company.days | company.contract_ends)
    if check_id == "booked_vs_billed_daily":
        lag = timedelta(days=rule_set["billing_lag_days"])
        grace = timedelta(days=rule_set["renewal_grace_days"] + 1)
        near += [p + lag for p in company.period_starts] + [
            e + grace for e in company.contract_ends]
    any_day = st.integers(0, (YEAR_END - YEAR_START).days).map(
        lambda n: YEAR_START + timedelta(days=n))
    days = st.one_of(any_day, st.tuples(st.sampled_from(near), st.integers(-1, 1)).map(
        lambda d: d[0] + timedelta(days=d[1])))
    if check_id.endswith("weekly"):  # the Sunday ending a week
        days = days.map(lambda d: d + timedelta(days=6 - d.weekday()))
    days = days.filter(lambda d: YEAR_START <= d <= YEAR_END)
    return st.lists(days, min_size=1, max_size=3, unique=True)


@pytest.fixture
def configs(tmp_path) -> dict[str, str]:
    """The suite's configuration with each company timezone this suite tries."""
    base = yaml.safe_load(FIXTURE_CONFIG.read_text(encoding="utf-8"))
    paths = {}
    for tz in TIMEZONES:
        path = tmp_path / f"revleak-{tz.replace('/', '-')}.yaml"
        company = {**base.get("company", {}), "timezone": tz, "base_currency": BASE_CURRENCY}
        path.write_text(yaml.safe_dump({**base, "company": company}), encoding="utf-8")
        paths[tz] = str(path)
    return paths


def load_company(conn, company: Company, directory) -> None:
    """Empty the warehouse (canonical and runtime tables), then load the company's books."""
    tables = conn.execute(
        "select string_agg(format('%I.%I', schemaname, tablename), ', ')"
        " from pg_tables where schemaname = 'revleak'").fetchone()[0]
    conn.execute(f"truncate {tables} restart identity cascade")
    conn.commit()
    _, results = loader.load(conn, company.books.write(directory))
    bad = [(r.table, r.quarantined, r.error) for r in results if r.quarantined or r.error]
    if bad:
        rows = conn.execute("select table_name, line_no, reason from revleak.quarantine"
                            " order by 1, 2 limit 5").fetchall()
        pytest.fail(f"the generator wrote books the loader rejects: {bad} {rows}")


def found(conn, check_id: str, as_of: date) -> dict[tuple, dict]:
    """What the check recorded for that date: identity → figures."""
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        f"select category, entity_type, entity_id, {', '.join(FIGURES)}"
        " from revleak.check_results where check_id = %s and as_of = %s",
        (check_id, as_of)).fetchall()
    conn.commit()
    return {(check_id, r["category"], r["entity_type"], r["entity_id"]):
            {k: (r[k].strip() if k == "currency" and r[k] else r[k]) for k in FIGURES}
            for r in rows}


def expected(finding: oracle.Finding) -> dict:
    return dict(zip(FIGURES, (finding.expected, finding.actual, finding.gap, finding.currency,
                              finding.gap_base, finding.gap_pct, finding.days,
                              finding.time_weighted_loss), strict=True))


def differences(got: dict[tuple, dict], want: list[oracle.Finding]) -> list[str]:
    """Each way the check's findings differ from the oracle's, one line each."""
    wanted = {f.identity: expected(f) for f in want}
    out = [f"missing {k[1:]} {wanted[k]}" for k in sorted(wanted.keys() - got.keys())]
    out += [f"unexpected {k[1:]} {got[k]}" for k in sorted(got.keys() - wanted.keys())]
    for k in sorted(wanted.keys() & got.keys()):
        diff = {f: (got[k][f], wanted[k][f]) for f in FIGURES if got[k][f] != wanted[k][f]}
        if diff:
            out.append(f"{k[1:]} figures differ (got, oracle): {diff}")
    return out


@pytest.mark.parametrize("check_id", list(oracle.CHECKS))
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow,
                                                HealthCheck.data_too_large])
@given(company=companies(), data=st.data())
def test_check_agrees_with_oracle(check_id, conn, configs, monkeypatch, tmp_path, company,
                                  data):
    tz = data.draw(st.sampled_from(TIMEZONES), label="company timezone")
    rule_set = data.draw(rules(check_id), label="rules")
    dates = data.draw(as_of_dates(check_id, company, rule_set), label="as-of dates")
    monkeypatch.setenv("REVLEAK_CONFIG", configs[tz])
    note(company.describe())
    load_company(conn, company, tmp_path / f"books{next(_example_dirs)}")
    for as_of in dates:
        try:
            pipeline.run_check(check_id, as_of, rule_set)
        except DataMissing as e:
            pytest.fail(f"delivered books, just loaded, judged data_missing: {e}")
        want = oracle.findings(company.books.rows,
                               oracle.Run(check_id, as_of, rule_set, tz, BASE_CURRENCY))
        problems = differences(found(conn, check_id, as_of), want)
        assert not problems, (f"{check_id} as of {as_of} ({tz}, rules {rule_set}) disagrees "
                              "with the oracle:\n  " + "\n  ".join(problems))
