"""Configuration: one YAML file in the repo (override with REVLEAK_CONFIG), validated up front.

Every problem is reported as one line naming the key and what it accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


# key → (parser, default) for each section; the YAML may set any subset.
COMPANY = {"timezone": (_timezone, "UTC"), "base_currency": (_currency, "USD")}
CHECK_RULES = {
    "booked_vs_billed_daily": {
        "schedule_hour": (_int(0, 23), 6),
        "tolerance_pct": (_decimal("0", "100"), Decimal("0.5")),
        "tolerance_min": (_decimal("0", "1000000"), Decimal("1.00")),
        "billing_lag_days": (_int(0, 366), 31),
        "renewal_grace_days": (_int(0, 366), 30),
        "stale_after_days": (_int(1, 366), 7),
    },
}
OWNER = {
    "team": (_text, None),
    "name": (_text, None),
    "email": (_text, None),
    "sla_business_days": (_int(0, 250), 5),
}
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
    sla_business_days: int

    def as_dict(self) -> dict[str, str]:
        return {"team": self.team, "name": self.name, "email": self.email}


@dataclass(frozen=True)
class Config:
    timezone: str
    base_currency: str
    rules: dict[str, dict[str, Any]]
    owners: dict[str, Owner]
    source: str

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
    top = {"company", "checks", "owners"}
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
    owners_raw = data.get("owners") or {}
    unknown = sorted(set(owners_raw) - set(CHECK_IDS))
    if unknown:
        raise RevleakError(
            f"config {source}: unknown check owners.{unknown[0]}; allowed: {', '.join(CHECK_IDS)}"
        )
    owners = {}
    for check in CHECK_IDS:
        team = DEFAULT_OWNERS[check]
        raw = {"team": team, "name": f"{team} lead", "email": "revleak@example.com"}
        raw.update(owners_raw.get(check) or {})
        owners[check] = Owner(**_section(raw, OWNER, f"owners.{check}", source))
    return Config(company["timezone"], company["base_currency"], rules, owners, source)


@cache
def _load(path: str) -> Config:
    p = Path(path)
    if not p.is_file():
        raise RevleakError(f"config file {p} not found; set REVLEAK_CONFIG to an existing YAML file")
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
