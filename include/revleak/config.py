"""Configuration: one YAML file in the repo (override with REVLEAK_CONFIG), validated up front.

Every problem is reported as one line naming the key and what it accepts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from revleak.errors import RevleakError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = PROJECT_ROOT / "config" / "revleak.yaml"

CHECK_IDS = (
    "booked_vs_billed_daily",
    "billed_vs_collected_weekly",
    "funnel_leak_weekly",
    "recognized_vs_collected_quarterly",
    "pricing_drift_quarterly",
)


def _int(lo: int, hi: int):
    def parse(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"a whole number from {lo} to {hi}")
        return v

    return parse


def _decimal(lo: str, hi: str):
    def parse(v: Any) -> Decimal:
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            d = None
        if isinstance(v, bool) or d is None or not Decimal(lo) <= d <= Decimal(hi):
            raise ValueError(f"a number from {lo} to {hi}")
        return d

    return parse


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("a non-empty text")
    return v


def _currency(v: Any) -> str:
    if not (isinstance(v, str) and len(v) == 3 and v.isalpha() and v.isupper()):
        raise ValueError("an ISO 4217 code such as USD or EUR")
    return v


def _timezone(v: Any) -> str:
    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA timezone name such as UTC or Europe/Berlin") from None
    return str(v)


def _identifier(v: Any) -> str:
    if not (isinstance(v, str) and re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", v)):
        raise ValueError("a column name (lower case letters, digits, _)")
    return v


# key → (parser, default) for each section; the YAML may set any subset.
COMPANY = {"timezone": (_timezone, "UTC"), "base_currency": (_currency, "USD")}
CHECK_RULES = {
    "booked_vs_billed_daily": {
        "schedule_hour": (_int(0, 23), 6),
        "tolerance_pct": (_decimal("0", "100"), Decimal("0.5")),
        "tolerance_min": (_decimal("0", "1000000"), Decimal("1.00")),
        "billing_lag_days": (_int(0, 366), 31),
        "renewal_grace_days": (_int(0, 366), 30),
    },
    "billed_vs_collected_weekly": {
        "schedule_hour": (_int(0, 23), 6),
        "tolerance_pct": (_decimal("0", "100"), Decimal("0.5")),
        "tolerance_min": (_decimal("0", "1000000"), Decimal("1.00")),
        "realization_alarm_pct": (_decimal("0", "100"), Decimal("95")),
    },
    "recognized_vs_collected_quarterly": {
        "schedule_hour": (_int(0, 23), 6),
        "tolerance_pct": (_decimal("0", "100"), Decimal("0.5")),
        "tolerance_min": (_decimal("0", "1000000"), Decimal("1.00")),
        "collection_lag_days": (_int(0, 3660), 90),
        "deposit_lag_days": (_int(0, 366), 5),
    },
    "funnel_leak_weekly": {
        "schedule_hour": (_int(0, 23), 6),
        "intake_min_pct": (_decimal("0", "100"), Decimal("95")),
        "routing_hours": (_int(1, 720), 4),
        "routing_max_pct": (_decimal("0", "100"), Decimal("10")),
        "response_minutes": (_int(1, 10080), 60),
        "response_max_pct": (_decimal("0", "100"), Decimal("30")),
        "follow_up_hours": (_int(1, 720), 48),
        "follow_up_max_pct": (_decimal("0", "100"), Decimal("40")),
        "close_max_pct": (_decimal("0", "100"), Decimal("20")),
    },
    "pricing_drift_quarterly": {  # a price is right or wrong to the cent
        "schedule_hour": (_int(0, 23), 6),
        "tolerance_pct": (_decimal("0", "100"), Decimal("0")),
        "tolerance_min": (_decimal("0", "1000000"), Decimal("0.01")),
        "max_unapproved_discount_pct": (_decimal("0", "100"), Decimal("15")),
        "subscription_drift_pct": (_decimal("0", "100"), Decimal("5")),
    },
}
TICKETS = {
    "update_share": (_decimal("0", "100"), Decimal("0.10")),
    "relay_budget_seconds": (_int(1, 3600), 120),
    "max_attempts": (_int(1, 100), 10),
    "workers": (_int(1, 32), 4),
}
SOURCE = {"max_age_days": (_int(0, 3660), 0), "loaded_at_column": (_identifier, "")}
REPORTS = {  # where reports are written (a folder or an ObjectStoragePath URL) and read
    "location": (_text, ""),  # "" → $REVLEAK_HOME/reports
    "url": (_text, ""),  # "" → Airflow's [api] base_url + /revleak/reports
}
OWNER = {"team": (_text, None), "name": (_text, None), "email": (_text, None),
         "account_id": (_text, "")}
ROUTE = {"match": (lambda v: v, {}), "owner": (lambda v: v, None),
         "sla_business_days": (_int(0, 250), 5), "escalation": (lambda v: v, {})}
MATCH = {"check": (lambda v: v, ""), "category": (lambda v: v, ""), "segment": (lambda v: v, ""),
         "region": (lambda v: v, ""), "min_gap_base": (_decimal("-1e15", "1e15"), ""),
         "max_gap_base": (_decimal("-1e15", "1e15"), "")}
DEFAULT_OWNERS = {
    "booked_vs_billed_daily": "RevOps",
    "billed_vs_collected_weekly": "Finance",
    "funnel_leak_weekly": "Sales Ops",
    "recognized_vs_collected_quarterly": "Accounting",
    "pricing_drift_quarterly": "Finance",
}


@dataclass(frozen=True)
class Owner:
    team: str
    name: str
    email: str
    account_id: str = ""

    def as_dict(self) -> dict[str, str]:
        owner = {"team": self.team, "name": self.name, "email": self.email}
        return owner | ({"account_id": self.account_id} if self.account_id else {})


@dataclass(frozen=True)
class Route:
    """Who owns a finding: the first rule whose match fits (check, category, segment, region,
    gap band in base currency) names the owner, the SLA and the escalation owner."""

    match: dict[str, Any]
    owner: Owner
    sla_business_days: int
    escalation: Owner


@dataclass(frozen=True)
class Config:
    timezone: str
    base_currency: str
    rules: dict[str, dict[str, Any]]
    routes: tuple[Route, ...]
    fallback: Route
    tickets: dict[str, Any]
    source: str
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=lambda: {"location": "", "url": ""})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _section(raw: Any, spec: dict, where: str, source: str) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RevleakError(f"config {source}: {where} must be a mapping of keys to values")
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        raise RevleakError(
            f"config {source}: unknown key {where}.{unknown[0]}; allowed keys: {', '.join(spec)}"
        )
    out = {}
    for key, (parse, default) in spec.items():
        if key not in raw and default is not None:
            out[key] = default
            continue
        if key not in raw:
            raise RevleakError(f"config {source}: {where}.{key} is required")
        try:
            out[key] = parse(raw[key])
        except ValueError as e:
            raise RevleakError(
                f"config {source}: {where}.{key} must be {e} (got {raw[key]!r})"
            ) from None
    return out


def parse_config(data: Any, source: str = "<memory>") -> Config:
    """Validate a parsed YAML document and fill in defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RevleakError(f"config {source}: the file must be a YAML mapping")
    top = {"company", "checks", "routing", "tickets", "sources", "reports"}
    unknown = sorted(set(data) - top)
    if unknown:
        raise RevleakError(
            f"config {source}: unknown section {unknown[0]!r}; allowed: {', '.join(sorted(top))}"
        )
    company = _section(data.get("company"), COMPANY, "company", source)
    checks = data.get("checks") or {}
    unknown = sorted(set(checks) - set(CHECK_IDS))
    if unknown:
        raise RevleakError(
            f"config {source}: unknown check checks.{unknown[0]}; allowed: {', '.join(CHECK_IDS)}"
        )
    rules = {
        check: _section(checks.get(check), CHECK_RULES.get(check, {}), f"checks.{check}", source)
        for check in CHECK_IDS
    }
    tickets = _section(data.get("tickets"), TICKETS, "tickets", source)
    sources = _sources(data.get("sources"), source)
    routing = data.get("routing") or {}
    if not isinstance(routing, dict) or set(routing) - {"rules", "fallback"}:
        raise RevleakError(f"config {source}: routing takes the keys rules and fallback")
    raw_rules = routing.get("rules")
    if raw_rules is None:  # the contract's owners table
        raw_rules = [{"match": {"check": check},
                      "owner": {"team": team, "name": f"{team} lead",
                                "email": "revleak@example.com"}}
                     for check, team in DEFAULT_OWNERS.items()]
    if not isinstance(raw_rules, list):
        raise RevleakError(f"config {source}: routing.rules must be a list of rules")
    fallback = _route(routing.get("fallback") or {"owner": {
        "team": "RevOps", "name": "RevOps lead", "email": "revleak@example.com"}},
        "routing.fallback", source)
    routes = tuple(_route(r, f"routing.rules[{i}]", source) for i, r in enumerate(raw_rules))
    return Config(company["timezone"], company["base_currency"], rules, routes, fallback,
                  tickets, source, sources,
                  reports=_section(data.get("reports"), REPORTS, "reports", source))


def _sources(raw: Any, source: str) -> dict[str, dict[str, Any]]:
    """Freshness limits per input table (every table gets the defaults)."""
    from revleak.tables import TABLES

    raw = raw or {}
    if not isinstance(raw, dict):
        raise RevleakError(f"config {source}: sources must be a mapping of table names")
    unknown = sorted(set(raw) - set(TABLES))
    if unknown:
        raise RevleakError(f"config {source}: unknown table sources.{unknown[0]}; "
                           f"allowed: {', '.join(TABLES)}")
    return {t: _section(raw.get(t), SOURCE, f"sources.{t}", source) for t in TABLES}


def _owner(raw: Any, where: str, source: str) -> Owner:
    return Owner(**_section(raw, OWNER, where, source))


def _route(raw: Any, where: str, source: str) -> Route:
    r = _section(raw, ROUTE, where, source)
    match = {k: v for k, v in _section(r["match"], MATCH, f"{where}.match", source).items()
             if v != ""}
    for key in ("check", "category", "segment", "region"):
        if key in match:
            values = match[key] if isinstance(match[key], list) else [match[key]]
            if not values or not all(isinstance(v, str) and v for v in values):
                raise RevleakError(f"config {source}: {where}.match.{key} must be a name or a "
                                   "list of names")
            match[key] = values
    unknown = set(match.get("check", [])) - set(CHECK_IDS)
    if unknown:
        raise RevleakError(f"config {source}: {where}.match.check {sorted(unknown)[0]!r} is not "
                           f"a check; allowed: {', '.join(CHECK_IDS)}")
    owner = _owner(r["owner"], f"{where}.owner", source)
    escalation = _owner(r["escalation"], f"{where}.escalation", source) if r["escalation"] \
        else owner
    return Route(match, owner, r["sla_business_days"], escalation)


@cache
def _load(path: str) -> Config:
    p = Path(path)
    if not p.is_file():
        raise RevleakError(
            f"config file {p} not found; set REVLEAK_CONFIG to an existing YAML file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RevleakError(f"config {p}: not valid YAML{where}; fix the syntax") from None
    return parse_config(data, str(p))


def load_config() -> Config:
    """The configuration in force: REVLEAK_CONFIG, else the repo's config/revleak.yaml."""
    return _load(os.environ.get("REVLEAK_CONFIG") or str(DEFAULT_PATH))
