"""Configuration: one YAML file in the repo (override with REVLEAK_CONFIG), validated up front
by pydantic models. Every problem is reported as one line naming the key and what it accepts.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
)

from revleak.errors import RevleakError
from revleak.registry import CHECK_IDS, CHECKS
from revleak.tables import TABLES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = PROJECT_ROOT / "config" / "revleak.yaml"
DEFAULT_OWNERS = {check_id: spec.owner for check_id, spec in CHECKS.items()}
CHECK_RULES = {check_id: spec.rules.model_fields for check_id, spec in CHECKS.items()}

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Column = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
Names = Annotated[list[Text], Field(min_length=1)]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA timezone name such as UTC or Europe/Berlin") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Company(_Model):
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    base_currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"


class Owner(_Model):
    """A named person or desk; ``account_id`` (or a per-system id) names them in tickets."""

    team: Text
    name: Text
    email: Text
    account_id: str = ""
    jira_account_id: str = ""  # per ticket system; each falls back to account_id
    github_login: str = ""
    servicenow_user: str = ""  # sys_id, user_name or email of a sys_user

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class Match(_Model):
    check: Names | None = None
    category: Names | None = None
    segment: Names | None = None
    region: Names | None = None
    team: Names | None = None  # the team named in the finding's evidence (a stale deal's)
    min_gap_base: Decimal | None = None
    max_gap_base: Decimal | None = None

    @field_validator("check", "category", "segment", "region", "team", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("check")
    @classmethod
    def _known_checks(cls, value: list[str] | None) -> list[str] | None:
        for check in value or ():
            if check not in CHECKS:
                raise ValueError(f"{check!r} is not a check; allowed: {', '.join(CHECK_IDS)}")
        return value


class Route(_Model):
    """Who owns a finding: the first rule whose match fits (check, category, segment, region,
    team, gap band in base currency) names the owner, the SLA and the escalation owner."""

    match: Match = Match()
    owner: Owner
    sla_business_days: StrictInt = Field(5, ge=0, le=250)
    escalation: Owner | None = None

    @property
    def escalation_owner(self) -> Owner:
        return self.escalation or self.owner


def _contract_owners() -> list[Route]:
    return [Route(match=Match(check=[check]), owner=Owner(
        team=team, name=f"{team} lead", email="revleak@example.com"))
        for check, team in DEFAULT_OWNERS.items()]


class Routing(_Model):
    rules: list[Route] = Field(default_factory=_contract_owners)
    fallback: Route = Route(owner=Owner(team="RevOps", name="Revenue operations desk",
                                        email="revops@example.com"))


class Tickets(_Model):
    update_share: Decimal = Field(Decimal("0.10"), ge=0, le=100)
    relay_budget_seconds: StrictInt = Field(120, ge=1, le=3600)
    max_attempts: StrictInt = Field(10, ge=1, le=100)
    workers: StrictInt = Field(4, ge=1, le=32)
    write_interval_seconds: dict[Literal["jira", "servicenow", "github", "webhook"],
                                 Annotated[float, Field(ge=0, le=3600)]] = {"github": 1.0}
    rate_limit_pause_seconds: float = Field(60.0, ge=0, le=3600)
    search_settle_seconds: float = Field(60.0, ge=0, le=3600)


class Source(_Model):
    """Freshness of one input table: the latest load may be ``max_age_days`` before the end
    of the as-of date; a table another tool fills names its ``loaded_at_column``."""

    max_age_days: StrictInt = Field(0, ge=0, le=3660)
    loaded_at_column: Column | None = None


class Reports(_Model):
    location: str = ""  # "" → $REVLEAK_HOME/reports; a folder or an ObjectStoragePath URL
    url: str = ""  # "" → Airflow's [api] base_url + /revleak/reports


Checks = create_model("Checks", __base__=_Model,  # a check `same_as` another uses its rules
                      **{check_id: (spec.rules, spec.rules()) for check_id, spec in CHECKS.items()
                         if not spec.same_as})
Sources = create_model("Sources", __base__=_Model,
                       **{table: (Source, Source()) for table in TABLES})


class Config(_Model):
    company: Company = Company()
    checks: Checks = Checks()
    sources: Sources = Sources()
    routing: Routing = Routing()
    tickets: Tickets = Tickets()
    reports: Reports = Reports()
    source: str = Field("<memory>", exclude=True)  # the file it came from, for messages

    @property
    def timezone(self) -> str:
        return self.company.timezone

    @property
    def base_currency(self) -> str:
        return self.company.base_currency

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.company.timezone)

    @property
    def rules(self) -> dict[str, dict[str, Any]]:
        """Each check's rules in force, by DAG id."""
        rules = self.checks.model_dump()
        return {check_id: rules[spec.same_as or check_id] for check_id, spec in CHECKS.items()}

    def source_of(self, table: str) -> Source:
        return getattr(self.sources, table)

    @property
    def routes(self) -> list[Route]:
        return self.routing.rules

    @property
    def fallback(self) -> Route:
        return self.routing.fallback


SECTIONS = tuple(f for f in Config.model_fields if f != "source")


def _where(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _expects(error: dict) -> str:
    """What a key accepts, in words, from pydantic's error."""
    ctx, kind = error.get("ctx") or {}, error["type"]
    if kind in ("greater_than_equal", "less_than_equal", "int_type", "decimal_type",
                "decimal_parsing", "int_parsing", "int_from_float"):
        field = _field(error["loc"])
        lo, hi = (next((m.ge for m in field.metadata if hasattr(m, "ge")), None),
                  next((m.le for m in field.metadata if hasattr(m, "le")), None)) \
            if field else (None, None)
        what = "a whole number" if field and field.annotation is int else "a number"
        return f"{what} from {lo} to {hi}" if lo is not None and hi is not None else what
    if kind == "string_too_short" or kind == "missing":
        return "a non-empty text"
    if kind == "string_pattern_mismatch":
        return {"base_currency": "an ISO 4217 code such as USD or EUR",
                "loaded_at_column": "a column name (lower case letters, digits, _)"}.get(
            str(error["loc"][-1]), f"text matching {ctx.get('pattern')}")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"].removeprefix("Input should be ")


def _field(loc: tuple):
    model: Any = Config
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        field = fields[part]
        model = field.annotation
    return field


def _message(error: dict, source: str) -> str:
    loc, kind = error["loc"], error["type"]
    where = _where(loc)
    if kind == "extra_forbidden":
        parent = _field(loc[:-1]) if len(loc) > 1 else None
        model = parent.annotation if parent else Config
        allowed = [f for f in getattr(model, "model_fields", {}) if f != "source"]
        if len(loc) == 1:
            return (f"config {source}: unknown section {loc[0]!r}; "
                    f"allowed: {', '.join(sorted(SECTIONS))}")
        noun = {"checks": "check", "sources": "table"}.get(str(loc[-2]), "key")
        return (f"config {source}: unknown {noun} {where}; allowed"
                f"{' keys' if noun == 'key' else ''}: {', '.join(allowed)}")
    if kind == "missing":
        return f"config {source}: {where} is required"
    if kind == "value_error" and loc[-1] == "check":
        return f"config {source}: {where} {_expects(error)}"
    got = error.get("input")
    return f"config {source}: {where} must be {_expects(error)} (got {got!r})"


def parse_config(data: Any, source: str = "<memory>") -> Config:
    """Validate a parsed YAML document and fill in defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RevleakError(f"config {source}: the file must be a YAML mapping")
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as e:
        raise RevleakError(_message(e.errors()[0], source)) from None


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
