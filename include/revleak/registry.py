"""The check registry: one ``CheckSpec`` per check of the contract's §3 — its DAG id, cadence,
default owner, rule version, the rules' schema and defaults, the rules offered on the trigger
form, the sources it needs and its SQL file. Configuration, windows, the DAG factory, the
command line and failure routing all read it; adding a check means one spec here, one SQL file
(``include/revleak/sql/checks/<id>.sql``), one DAG file and one test file.

A check on change (``pricing_drift_on_change``) runs when the tables it is triggered by change
(Airflow Assets, ``revleak.assets``) instead of on a clock; it reuses another check's SQL and
rules and leaves the tickets to that check (docs/pricing.md)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

Cadence = Literal["daily", "weekly", "quarterly", "on_change"]


class Rules(BaseModel):
    """Every check runs at a local hour; the rest is the check's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schedule_hour: StrictInt = Field(6, ge=0, le=23, description="local hour the run starts")


class Tolerance(Rules):
    tolerance_pct: Decimal = Field(Decimal("0.5"), ge=0, le=100)
    tolerance_min: Decimal = Field(Decimal("1.00"), ge=0, le=1_000_000)


class BookedVsBilled(Tolerance):
    billing_lag_days: StrictInt = Field(31, ge=0, le=366)
    renewal_grace_days: StrictInt = Field(30, ge=0, le=366)


class BilledVsCollected(Tolerance):
    realization_alarm_pct: Decimal = Field(Decimal("95"), ge=0, le=100)


class RecognizedVsCollected(Tolerance):
    collection_lag_days: StrictInt = Field(90, ge=0, le=3660)
    deposit_lag_days: StrictInt = Field(5, ge=0, le=366)


class PricingDrift(Tolerance):  # a price is right or wrong to the cent
    tolerance_pct: Decimal = Field(Decimal("0"), ge=0, le=100)
    tolerance_min: Decimal = Field(Decimal("0.01"), ge=0, le=1_000_000)
    max_unapproved_discount_pct: Decimal = Field(Decimal("15"), ge=0, le=100)
    subscription_drift_pct: Decimal = Field(Decimal("5"), ge=0, le=100)


class FunnelLeak(Rules):
    """Zone limits (contract §3) and what each leak state, cell, trend and value means
    (docs/funnel.md)."""

    intake_min_pct: Decimal = Field(Decimal("95"), ge=0, le=100)
    callback_minutes: StrictInt = Field(60, ge=1, le=10080)
    routing_hours: StrictInt = Field(4, ge=1, le=720)
    routing_max_pct: Decimal = Field(Decimal("10"), ge=0, le=100)
    duplicate_days: StrictInt = Field(14, ge=1, le=366)
    response_minutes: StrictInt = Field(60, ge=1, le=10080)
    response_minutes_medium: StrictInt | None = Field(None, ge=1, le=10080)
    response_minutes_low: StrictInt | None = Field(None, ge=1, le=10080)
    response_max_pct: Decimal = Field(Decimal("30"), ge=0, le=100)
    follow_up_hours: StrictInt = Field(48, ge=1, le=720)
    follow_up_max_pct: Decimal = Field(Decimal("40"), ge=0, le=100)
    close_max_pct: Decimal = Field(Decimal("20"), ge=0, le=100)
    stale_days: StrictInt = Field(30, ge=1, le=3660)
    cell_min_population: StrictInt = Field(5, ge=1, le=1_000_000)
    business_hours_start: StrictInt = Field(9, ge=0, le=23)
    business_hours_end: StrictInt = Field(18, ge=1, le=24)
    trend_weeks: StrictInt = Field(3, ge=2, le=52)
    history_days: StrictInt = Field(365, ge=7, le=3660)
    value_min_closed: StrictInt = Field(5, ge=1, le=1_000_000)

    @field_validator("business_hours_end")
    @classmethod
    def _after_start(cls, end: int, info: ValidationInfo) -> int:
        start = info.data.get("business_hours_start")
        if start is not None and end <= start:
            raise ValueError(f"an hour after business_hours_start ({start}), up to 24")
        return end


@dataclass(frozen=True)
class CheckSpec:
    id: str
    cadence: Cadence
    owner: str  # the owning team of contract §3
    rule_version: str
    rules: type[Rules]
    sources: tuple[str, ...]  # tables it needs delivered (empty or stale → data_missing)
    params: tuple[str, ...] = ()  # rules a manual run may override on the trigger form
    # Steps re-run for each of the `trend_weeks` - 1 weeks before the as-of date (oldest first,
    # then `forget_week`) before the run reaches the first of them, so a trend is measured from
    # the books, never from which weeks were checked before.
    trend_steps: tuple[str, ...] = ()
    # on_change: the tables whose changes start a run (one Airflow Asset each)
    triggered_by: tuple[str, ...] = ()
    # the check whose SQL file and configured rules this one uses (None: its own)
    same_as: str | None = None
    tickets: bool = True  # False: findings are recorded, their tickets belong to `same_as`
    price_signals: bool = False  # sends the price-signal outbox after recording (docs/pricing.md)

    @property
    def sql(self) -> str:
        return f"checks/{self.same_as or self.id}.sql"


TOLERANCE_PARAMS = ("tolerance_pct", "tolerance_min")
# Reference tables that may rightly be empty (promotions, discount approvals) are no source.
CHECKS: dict[str, CheckSpec] = {spec.id: spec for spec in (
    CheckSpec("booked_vs_billed_daily", "daily", "RevOps", "bvb-2", BookedVsBilled,
              ("opportunities", "invoices", "invoice_lines"),
              (*TOLERANCE_PARAMS, "billing_lag_days")),
    CheckSpec("billed_vs_collected_weekly", "weekly", "Finance", "bvc-1", BilledVsCollected,
              ("invoices", "invoice_lines", "payments"), TOLERANCE_PARAMS),
    CheckSpec("funnel_leak_weekly", "weekly", "Sales Ops", "fl-2", FunnelLeak,
              ("inbound_signals", "opportunities", "opportunity_events"),
              trend_steps=("week_signals", "week_opportunities", "follow_ups",
                           "open_opportunities", "measured", "keep_rate")),
    CheckSpec("recognized_vs_collected_quarterly", "quarterly", "Accounting", "rvc-1",
              RecognizedVsCollected, ("gl_entries", "payments", "bank_transactions"),
              TOLERANCE_PARAMS),
    CheckSpec("pricing_drift_quarterly", "quarterly", "Finance", "pd-2", PricingDrift,
              ("invoices", "invoice_lines", "rate_cards"), TOLERANCE_PARAMS,
              price_signals=True),
    CheckSpec("pricing_drift_on_change", "on_change", "Finance", "pd-2", PricingDrift,
              ("invoices", "invoice_lines", "rate_cards"), TOLERANCE_PARAMS,
              triggered_by=("rate_cards", "promotions", "discount_approvals"),
              same_as="pricing_drift_quarterly", tickets=False, price_signals=True),
)}
CHECK_IDS = tuple(CHECKS)
