"""A fake ServiceNow Table API, checked against ``tests/specs/servicenow-table-api.json`` (written
from ServiceNow's Table API documentation: ServiceNow publishes no OpenAPI description).

One ticket table (``incident`` by default) plus the two tables revleak reads: ``sys_user``
(``users``: sys_id, user_name, email) and ``sys_journal_field`` (one row per work note).
Queries support ``=``, ``!=``, ``LIKE``, ``^`` (and), ``^OR`` and ``ORDERBY``/``ORDERBYDESC``.
Stricter than ServiceNow in one way: ``assigned_to`` must be a sys_user's sys_id.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tests.ticket_fakes.base import FakeServer, HttpError, Reply, Request
from tests.ticket_fakes.spec import spec

SNOW_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
SNOW_FIELDS = ("short_description", "description", "assigned_to", "assignment_group",
               "due_date", "correlation_id", "correlation_display", "urgency", "impact", "state",
               "close_code", "close_notes", "caller_id", "category")
SNOW_PRIORITY = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3",
                 ("2", "2"): "3", ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4",
                 ("3", "3"): "5"}
SNOW_STATES = {"1", "2", "3", "6", "7", "8"}  # new, in progress, on hold, resolved, closed, canc.


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def matches(row: dict[str, str], query: str) -> bool:
    """Whether a row (field → text) satisfies an encoded query."""
    terms = [t.replace("\0", "^") for t in query.replace("^^", "\0").split("^")]
    groups: list[list[str]] = []  # AND of ORs
    for term in filter(None, terms):
        if term.startswith("ORDERBY"):
            continue
        if term.startswith("OR") and groups:
            groups[-1].append(term[2:])
        else:
            groups.append([term])
    return all(any(_term(row, t) for t in group) for group in groups)


def _term(row: dict[str, str], term: str) -> bool:
    m = re.fullmatch(r"(\w+?)(!=|=|LIKE)(.*)", term, re.S)
    if not m:
        raise ValueError(f"unsupported query term {term!r}")
    name, op, value = m.groups()
    have = row.get(name, "")
    return {"=": have == value, "!=": have != value, "LIKE": value in have}[op]


class ServiceNowServer(FakeServer):
    provider = "servicenow"
    spec = spec("servicenow-table-api.json")

    def __init__(self, table: str = "incident", login: str = "revleak.integration",
                 password: str | None = None, users: Iterable[tuple[str, str]] = ()):
        super().__init__(login, password)
        self.table = table
        self.users = [{"sys_id": uuid.uuid4().hex, "user_name": name, "email": email}
                      for name, email in users]
        self.journal: list[dict[str, str]] = []
        self._nums = itertools.count(10001)
        base = r"/api/now/table/(?P<table>[^/]+)"
        self.route("GET", base, self.list_records)
        self.route("POST", base, self.create)
        self.route("GET", rf"{base}/(?P<sys_id>[^/]+)", self.get_record)
        self.route("PATCH", rf"{base}/(?P<sys_id>[^/]+)", self.patch)

    def default_extra(self) -> dict[str, Any]:
        return {"table": self.table}

    def user_id(self, user_name: str) -> str:
        return next(u["sys_id"] for u in self.users if u["user_name"] == user_name)

    def error_body(self, status: int, message: str) -> Any:
        detail = "Required to provide Auth information" if status == 401 else None
        if status == 401:
            message = "User Not Authenticated"
        return {"error": {"message": message, "detail": detail}, "status": "failure"}

    def _rows(self, table: str) -> list[dict[str, Any]]:
        if table == self.table:
            return [self._json(r) for r in self.tickets.values()]
        if table == "sys_user":
            return self.users
        if table == "sys_journal_field":
            return self.journal
        raise self.bad(f"Invalid table {table}")

    def _record(self, req: Request) -> dict[str, Any]:
        if req.params["table"] != self.table:
            raise self.bad(f"Invalid table {req.params['table']}")
        if req.params["sys_id"] not in self.tickets:
            raise HttpError(404, {"error": {
                "message": "No Record found",
                "detail": "Record doesn't exist or ACL restricts the record retrieval"},
                "status": "failure"})
        return self.tickets[req.params["sys_id"]]

    def _apply(self, rec: dict[str, Any], body: dict[str, Any]) -> None:
        """Validate and apply known fields (ServiceNow ignores unknown ones)."""
        values = {k: str(body[k]) for k in SNOW_FIELDS if k in body}
        for name in ("urgency", "impact"):
            if name in values and values[name] not in ("1", "2", "3"):
                raise self.bad(f"{name} must be 1, 2 or 3")
        if "state" in values and values["state"] not in SNOW_STATES:
            raise self.bad(f"invalid state {values['state']}")
        if values.get("due_date") and not SNOW_DATETIME.fullmatch(values["due_date"]):
            raise self.bad("due_date must be 'YYYY-MM-DD HH:MM:SS'")
        if values.get("assigned_to") and values["assigned_to"] not in {
                u["sys_id"] for u in self.users}:
            raise self.bad("assigned_to must reference a sys_user")
        merged = {**rec, **values}
        if merged.get("state") in ("6", "7") and not (merged.get("close_code")
                                                      and merged.get("close_notes")):
            raise HttpError(403, {"error": {
                "message": "Operation Failed",
                "detail": "Data Policy Exception: Resolution code, Resolution notes are "
                          "mandatory"}, "status": "failure"})
        rec.update(values)
        rec["priority"] = SNOW_PRIORITY.get((rec.get("urgency", "3"), rec.get("impact", "3")),
                                            "5")
        rec["active"] = rec.get("state") not in ("7", "8")
        if note := body.get("work_notes"):
            rec["comments"].append(str(note))
            self.journal.append({"sys_id": uuid.uuid4().hex, "element_id": rec["sys_id"],
                                 "element": "work_notes", "name": self.table,
                                 "value": str(note), "sys_created_on": _now()})

    def create(self, req: Request) -> Reply:
        if req.params["table"] != self.table:
            raise self.bad(f"Invalid table {req.params['table']}")
        body = self.body_object(req)
        for name in ("short_description", "correlation_id"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise self.bad(f"{name} is required")
        prefix = {"incident": "INC", "problem": "PRB", "sc_task": "SCTASK"}.get(self.table,
                                                                               "TASK")
        rec: dict[str, Any] = {"sys_id": uuid.uuid4().hex,
                               "number": f"{prefix}{next(self._nums):07d}", "state": "1",
                               "sys_created_on": _now(), "comments": []}
        self._apply(rec, body)
        self.tickets[rec["sys_id"]] = rec
        self._created()
        return Reply(201, {"result": self._json(rec)})

    def _json(self, rec: dict[str, Any]) -> dict[str, str]:
        out = {k: ("" if v is None else str(v)) for k, v in rec.items()
               if k not in ("comments", "active")}
        out.update(active="true" if rec["active"] else "false", work_notes="")
        return out

    def list_records(self, req: Request) -> Reply:
        query = req.query.get("sysparm_query", "")
        try:
            rows = [r for r in self._rows(req.params["table"]) if matches(r, query)]
        except ValueError as e:
            raise self.bad(str(e)) from None
        if m := re.search(r"ORDERBY(DESC)?(\w+)", query):
            rows.sort(key=lambda r: r.get(m.group(2), ""), reverse=bool(m.group(1)))
        limit = int(req.query.get("sysparm_limit") or 10000)
        fields = [f for f in req.query.get("sysparm_fields", "").split(",") if f]
        shown = [{k: r.get(k, "") for k in fields} if fields else r for r in rows[:limit]]
        return Reply(200, {"result": shown}, {"X-Total-Count": str(len(rows))})

    def get_record(self, req: Request) -> Reply:
        return Reply(200, {"result": self._json(self._record(req))})

    def patch(self, req: Request) -> Reply:
        rec = self._record(req)
        self._apply(rec, self.body_object(req))
        return Reply(200, {"result": self._json(rec)})
