"""What each report shows, read from the stored findings, their history and the run metrics
(plus, where a report needs it, the books as of the run's date). Small set-based queries;
only report-sized tables come back to Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from revleak import periods, statements
from revleak.config import CHECK_RULES, Config
from revleak.errors import RevleakError

STATEMENTS = "reports/data.sql"
AGING_BUCKETS = (("1–30", 1, 30), ("31–60", 31, 60), ("61–90", 61, 90), ("90+", 91, None))


class NotRecorded(RevleakError):
    """The check has no successful run for that date: there is nothing to report yet."""


def _rows(conn: psycopg.Connection, name: str, params: dict) -> list[dict]:
    """The rows of one statement of sql/reports/data.sql, as dicts."""
    return conn.cursor(row_factory=dict_row).execute(statements.named(STATEMENTS)[name],
                                                     params).fetchall()


def run(conn: psycopg.Connection, check: str, as_of: date, config: Config) -> dict[str, Any]:
    """The run a report is about: window, rules in force, the previous run, headline counts."""
    sql = statements.named(STATEMENTS)
    at = {"check": check, "as_of": as_of}
    row = conn.execute(sql["run"], at).fetchone()
    if row is None:
        raise NotRecorded(f"no successful run of {check} as of {as_of}; run "
                           f"`revleak check {check} --as-of {as_of}` (or the DAG) first")
    params, previous = row
    rules = {k: params[k] for k in CHECK_RULES[check] if k in params and k != "schedule_hour"}
    head = conn.execute(sql["headline"], at).fetchone()
    return {"check": check, "as_of": as_of, "window_start": periods.window_start(check, as_of),
            "previous": previous, "rules": rules, "base_currency": config.base_currency,
            "open_count": head[0], "open_gap_base": head[1], "open_loss": head[2],
            "resolved_count": head[3]}


def _findings(check: str, as_of: date, *, every: bool = False, n: int | None = None,
              category: str | None = None, zones: bool | None = None,
              subscription_drift: bool = False) -> dict:
    """The parameters of the ``findings`` statement (every one bound)."""
    return {"check": check, "as_of": as_of, "every": every, "n": n, "category": category,
            "zones": zones, "subscription_drift": subscription_drift}


def all_findings(conn: psycopg.Connection, check: str, as_of: date) -> Iterator[dict]:
    """Every finding the date saw (open, or resolved on it), biggest loss first — streamed."""
    with conn.cursor(name=f"report_{check}_{as_of:%Y%m%d}", row_factory=dict_row) as cur:
        cur.itersize = 500
        cur.execute(statements.named(STATEMENTS)["findings"], _findings(check, as_of, every=True))
        yield from cur


def top(conn: psycopg.Connection, check: str, as_of: date, n: int, *,
        category: str | None = None, zones: bool | None = None,
        subscription_drift: bool = False) -> list[dict]:
    """The open findings that cost the most (time-weighted loss), with owner and ticket;
    optionally only one category, only zones (``zones=True``) or everything but zones
    (``False``), or only subscriptions drifting as a whole."""
    return _rows(conn, "findings", _findings(
        check, as_of, n=n, category=category, zones=zones,
        subscription_drift=subscription_drift))


def changes(conn: psycopg.Connection, check: str, as_of: date, previous: date | None,
            n: int = 10) -> dict[str, Any]:
    """What changed since the previous run: new, resolved, grown and shrunk gaps — the
    count of each, the base-currency amount (for grown and shrunk, by how much) and the
    biggest of each."""
    kinds = ("new", "resolved", "grown", "shrunk")
    summary = {k: {"count": 0, "amount": Decimal(0)} for k in kinds}
    lists: dict[str, list[dict]] = {k: [] for k in kinds}
    for r in _rows(conn, "changes", {"check": check, "as_of": as_of, "previous": previous,
                                     "n": n}):
        summary[r["change"]] = {"count": r["kind_count"], "amount": r["kind_amount"]}
        lists[r["change"]].append(r)
    return {"previous": previous, "summary": summary, "lists": lists}


def run_metrics(conn: psycopg.Connection, check: str, as_of: date) -> dict[str, tuple]:
    """The figures the run kept (revleak.metrics) by name: (value, detail)."""
    return {m: (v, d) for m, v, d in conn.execute(
        statements.named(STATEMENTS)["run_metrics"], {"check": check, "as_of": as_of}).fetchall()}


def metric_trend(conn: psycopg.Connection, check: str, metric: str, since: date,
                 as_of: date) -> list[tuple[date, Decimal, dict]]:
    """A run-level figure (a rate) per date checked, oldest first."""
    return [tuple(r) for r in conn.execute(
        statements.named(STATEMENTS)["metric_trend"],
        {"check": check, "metric": metric, "since": since, "as_of": as_of})]


def aging(conn: psycopg.Connection, check: str, as_of: date,
          categories: tuple[str, ...]) -> list[dict]:
    """Open gaps of these categories by days outstanding: amount (base) and count."""
    rows = {r["bucket"]: r for r in _rows(
        conn, "aging", {"check": check, "as_of": as_of, "categories": list(categories)})}
    return [{"bucket": b, "count": rows.get(b, {}).get("count", 0),
             "amount": rows.get(b, {}).get("amount", Decimal(0))} for b, _, _ in AGING_BUCKETS]


def receivables_not_yet_due(conn: psycopg.Connection, as_of: date, config: Config) -> dict:
    """The "current" bucket of the aging: open balances of invoices not yet due, from the
    books as of the run's date (billed less succeeded payments), in base currency."""
    count, amount = conn.execute(statements.named(STATEMENTS)["receivables_not_yet_due"], {
        "as_of": as_of, "base": config.base_currency,
        "as_of_end": periods.day_end(as_of, config.tz)}).fetchone()
    return {"bucket": "current", "count": count, "amount": amount}


def by_category(conn: psycopg.Connection, check: str, as_of: date) -> list[dict]:
    """Open gaps per category: count, amount (base) and share of the check's total."""
    return _rows(conn, "by_category", {"check": check, "as_of": as_of})


def pricing_tops(conn: psycopg.Connection, check: str, as_of: date,
                 n: int = 10) -> dict[str, list[dict]]:
    """Pricing drift's biggest customers and SKUs (open gaps, base currency)."""
    params = {"check": check, "as_of": as_of, "n": n}
    return {"customers": _rows(conn, "pricing_customers", params),
            "skus": _rows(conn, "pricing_skus", params)}


def funnel_zones(conn: psycopg.Connection, as_of: date, weeks: int = 8) -> list[dict]:
    """Each funnel zone this week against its limit, with the last ``weeks`` weeks.

    Intake reads as a capture rate (at least its minimum); the other zones as a problem
    share (at most their maximum)."""
    check = "funnel_leak_weekly"
    since = as_of - timedelta(weeks=weeks)
    zones = []
    for zone in ("intake", "routing", "response", "follow_up", "close"):
        trend = metric_trend(conn, check, f"{zone}_problem_pct", since, as_of)
        floor = zone == "intake"
        points = tuple((d, (Decimal(100) - v) if floor else v) for d, v, _ in trend)
        now = next(((v, detail) for d, v, detail in trend if d == as_of), None)
        if now is None:
            continue
        limit = Decimal(str(now[1]["limit_pct"]))
        zones.append({
            "zone": zone, "floor": floor, "points": points,
            "rate": (Decimal(100) - now[0]) if floor else now[0],
            "limit": (Decimal(100) - limit) if floor else limit,
            "problems": now[1]["problems"], "population": now[1]["population"]})
    return zones


def worst_examples(conn: psycopg.Connection, zone: str, ids: list[str], as_of: date,
                   config: Config, n: int = 5) -> list[dict]:
    """The zone's worst cases among the finding's sample, with their timestamps."""
    if not ids:
        return []
    rows = _rows(conn, "worst_examples", {
        "zone": zone, "ids": ids, "timezone": config.timezone, "n": n,
        "as_of_end": periods.day_end(as_of, config.tz)})
    for r in rows:
        r["waited_hours"] = Decimal(r["waited_hours"]).quantize(Decimal("0.1"))
    return rows
