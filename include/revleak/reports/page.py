"""What the Revenue leakage page shows for a choice of filters: the ledger, a trend per
check, one page of findings (sorted and paged in SQL) and the latest report of each check —
every figure narrowed in SQL to the checks the reader may see (sql/reports/page.sql)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from revleak import statements
from revleak.config import CHECK_IDS, Config
from revleak.reports import charts, data, storage
from revleak.reports.ledger import NO_SEGMENT, Filters, ledger

STATEMENTS = "reports/page.sql"
PAGE_SIZES = (10, 25, 50, 100)
PERIODS = {7: "last 7 days", 30: "last 30 days", 90: "last 90 days", 365: "last 365 days"}
SORTS = {  # column a reader can sort by (nulls always last, fingerprint breaks ties)
    "check": sql.Identifier("check"), "category": sql.SQL("category"),
    "customer": sql.SQL("customer_name"), "owner": sql.SQL("owner ->> 'name'"),
    "due": sql.SQL("due_date"), "age": sql.SQL("days_outstanding"),
    "gap": sql.SQL("abs(gap_amount_base)"), "loss": sql.SQL("time_weighted_loss"),
    "status": sql.SQL("status"), "first_seen": sql.SQL("first_seen_as_of")}
STATUSES = ("open", "resolved", "all")
DIRECTIONS = ("desc", "asc")
FUNNEL = "funnel_leak_weekly"
PARAMETERS = ("check", "category", "owner", "segment", "status", "period", "sort", "direction",
              "page", "per_page")


class Refused(ValueError):
    """A query the page does not take, in one sentence naming what it takes."""


@dataclass(frozen=True)
class View:
    """The reader's choices, validated: filters, status, period, sort order and page."""

    filters: Filters = Filters()
    status: str = "open"
    period: int = 90
    sort: str = "loss"
    descending: bool = True
    page: int = 1
    per_page: int = 50

    @classmethod
    def parse(cls, query: Sequence[tuple[str, str]], checks: tuple[str, ...],
              offered: dict[str, list[str]]) -> View:
        """The view a query string asks for, among the ``checks`` the reader may see and the
        filter values their findings ``offered``; anything else raises Refused."""
        given = dict(query)
        if len(given) < len(query):
            raise Refused("give each parameter once")
        if unknown := sorted(given.keys() - set(PARAMETERS)):
            raise Refused(f"unknown parameter {unknown[0]!r}: the page takes "
                          f"{', '.join(PARAMETERS)}")

        def pick(name: str, allowed: Sequence, default: str | None = None) -> str | None:
            value = given.get(name) or default
            if value is not None and value not in [str(a) for a in allowed]:
                raise Refused(f"{name} must be one of {', '.join(map(str, allowed)) or 'none'}"
                              f"{' (or empty for all)' if default is None else ''}, "
                              f"not {value!r}")
            return value

        page = given.get("page") or "1"
        if not page.isdigit() or int(page) < 1:
            raise Refused(f"page must be a whole number from 1, not {page!r}")
        return cls(Filters(pick("check", checks), pick("category", offered["category"]),
                           pick("owner", offered["owner"]), pick("segment", offered["segment"]),
                           checks=checks),
                   status=pick("status", STATUSES, "open"),
                   period=int(pick("period", tuple(PERIODS), "90")),
                   sort=pick("sort", tuple(SORTS), "loss"),
                   descending=pick("direction", DIRECTIONS, "desc") == "desc",
                   page=int(page), per_page=int(pick("per_page", PAGE_SIZES, "50")))

    def query(self, **changes: Any) -> str:
        """The page's query string for this view with some choices changed."""
        from urllib.parse import urlencode

        view = replace(self, **{k: v for k, v in changes.items() if k != "filters"},
                       filters=changes.get("filters", self.filters))
        pairs = {"check": view.filters.check, "category": view.filters.category,
                 "owner": view.filters.owner, "segment": view.filters.segment,
                 "status": view.status, "period": view.period, "sort": view.sort,
                 "direction": "desc" if view.descending else "asc", "page": view.page,
                 "per_page": view.per_page}
        return "?" + urlencode({k: v for k, v in pairs.items() if v not in (None, "")})


def findings_page(conn: psycopg.Connection, view: View) -> tuple[list[dict], int]:
    """One page of current findings matching the view, and how many match in all."""
    order = sql.SQL("{} {}").format(SORTS[view.sort],
                                    sql.SQL("desc" if view.descending else "asc"))
    params = {**view.filters.params(), "status": view.status, "limit": view.per_page,
              "offset": (view.page - 1) * view.per_page}
    rows = conn.cursor(row_factory=dict_row).execute(
        sql.SQL(statements.named(STATEMENTS)["findings"]).format(order=order), params).fetchall()
    if not rows and view.page > 1:  # past the last page: the first one
        return findings_page(conn, replace(view, page=1))
    evidence = dict(conn.execute(  # only the page's rows bring their evidence
        statements.named(STATEMENTS)["evidence"],
        {"fingerprints": [r["fingerprint"] for r in rows]}).fetchall())
    for r in rows:
        r["evidence"] = evidence[r["fingerprint"]]
    return rows, rows[0]["matching"] if rows else 0


def options(conn: psycopg.Connection, checks: tuple[str, ...]) -> dict[str, list[str]]:
    """The values each filter offers: those the findings of the ``checks`` have."""
    return _kept(("options", data_version(conn), checks), lambda: dict(zip(
        ("check", "category", "owner", "segment"), (v or [] for v in conn.execute(
            statements.named(STATEMENTS)["options"],
            {"checks": list(checks), "no_segment": NO_SEGMENT}).fetchone()), strict=True)))


def latest_runs(conn: psycopg.Connection, checks: tuple[str, ...]) -> list[tuple[str, date]]:
    """Each check's latest successful run: the report a reader opens first."""
    return conn.execute(statements.named(STATEMENTS)["latest_runs"],
                        {"checks": list(checks)}).fetchall()


def trends(conn: psycopg.Connection, view: View, start: date, end: date,
           config: Config) -> list[dict]:
    """One chart per check: open leakage on each date it ran (the filters apply, the owner
    being the one of the leak's episode); for the funnel, each zone's rate against its
    limit."""
    f = view.filters
    rows = conn.execute(statements.named(STATEMENTS)["trends"],
                        {**f.params(), "start": start, "end": end}).fetchall()
    narrowed = any((f.category, f.owner, f.segment))
    out = []
    for check in CHECK_IDS:
        points = [(d, amount) for c, d, amount, _ in rows if c == check]
        if check == FUNNEL or not points or (
                narrowed and not any(n for c, _, _, n in rows if c == check)):
            continue
        out.append({"check": check, "svg": charts.money_trend(
            f"trend-{check}", f"{charts.CHECK_TITLES[check]}: open leakage",
            tuple(points), config.base_currency, start, end, charts.CHECK_COLOURS[check])})
    zones = _funnel(conn, view, start, end)  # last: it takes a whole row
    if zones:
        out.append({"check": FUNNEL, "svg": charts.zone_trends(f"trend-{FUNNEL}", zones,
                                                               start, end)})
    return out


def _funnel(conn: psycopg.Connection, view: View, start: date, end: date) -> list:
    """The funnel zones the filters leave in (zones have an owner but no customer)."""
    f = view.filters
    if f.check not in (None, FUNNEL) or f.segment or (f.checks is not None
                                                       and FUNNEL not in f.checks):
        return []
    if f.owner and not conn.execute(statements.named(STATEMENTS)["funnel_owner"],
                                    {"check": FUNNEL, "owner": f.owner}).fetchone():
        return []
    last = conn.execute(statements.named(STATEMENTS)["last_run"],
                        {"check": FUNNEL, "end": end}).fetchone()[0]
    if last is None or last < start:
        return []
    zones = data.funnel_zones(conn, last, weeks=-(-(end - start).days // 7) or 1)
    return [(z["zone"], z["points"], z["limit"], z["floor"]) for z in zones
            if f.category in (None, z["zone"])]


# The ledger, the trends and the filter options change only when a check run is recorded
# or books are loaded: kept per view (and checks the reader may see) until then; the
# findings table is always read live.
_summaries: OrderedDict = OrderedDict()
SUMMARIES_KEPT = 64


def _kept(key: tuple, compute: Callable[[], Any]) -> Any:
    if key not in _summaries:
        _summaries[key] = compute()
        while len(_summaries) > SUMMARIES_KEPT:
            _summaries.popitem(last=False)
    _summaries.move_to_end(key)
    return _summaries[key]


def data_version(conn: psycopg.Connection) -> tuple:
    """What the summaries depend on: the warehouse, the runs recorded and the loads made."""
    return conn.execute(statements.named(STATEMENTS)["data_version"]).fetchone()


def summaries(conn: psycopg.Connection, view: View, start: date, end: date,
              config: Config) -> dict[str, Any]:
    return _kept(("summaries", data_version(conn), view.filters, start, end,
                  config.base_currency), lambda: {
        "ledger": ledger(conn, start, end, config.base_currency, view.filters),
        "trends": trends(conn, view, start, end, config)})


def view_data(conn: psycopg.Connection, view: View, config: Config) -> dict[str, Any]:
    """Everything the page shows for one view (of the checks its filters allow)."""
    checks = CHECK_IDS if view.filters.checks is None else view.filters.checks
    latest = latest_runs(conn, checks)
    end = max((d for _, d in latest), default=date.today())
    start = end - timedelta(days=view.period - 1)
    rows, matching = findings_page(conn, view)
    return {
        "view": view, "periods": PERIODS, "statuses": STATUSES,
        "start": start, "end": end, "rows": rows, "matching": matching,
        "pages": max(-(-matching // view.per_page), 1), "page_sizes": PAGE_SIZES,
        "options": options(conn, checks), **summaries(conn, view, start, end, config),
        "latest": [(c, d, storage.file_name(c, d, "html"), storage.file_name(c, d, "csv"))
                   for c, d in latest],
    }
