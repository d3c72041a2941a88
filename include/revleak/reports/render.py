"""Rendering: one jinja2 environment for the reports and the page, the filters that format
money, rates and dates, and each report's content (HTML and CSV) streamed in chunks."""

from __future__ import annotations

import configparser
import csv
import io
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import psycopg

from revleak import display
from revleak.config import Config
from revleak.reports import charts, data, storage
from revleak.reports.ledger import Filters, ledger

TOP = 20
CSV_COLUMNS = ("fingerprint", "check", "category", "entity_type", "entity_id", "customer_id",
               "customer_name", "segment", "as_of", "expected_amount", "actual_amount",
               "gap_amount", "currency", "gap_amount_base", "gap_pct", "days_outstanding",
               "time_weighted_loss", "status", "first_seen_as_of", "due_date", "ticket_key")
OWNER_COLUMNS = ("team", "name", "email")
INVOICE_CATEGORIES = ("unpaid", "short_paid", "payment_failed", "disputed")


def pct(value: Decimal | float | None, places: int | None = None) -> str:
    """A percentage (given in percent) with sensible precision: ``64.4%``, ``0.52%``."""
    if value is None:
        return display.NONE
    v = Decimal(str(value))
    if places is None:
        places = 2 if v and abs(v) < 1 else 1
    return f"{v:,.{places}f}%"


def rate(value: Decimal | float | None) -> str:
    """A ratio (0–1) as a percentage: ``0.9534`` → ``95.3%``."""
    return display.NONE if value is None else pct(Decimal(str(value)) * 100)


def waited(hours: Decimal | None) -> str:
    """A wait in hours, or in days once it passes two days."""
    if hours is None:
        return display.NONE
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


def timestamp(value: datetime | None, tz) -> str:
    return display.NONE if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def label(value: str | None) -> str:
    return "" if value is None else str(value).replace("_", " ")


def ticket_linker() -> Callable[[str | None], str | None]:
    """A link into the configured ticket system for a ticket key (looked up once)."""
    from revleak.tickets.relay import destination

    dest = destination()

    def url(key: str | None) -> str | None:
        if not key or dest is None:
            return None
        if dest.provider == "jira":
            return f"{dest.base_url}/browse/{key}"
        if dest.provider == "github":
            return f"https://github.com/{dest.extra.get('repo')}/issues/{key}"
        if dest.provider == "servicenow":
            table = dest.extra.get("table", "incident")
            return f"{dest.base_url}/nav_to.do?uri={table}.do?sys_id={key}"
        return None

    return url


def environment(config: Config) -> jinja2.Environment:
    """Templates and filters for the company's timezone and base currency (compiled once)."""
    return _environment(config.timezone, config.base_currency)


@cache
def _environment(timezone: str, base_currency: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("revleak", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=display.money, whole=display.whole, pct=pct, rate=rate,
                       label=label, waited=waited, ts=partial(timestamp, tz=ZoneInfo(timezone)),
                       evidence=evidence_view)
    env.globals.update(check_title=charts.CHECK_TITLES, check_colour=charts.CHECK_COLOURS,
                       category_style=charts.category_style, base_currency=base_currency,
                       dash=display.NONE)
    return env


def report_url(config: Config, check: str, as_of: date) -> str:
    """Where a reader opens a report: ``reports.url``, else the Revenue leakage page of the
    Airflow API server (``[api] base_url``) that serves the report store."""
    base = config.reports.url
    if not base:
        api = _api_base_url() or "http://localhost:8080"
        base = f"{api.rstrip('/')}/revleak/reports"
    return f"{base.rstrip('/')}/{storage.file_name(check, as_of, 'html')}"


def _api_base_url() -> str | None:
    """Airflow's ``[api] base_url`` as Airflow resolves it (environment, then airflow.cfg),
    without importing Airflow outside it (a second of a CLI run)."""
    if "airflow.configuration" in sys.modules:
        from airflow.configuration import conf

        return conf.get("api", "base_url", fallback=None)
    if value := os.environ.get("AIRFLOW__API__BASE_URL"):
        return value
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "airflow.cfg")
    return cfg.get("api", "base_url", fallback=None)


def _digest(conn, run, config) -> dict:
    as_of = run["as_of"]
    trend = data.metric_trend(conn, run["check"], "realization_rate", as_of - timedelta(30),
                              as_of)
    now = next((t for t in trend if t[0] == as_of), None)
    limit = 100 - Decimal(str(run["rules"]["tolerance_pct"]))
    return {
        "realization": now and {"rate": now[1], **now[2]},
        "realization_chart": charts.rate_trend(
            "billed-due-trend", "Portfolio billed / due, last 30 days",
            tuple((d, 100 * v) for d, v, _ in trend), limit,
            f"tolerance ({pct(limit)})", as_of - timedelta(29), as_of,
            charts.CHECK_COLOURS[run["check"]]),
        "changes": data.changes(conn, run["check"], as_of, run["previous"]),
        "top": data.top(conn, run["check"], as_of, 10),
    }


def _collections(conn, run, config) -> dict:
    as_of, check = run["as_of"], run["check"]
    since = as_of - timedelta(weeks=13)
    trend = data.metric_trend(conn, check, "realization_rate", since, as_of)
    now = next((t for t in trend if t[0] == as_of), None)
    alarm = Decimal(str(run["rules"]["realization_alarm_pct"]))
    aging = [data.receivables_not_yet_due(conn, as_of, config),
             *data.aging(conn, check, as_of, INVOICE_CATEGORIES)]
    return {
        "realization": now and {"rate": now[1], **now[2]},
        "realization_alarm": alarm,
        "realization_trend": trend,
        "realization_chart": charts.rate_trend(
            "realization-trend", "Realization (collected / billed), trailing 13 weeks",
            tuple((d, 100 * v) for d, v, _ in trend), alarm, f"alarm below {pct(alarm)}",
            since + timedelta(days=1), as_of, charts.CHECK_COLOURS[check]),
        "aging": aging,
        "aging_chart": charts.aging_bars(
            "aging", f"Receivables by days past due ({config.base_currency})",
            tuple((a["bucket"], a["amount"], a["count"]) for a in aging),
            config.base_currency, charts.CHECK_COLOURS[check]),
        "categories": data.by_category(conn, check, as_of),
        "top": data.top(conn, check, as_of, TOP),
        "changes": data.changes(conn, check, as_of, run["previous"]),
    }


def _funnel(conn, run, config) -> dict:
    as_of, check = run["as_of"], run["check"]
    zones = data.funnel_zones(conn, as_of)
    findings = data.top(conn, check, as_of, 10, zones=True)
    for f in findings:
        f["worst"] = data.worst_examples(conn, f["category"], f["evidence"].get("sample") or [],
                                         as_of, config)
    return {
        "zones": zones,
        "zones_chart": charts.zone_trends(
            "zones", [(z["zone"], z["points"], z["limit"], z["floor"]) for z in zones],
            as_of - timedelta(weeks=8) + timedelta(days=1), as_of),
        "zone_findings": findings,
        "deals": data.top(conn, check, as_of, TOP, zones=False),
        "health": pipeline_health(data.run_metrics(conn, check, as_of)),
        "changes": data.changes(conn, check, as_of, run["previous"]),
    }


STAGES = ("new", "qualified", "meeting", "proposal", "negotiation", "closed_won")


def pipeline_health(kept: dict[str, tuple]) -> dict:
    """The week's pipeline health (docs/funnel.md) from the run's kept metrics: each stage's
    conversion to the next and days in it, win rate, deal size, cycle, velocity, lead sources
    and how the week's closed deals ended."""
    def value(name: str):
        return kept.get(name, (None, {}))[0]

    def detail(name: str) -> dict:
        return kept.get(name, (None, {}))[1] or {}

    return {
        "stages": [{"stage": a, "next": b, "conversion": value(f"conversion_{a}_to_{b}_pct"),
                    "entered": detail(f"conversion_{a}_to_{b}_pct").get("entered"),
                    "days": value(f"time_in_{a}_days")}
                   for a, b in itertools.pairwise(STAGES)],
        "win_rate": value("win_rate_pct"), "average_deal": value("average_deal_base"),
        "cycle_days": value("sales_cycle_days"), "qualified": value("qualified_pipeline"),
        "velocity": value("pipeline_velocity_base_per_day"),
        "sources": detail("lead_source_quality").get("sources", [])[:TOP],
        "outcomes": detail("close_outcomes"),
    }


def _recognized(conn, run, config) -> dict:
    as_of, check = run["as_of"], run["check"]
    aging = data.aging(conn, check, as_of, ("recognized_not_collected",))
    return {
        "aging": aging,
        "aging_chart": charts.aging_bars(
            "aging", f"Recognized, not collected, by days past the collection deadline "
                     f"({config.base_currency})",
            tuple((a["bucket"], a["amount"], a["count"]) for a in aging),
            config.base_currency, charts.CHECK_COLOURS[check]),
        "categories": data.by_category(conn, check, as_of),
        "undeposited": data.top(conn, check, as_of, 50, category="payment_not_deposited"),
        "top": data.top(conn, check, as_of, TOP, category="recognized_not_collected"),
    }


def _pricing(conn, run, config) -> dict:
    as_of, check = run["as_of"], run["check"]
    categories = data.by_category(conn, check, as_of)
    return {
        "categories": categories,
        "categories_chart": charts.category_bars(
            "categories", f"Open drift by category ({config.base_currency})",
            tuple((c["category"], c["amount"]) for c in categories), config.base_currency),
        "annualized": run["open_gap_base"] * 4,
        "tops": data.pricing_tops(conn, check, as_of),
        "drift_pct": run["rules"]["subscription_drift_pct"],
        "subscription_drift": data.top(conn, check, as_of, 50, subscription_drift=True),
        "top": data.top(conn, check, as_of, TOP),
    }


SECTIONS = {"booked_vs_billed_daily": _digest, "billed_vs_collected_weekly": _collections,
            "funnel_leak_weekly": _funnel, "recognized_vs_collected_quarterly": _recognized,
            "pricing_drift_quarterly": _pricing, "pricing_drift_on_change": _pricing}


def html(conn: psycopg.Connection, check: str, as_of: date, config: Config,
         checks: tuple[str, ...] | None = None) -> Iterator[str]:
    """The report of one run as a self-contained HTML document, in chunks; its ledger
    across the ``checks`` a reader may see (every check by default)."""
    run = data.run(conn, check, as_of, config)
    context: dict[str, Any] = {
        "run": run, "ticket_url": ticket_linker(),
        "ledger": ledger(conn, run["window_start"], as_of, config.base_currency,
                         Filters(checks=checks)),
        "findings": data.all_findings(conn, check, as_of),
        **SECTIONS[check](conn, run, config)}
    template = environment(config).get_template(f"report_{check}.html.j2")
    yield from template.generate(**context)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (= + - @, tab, carriage return first)
    made plain text with a leading apostrophe; numbers and dates stay as they are."""
    return f"'{value}" if isinstance(value, str) and value[:1] in FORMULA_STARTS else value


def csv_rows(conn: psycopg.Connection, check: str, as_of: date, config: Config) -> Iterator[str]:
    """Every finding of one run as CSV (one header row), in chunks; no text cell runs as a
    spreadsheet formula."""
    data.run(conn, check, as_of, config)  # a run that never succeeded has no report
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"owner_{c}" for c in OWNER_COLUMNS)])
    for n, f in enumerate(data.all_findings(conn, check, as_of), 1):
        writer.writerow([inert(v) for v in (*(f[c] for c in CSV_COLUMNS),
                                            *(f["owner"].get(c) for c in OWNER_COLUMNS))])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# Evidence keys in the finding's currency, and the order a reader expects things in.
MONEY_KEYS = {"amount", "billed", "collected", "due", "started", "expected", "tolerance",
              "recognized", "should_be", "unit_price", "list_price", "due_base", "billed_base",
              "shortfall_base", "collected_base"}
ORDER = ("rule", "value_pct", "limit_pct", "problems", "population", "window_start",
         "contract", "due", "started", "billed", "collected", "recognized", "due_date",
         "paid_on", "first_posted", "tolerance", "periods", "payments", "lines",
         "invoice_ids", "invoice_id", "opportunity_id", "gl_entry_ids", "sample", "fx_rate")
COLUMNS = ("period_start", "due_date", "term", "expected", "billed", "payment_id", "status",
           "amount", "attempted_at", "failure_code", "invoice_id", "line_no", "issue_date",
           "quantity", "unit_price", "list_price", "discount_pct", "promo_code", "should_be")
LIST_SHOWN = 12


def evidence_view(evidence: dict, currency: str | None) -> list[dict]:
    """A finding's evidence as a reader takes it in: figures with their currency, tables
    for periods, payments and invoice lines, short id lists, then the rules in force. Long
    lists show their latest rows (tables) or first ids and say how many more there are (the
    JSON of ``revleak findings --evidence`` has them all)."""

    def value(key: str, v: Any) -> str:
        if v is None:
            return display.NONE
        if isinstance(v, bool):
            return "yes" if v else "no"
        if key in MONEY_KEYS and isinstance(v, int | float | Decimal):
            return display.money(v, currency)
        if key.endswith("_pct"):
            return pct(v)
        if isinstance(v, list):
            return ", ".join(value(key, x) for x in v[:LIST_SHOWN]) + more(v)
        if isinstance(v, dict):
            return "; ".join(f"{label(k)} {value(k, x)}" for k, x in sorted(v.items())
                             if x is not None)
        return str(v)

    def more(v: list) -> str:
        return f" and {len(v) - LIST_SHOWN:,} more" if len(v) > LIST_SHOWN else ""

    def rank(key: str) -> tuple:
        return (ORDER.index(key) if key in ORDER else len(ORDER), key)

    items = []
    for key in sorted((k for k in evidence if k not in ("rules", "rule_version")), key=rank):
        v = evidence[key]
        if v is None or v == [] or v == {}:
            continue
        if isinstance(v, list) and all(isinstance(x, dict) for x in v):
            cols = sorted({c for x in v for c in x},
                          key=lambda c: (COLUMNS.index(c) if c in COLUMNS else len(COLUMNS), c))
            earlier = len(v) - LIST_SHOWN  # periods, payments, lines: the latest matter most
            items.append({"label": label(key), "kind": "table",
                          "more": f"{earlier:,} earlier not shown" if earlier > 0 else "",
                          "columns": [label(c) for c in cols],
                          "rows": [[value(c, x.get(c)) for c in cols] for x in v[-LIST_SHOWN:]]})
        else:
            items.append({"label": label(key), "kind": "text", "value": value(key, v)})
    rules = evidence.get("rules") or {}
    if rules:
        items.append({"label": "rules in force", "kind": "text", "value": "; ".join(
            f"{label(k)} {v}" for k, v in sorted(rules.items()) if k != "schedule_hour")
            + (f" (rule version {evidence['rule_version']})" if evidence.get("rule_version")
               else "")})
    return items
