"""Fake Jira, ServiceNow, GitHub and webhook servers: real HTTP on 127.0.0.1, for provider tests.

Each server validates credentials (401), Content-Type (415) and the documented request shapes
(400, or 422 on GitHub), keeps its tickets in ``server.tickets`` and logs every request in
``server.requests_log`` (Authorization removed). Faults come from a queue consumed by the next
requests, whatever their endpoint::

    with JiraServer() as jira:                  # or server.start() ... server.stop()
        dest = jira.destination(timeout=0.5)    # a Destination pointing at it
        jira.fail_next(1, status=429, retry_after=2)
        jira.delay_next(1, seconds=1.0)         # sleeps, then handles the request normally
        jira.reset_next(1)                      # reads the request, then RSTs the connection
        jira.crash_after_create_next()          # next *create* stores the ticket, then drops
        jira.tickets["REV-1"]; jira.comments("REV-1")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import struct
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

from revleak.tickets.base import Destination

HIDDEN_HEADERS = {"authorization", "proxy-authorization", "cookie"}


class LoggedRequest(NamedTuple):
    """One request as received (path includes the query string; no auth headers)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Request:
    """A parsed request handed to a fake's routes."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a route to answer with an error status."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.reply = Reply(status, body, headers or {})


class Drop(Exception):
    """Close the connection without replying."""


@dataclass
class _Fault:
    kind: str  # fail | delay | reset
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out go away mid-reply: expected here, so stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "revleak-fake/1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK
        # add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        try:
            reply = self.server.fake._handle(self)
        except Drop:
            self._drop()
            return
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if reply.status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drop(self) -> None:
        """Abort the connection: SO_LINGER 0 makes the close send a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


Route = tuple[str, re.Pattern[str], Callable[[Request], Reply]]


class FakeServer:
    """Shared machinery: the HTTP server thread, the fault queue and the request log."""

    provider = "fake"

    def __init__(self, login: str | None, password: str | None):
        self.login = login
        self.password = password or "s3cret-" + secrets.token_urlsafe(18)
        self.tickets: dict[str, dict[str, Any]] = {}
        self.requests_log: list[LoggedRequest] = []
        self.errors: list[str] = []  # bugs in the fake itself (tracebacks)
        self.lock = threading.RLock()
        self._faults: deque[_Fault] = deque()
        self._crashes = 0
        self._routes: list[Route] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Self:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"fake-{self.provider}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def destination(self, timeout: float = 1.0, **extra: Any) -> Destination:
        """A Destination for this server with its credentials; ``extra`` overrides defaults."""
        return Destination(self.provider, self.url, self.login, self.password,
                           {**self.default_extra(), **extra}, timeout)

    def default_extra(self) -> dict[str, Any]:
        return {}

    # -- faults

    def fail_next(self, n: int = 1, status: int = 500, retry_after: float | str | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (and ``Retry-After`` if given)."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        self._queue(n, _Fault("fail", status=status, headers=hdrs))

    def delay_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """Sleep before handling the next ``n`` requests (they still take effect)."""
        self._queue(n, _Fault("delay", seconds=seconds))

    def reset_next(self, n: int = 1) -> None:
        """Read the next ``n`` requests, then reset the connection without a reply."""
        self._queue(n, _Fault("reset"))

    def crash_after_create_next(self, n: int = 1) -> None:
        """The next ``n`` creates store their ticket, then drop the connection unanswered."""
        with self.lock:
            self._crashes += n

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._crashes = 0

    def _queue(self, n: int, fault: _Fault) -> None:
        with self.lock:
            self._faults.extend([fault] * n)

    def _created(self) -> None:
        """Call right after a create is stored: crash here if asked to."""
        if self._crashes:
            self._crashes -= 1
            raise Drop

    # -- request handling

    def route(self, method: str, pattern: str, func: Callable[[Request], Reply]) -> None:
        self._routes.append((method, re.compile(pattern), func))

    def _read(self, h: _Handler) -> Request:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        shown = {k: v for k, v in h.headers.items() if k.lower() not in HIDDEN_HEADERS}
        with self.lock:
            self.requests_log.append(LoggedRequest(h.command, h.path, shown, body))
        return Request(h.command, parts.path, query, h.headers, body)

    def _handle(self, h: _Handler) -> Reply:
        req = self._read(h)
        with self.lock:
            fault = self._faults.popleft() if self._faults else None
        if fault and fault.kind == "delay":
            time.sleep(fault.seconds)
        elif fault and fault.kind == "reset":
            raise Drop
        elif fault:
            return Reply(fault.status, self.error_body(fault.status, "injected fault"),
                         dict(fault.headers))
        try:
            with self.lock:
                return self._dispatch(req)
        except HttpError as exc:
            return exc.reply
        except Drop:
            raise
        except Exception:  # a bug in the fake: answer 500 and keep it for the test to see
            self.errors.append(traceback.format_exc())
            return Reply(500, self.error_body(500, "fake server bug"))

    def _dispatch(self, req: Request) -> Reply:
        self.authenticate(req)
        path_matched = False
        for method, pattern, func in self._routes:
            m = pattern.fullmatch(req.path)
            if not m:
                continue
            path_matched = True
            if method == req.method:
                req.params = m.groupdict()
                if req.method in ("POST", "PUT", "PATCH"):
                    self.check_json(req)
                return func(req)
        if path_matched:
            raise HttpError(405, self.error_body(405, "Method Not Allowed"))
        raise HttpError(404, self.error_body(404, "Not Found"))

    # -- hooks for subclasses

    def authenticate(self, req: Request) -> None:
        """Basic auth by default; raise 401 when wrong."""
        expected = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        got = req.headers.get("Authorization") or ""
        if not hmac.compare_digest(got.encode(), f"Basic {expected}".encode()):
            raise HttpError(401, self.error_body(401, "Unauthorized"),
                            {"WWW-Authenticate": 'Basic realm="fake"'})

    def check_json(self, req: Request) -> Any:
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, self.error_body(415, "Unsupported Media Type"))
        try:
            return req.json()
        except ValueError:
            raise HttpError(400, self.error_body(400, "Problems parsing JSON")) from None

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def bad(self, message: str, status: int = 400) -> HttpError:
        return HttpError(status, self.error_body(status, message))

    def body_object(self, req: Request) -> dict[str, Any]:
        data = req.json()
        if not isinstance(data, dict):
            raise self.bad("request body must be a JSON object")
        return data

    def comments(self, key: str) -> list[str]:
        """Plain text of the ticket's comments / work notes, oldest first."""
        return list(self.tickets[key]["comments"])


# --------------------------------------------------------------------------- Jira

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ADF_BLOCKS = {"paragraph", "heading", "bulletList", "orderedList", "listItem", "codeBlock",
              "blockquote", "rule", "panel", "table"}


def _valid_date(text: Any) -> bool:
    if not isinstance(text, str) or not DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` when obj is a dict, else None (for shape-checking request bodies)."""
    return obj.get(key) if isinstance(obj, dict) else None


def adf_error(doc: Any) -> str | None:
    """Why ``doc`` is not a valid Atlassian Document Format document (None when it is)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return "must be an Atlassian Document (type doc, version 1)"
    if not isinstance(doc.get("content"), list):
        return "doc content must be a list"
    for block in doc["content"]:
        if not isinstance(block, dict) or block.get("type") not in ADF_BLOCKS:
            return "doc content must be block nodes"
        for node in block.get("content") or []:
            if not isinstance(node, dict) or "type" not in node:
                return "inline nodes need a type"
            if node["type"] == "text" and (not isinstance(node.get("text"), str)
                                           or not node["text"]):
                return "text nodes need non-empty text"
    return None


def adf_text(doc: Any) -> str:
    """Plain text of an ADF doc (one line per block)."""
    if isinstance(doc, str):
        return doc
    return "\n".join("".join(n.get("text", "") for n in b.get("content") or [])
                     for b in doc.get("content") or [])


class JiraServer(FakeServer):
    """Jira Cloud REST v3 (``api_version="3"``) or Server/Data Center REST v2 (``"2"``)."""

    provider = "jira"
    PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
    # id, name, target status, status category key
    TRANSITIONS = (
        ("11", "To Do", "To Do", "new"),
        ("21", "In Progress", "In Progress", "indeterminate"),
        ("31", "Done", "Done", "done"),
        ("41", "Won't Do", "Won't Do", "done"),
    )

    def __init__(self, api_version: str = "3", project: str = "REV",
                 issue_types: tuple[str, ...] = ("Task", "Bug", "Story"),
                 login: str = "revleak-bot@example.com", password: str | None = None):
        super().__init__(login, password)
        self.version = api_version
        self.project = project
        self.issue_types = issue_types
        self._ids = itertools.count(10001)
        self._nums = itertools.count(1)
        api = rf"/rest/api/{api_version}"
        issue = rf"{api}/issue/(?P<key>[^/]+)"
        self.route("POST", rf"{api}/issue", self.create)
        self.route("GET", issue, self.get_issue)
        self.route("POST", rf"{issue}/comment", self.add_comment)
        self.route("PUT", rf"{issue}/assignee", self.assign)
        self.route("GET", rf"{issue}/transitions", self.list_transitions)
        self.route("POST", rf"{issue}/transitions", self.do_transition)
        if api_version == "3":
            self.route("GET", rf"{api}/search/jql", self.search)
            self.route("GET", rf"{api}/search", self.search_removed)
        else:
            self.route("GET", rf"{api}/search", self.search)

    def default_extra(self) -> dict[str, Any]:
        return {"api_version": self.version, "project": self.project}

    def error_body(self, status: int, message: str) -> Any:
        return {"errorMessages": [message], "errors": {}}

    def field_errors(self, errors: dict[str, str]) -> HttpError:
        return HttpError(400, {"errorMessages": [], "errors": errors})

    def _text_error(self, value: Any) -> str | None:
        if self.version == "3":
            return adf_error(value)
        return None if isinstance(value, str) else "must be a string"

    def _user_of(self, value: Any) -> str | None:
        """The user id from an assignee object; raises 400 on the wrong shape for the version."""
        field_name = "accountId" if self.version == "3" else "name"
        if not isinstance(value, dict) or set(value) != {field_name}:
            raise self.field_errors({"assignee": f"expected an object with {field_name}"})
        user = value[field_name]
        if user is not None and (not isinstance(user, str) or not user):
            raise self.field_errors({"assignee": f"{field_name} must be a string"})
        return user

    def _issue(self, key: str) -> dict[str, Any]:
        for ticket in self.tickets.values():
            if key in (ticket["key"], ticket["id"]):
                return ticket
        raise HttpError(404, self.error_body(
            404, "Issue does not exist or you do not have permission to see it."))

    def _validate(self, fields: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if _get(fields.get("project"), "key") != self.project:
            errors["project"] = "valid project is required"
        if _get(fields.get("issuetype"), "name") not in self.issue_types:
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip() or "\n" in summary \
                or len(summary) > 255:
            errors["summary"] = "You must specify a summary of the issue (one line, <= 255)."
        if "description" in fields and (err := self._text_error(fields["description"])):
            errors["description"] = f"Operation value {err}"
        if "duedate" in fields and not _valid_date(fields["duedate"]):
            errors["duedate"] = "Error parsing date string: expected yyyy-MM-dd"
        if "priority" in fields and _get(fields["priority"], "name") not in self.PRIORITIES:
            errors["priority"] = "Specify the Priority (name) in the string format"
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(
                isinstance(x, str) and x and not re.search(r"\s", x) for x in labels):
            errors["labels"] = "labels must be a list of strings without spaces"
        return errors

    def create(self, req: Request) -> Reply:
        body = self.body_object(req)
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise self.bad("Can not deserialize: fields is required")
        if errors := self._validate(fields):
            raise self.field_errors(errors)
        assignee = self._user_of(fields["assignee"]) if "assignee" in fields else None
        issue_id, key = str(next(self._ids)), f"{self.project}-{next(self._nums)}"
        self.tickets[key] = {
            "id": issue_id, "key": key, "fields": fields, "summary": fields["summary"],
            "description": adf_text(fields.get("description") or ""),
            "labels": list(fields.get("labels", [])), "assignee": assignee,
            "duedate": fields.get("duedate"), "priority": _get(fields.get("priority"), "name"),
            "status": "To Do", "resolution": None, "comments": [],
            "transitions": [], "created": time.time(),
        }
        self._created()
        return Reply(201, {"id": issue_id, "key": key,
                           "self": f"{self.url}/rest/api/{self.version}/issue/{issue_id}"})

    def _category(self, status: str) -> str:
        return next((t[3] for t in self.TRANSITIONS if t[2] == status), "new")

    def _issue_json(self, t: dict[str, Any]) -> dict[str, Any]:
        user_field = "accountId" if self.version == "3" else "name"
        return {"id": t["id"], "key": t["key"],
                "self": f"{self.url}/rest/api/{self.version}/issue/{t['id']}",
                "fields": {"summary": t["summary"], "labels": t["labels"],
                           "duedate": t["duedate"],
                           "assignee": {user_field: t["assignee"]} if t["assignee"] else None,
                           "status": {"name": t["status"], "statusCategory": {
                               "key": self._category(t["status"])}}}}

    def get_issue(self, req: Request) -> Reply:
        return Reply(200, self._issue_json(self._issue(req.params["key"])))

    def search_removed(self, req: Request) -> Reply:
        raise self.bad("The requested API has been removed. Please migrate to the "
                       "/rest/api/3/search/jql API.", status=410)

    def search(self, req: Request) -> Reply:
        jql = req.query.get("jql", "")
        m = re.search(r'labels\s*(?:=|in\s*\()\s*"((?:[^"\\]|\\.)*)"', jql)
        if not m and self.version == "3":
            raise self.bad("Unbounded JQL queries are not allowed here. Please add a search "
                           "restriction to your query.")
        found = sorted(self.tickets.values(), key=lambda t: t["created"], reverse=True)
        if m:
            label = re.sub(r"\\(.)", r"\1", m.group(1))
            found = [t for t in found if label in t["labels"]]
        if re.search(r"statusCategory\s*!=\s*(Done|\"Done\")", jql, re.I):
            found = [t for t in found if self._category(t["status"]) != "done"]
        limit = int(req.query.get("maxResults") or 50)
        issues = [self._issue_json(t) for t in found[:limit]]
        if self.version == "3":
            return Reply(200, {"issues": issues, "isLast": len(found) <= limit})
        return Reply(200, {"expand": "schema,names", "startAt": 0, "maxResults": limit,
                           "total": len(found), "issues": issues})

    def add_comment(self, req: Request) -> Reply:
        ticket = self._issue(req.params["key"])
        body = self.body_object(req).get("body")
        if body in (None, "") or (err := self._text_error(body)):
            raise self.field_errors({"comment": f"Comment body {err or 'can not be empty!'}"})
        ticket["comments"].append(adf_text(body))
        cid = str(len(ticket["comments"]) + 10000)
        return Reply(201, {"id": cid, "body": body,
                           "created": datetime.now(UTC).isoformat(timespec="milliseconds")})

    def assign(self, req: Request) -> Reply:
        ticket = self._issue(req.params["key"])
        ticket["assignee"] = self._user_of(self.body_object(req))
        return Reply(204)

    def _available(self, ticket: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return [t for t in self.TRANSITIONS if t[2] != ticket["status"]]

    def list_transitions(self, req: Request) -> Reply:
        ticket = self._issue(req.params["key"])
        return Reply(200, {"expand": "transitions", "transitions": [
            {"id": tid, "name": name, "hasScreen": False, "isGlobal": True,
             "to": {"name": to, "statusCategory": {"key": cat}}}
            for tid, name, to, cat in self._available(ticket)]})

    def do_transition(self, req: Request) -> Reply:
        ticket = self._issue(req.params["key"])
        body = self.body_object(req)
        tid = str(_get(body.get("transition"), "id"))
        match = next((t for t in self._available(ticket) if t[0] == tid), None)
        if match is None:
            raise self.bad(f"Transition id '{tid}' is not valid for this issue.")
        ticket["status"] = match[2]
        ticket["transitions"].append(match[1])
        resolution = _get(_get(body.get("fields"), "resolution"), "name")
        ticket["resolution"] = resolution or (match[2] if match[3] == "done" else None)
        return Reply(204)


# --------------------------------------------------------------------------- ServiceNow

SNOW_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
SNOW_FIELDS = ("short_description", "description", "assigned_to", "assignment_group",
               "due_date", "correlation_id", "correlation_display", "urgency", "impact", "state",
               "close_code", "close_notes", "caller_id", "category")
SNOW_PRIORITY = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3",
                 ("2", "2"): "3", ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4",
                 ("3", "3"): "5"}
SNOW_STATES = {"1", "2", "3", "6", "7", "8"}  # new, in progress, on hold, resolved, closed, canc.


class ServiceNowServer(FakeServer):
    """ServiceNow Table API for one table (``incident`` by default)."""

    provider = "servicenow"

    def __init__(self, table: str = "incident", login: str = "revleak.integration",
                 password: str | None = None):
        super().__init__(login, password)
        self.table = table
        self._nums = itertools.count(10001)
        base = r"/api/now/table/(?P<table>[^/]+)"
        self.route("GET", base, self.list_records)
        self.route("POST", base, self.create)
        self.route("GET", rf"{base}/(?P<sys_id>[^/]+)", self.get_record)
        self.route("PATCH", rf"{base}/(?P<sys_id>[^/]+)", self.patch)
        self.route("PUT", rf"{base}/(?P<sys_id>[^/]+)", self.patch)

    def default_extra(self) -> dict[str, Any]:
        return {"table": self.table}

    def error_body(self, status: int, message: str) -> Any:
        detail = "Required to provide Auth information" if status == 401 else None
        if status == 401:
            message = "User Not Authenticated"
        return {"error": {"message": message, "detail": detail}, "status": "failure"}

    def _table(self, req: Request) -> None:
        if req.params["table"] != self.table:
            raise self.bad(f"Invalid table {req.params['table']}")

    def _record(self, req: Request) -> dict[str, Any]:
        self._table(req)
        if req.params["sys_id"] not in self.tickets:
            raise HttpError(404, {"error": {
                "message": "No Record found",
                "detail": "Record doesn't exist or ACL restricts the record retrieval"},
                "status": "failure"})
        return self.tickets[req.params["sys_id"]]

    def _apply(self, rec: dict[str, Any], body: dict[str, Any]) -> None:
        """Validate and apply known fields (ServiceNow ignores unknown ones)."""
        values = {k: "" if body[k] is None else str(body[k]) for k in SNOW_FIELDS if k in body}
        for name in ("urgency", "impact"):
            if name in values and values[name] not in ("1", "2", "3"):
                raise self.bad(f"{name} must be 1, 2 or 3")
        if "state" in values and values["state"] not in SNOW_STATES:
            raise self.bad(f"invalid state {values['state']}")
        if values.get("due_date") and not SNOW_DATETIME.fullmatch(values["due_date"]):
            raise self.bad("due_date must be 'YYYY-MM-DD HH:MM:SS'")
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
        for journal in ("work_notes", "comments"):
            if body.get(journal):
                rec["comments"].append(str(body[journal]))
                rec.setdefault("journal", []).append((journal, str(body[journal])))

    def create(self, req: Request) -> Reply:
        self._table(req)
        body = self.body_object(req)
        for name in ("short_description", "correlation_id"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise self.bad(f"{name} is required")
        prefix = {"incident": "INC", "problem": "PRB", "sc_task": "SCTASK"}.get(self.table,
                                                                               "TASK")
        rec: dict[str, Any] = {"sys_id": uuid.uuid4().hex,
                               "number": f"{prefix}{next(self._nums):07d}", "state": "1",
                               "sys_created_on": self._now(), "comments": []}
        self._apply(rec, body)
        self.tickets[rec["sys_id"]] = rec
        self._created()
        return Reply(201, {"result": self._json(rec)})

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _json(self, rec: dict[str, Any], fields: list[str] | None = None) -> dict[str, str]:
        out = {k: ("" if v is None else str(v)) for k, v in rec.items()
               if k not in ("comments", "journal", "active")}
        out.update(active="true" if rec["active"] else "false", work_notes="", comments="")
        return {k: out.get(k, "") for k in fields} if fields else out

    def _matches(self, rec: dict[str, Any], query: str) -> bool:
        view = self._json(rec)
        for term in filter(None, query.split("^")):
            if term.startswith(("ORDERBY", "ORDERBYDESC")):
                continue
            m = re.fullmatch(r"(\w+)(!=|=)(.*)", term)
            if not m:
                raise self.bad(f"unsupported query term {term!r}")
            name, op, value = m.groups()
            if (view.get(name, "") == value) != (op == "="):
                return False
        return True

    def list_records(self, req: Request) -> Reply:
        self._table(req)
        query = req.query.get("sysparm_query", "")
        rows = [r for r in self.tickets.values() if self._matches(r, query)]
        rows.sort(key=lambda r: r["sys_created_on"], reverse="ORDERBYDESC" in query)
        limit = int(req.query.get("sysparm_limit") or 10000)
        fields = [f for f in req.query.get("sysparm_fields", "").split(",") if f] or None
        return Reply(200, {"result": [self._json(r, fields) for r in rows[:limit]]},
                     {"X-Total-Count": str(len(rows))})

    def get_record(self, req: Request) -> Reply:
        return Reply(200, {"result": self._json(self._record(req))})

    def patch(self, req: Request) -> Reply:
        rec = self._record(req)
        self._apply(rec, self.body_object(req))
        return Reply(200, {"result": self._json(rec)})


# --------------------------------------------------------------------------- GitHub

GITHUB_VERSIONS = {"2022-11-28", "2026-03-10"}


class GitHubServer(FakeServer):
    """GitHub REST issues for one repository; the token comes as ``Bearer``/``token``."""

    provider = "github"

    def __init__(self, repo: str = "acme/revenue", token: str | None = None):
        super().__init__(None, token)
        self.repo = repo
        self._nums = itertools.count(1)
        self._ids = itertools.count(900001)
        base = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/issues"
        self.route("POST", base, self.create)
        self.route("GET", base, self.list_issues)
        self.route("GET", rf"{base}/(?P<n>\d+)", self.get_issue)
        self.route("PATCH", rf"{base}/(?P<n>\d+)", self.edit)
        self.route("POST", rf"{base}/(?P<n>\d+)/comments", self.add_comment)
        self.route("POST", rf"{base}/(?P<n>\d+)/assignees", self.add_assignees)

    def default_extra(self) -> dict[str, Any]:
        return {"repo": self.repo}

    def error_body(self, status: int, message: str) -> Any:
        if status == 401:
            message = "Bad credentials"
        return {"message": message, "documentation_url": "https://docs.github.com/rest",
                "status": str(status)}

    def authenticate(self, req: Request) -> None:
        got = req.headers.get("Authorization") or ""
        scheme, _, token = got.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not hmac.compare_digest(
                token.encode(), self.password.encode()):
            raise HttpError(401, self.error_body(401, "Bad credentials"))
        version = req.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in GITHUB_VERSIONS:
            raise self.bad(f"Invalid API version {version}")

    def invalid(self, field_name: str, code: str = "invalid") -> HttpError:
        return HttpError(422, {"message": "Validation Failed", "errors": [
            {"resource": "Issue", "code": code, "field": field_name}],
            "documentation_url": "https://docs.github.com/rest/issues/issues", "status": "422"})

    def _repo(self, req: Request) -> None:
        if f"{req.params['owner']}/{req.params['name']}" != self.repo:
            raise HttpError(404, self.error_body(404, "Not Found"))

    def _issue(self, req: Request) -> dict[str, Any]:
        self._repo(req)
        ticket = self.tickets.get(req.params["n"])
        if ticket is None:
            raise HttpError(404, self.error_body(404, "Not Found"))
        return ticket

    def _strings(self, body: dict[str, Any], name: str, max_len: int = 50) -> list[str]:
        value = body.get(name, [])
        if not isinstance(value, list) or not all(
                isinstance(x, str) and x.strip() and len(x) <= max_len for x in value):
            raise self.invalid(name)
        return list(dict.fromkeys(value))

    def _json(self, t: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/repos/{self.repo}/issues/{t['number']}"
        out = {"id": t["id"], "number": t["number"], "title": t["title"], "body": t["body"],
               "state": t["state"], "state_reason": t["state_reason"], "url": url,
               "html_url": f"https://github.com/{self.repo}/issues/{t['number']}",
               "labels": [{"name": x} for x in t["labels"]],
               "assignees": [{"login": x} for x in t["assignees"]],
               "assignee": {"login": t["assignees"][0]} if t["assignees"] else None,
               "comments": len(t["comments"]), "created_at": t["created_at"]}
        if t.get("pull_request"):
            out["pull_request"] = {"url": url.replace("/issues/", "/pulls/")}
        return out

    def _new(self, title: str, body: Any, labels: list[str], assignees: list[str],
             pull_request: bool = False) -> dict[str, Any]:
        n = next(self._nums)
        ticket = {"id": next(self._ids), "number": n, "title": title, "body": body,
                  "state": "open", "state_reason": None, "labels": labels,
                  "assignees": assignees, "comments": [], "pull_request": pull_request,
                  "created_at": datetime.now(UTC).isoformat(timespec="microseconds")}
        self.tickets[str(n)] = ticket
        return ticket

    def add_pull_request(self, title: str, labels: list[str]) -> str:
        """A pull request (which the issues list also returns) sharing the issue numbers."""
        with self.lock:
            return str(self._new(title, "", labels, [], pull_request=True)["number"])

    def create(self, req: Request) -> Reply:
        self._repo(req)
        body = self.body_object(req)
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise self.invalid("title", "missing_field")
        if body.get("body") is not None and not isinstance(body["body"], str):
            raise self.invalid("body")
        ticket = self._new(body["title"], body.get("body"), self._strings(body, "labels"),
                           self._strings(body, "assignees", 39))
        self._created()
        return Reply(201, self._json(ticket))

    def list_issues(self, req: Request) -> Reply:
        self._repo(req)
        state = req.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise self.invalid("state")
        wanted = [x for x in req.query.get("labels", "").split(",") if x]
        found = [t for t in self.tickets.values()
                 if (state == "all" or t["state"] == state)
                 and all(x in t["labels"] for x in wanted)]
        found.sort(key=lambda t: t["created_at"], reverse=req.query.get("direction") != "asc")
        per_page = min(int(req.query.get("per_page") or 30), 100)
        return Reply(200, [self._json(t) for t in found[:per_page]])

    def get_issue(self, req: Request) -> Reply:
        return Reply(200, self._json(self._issue(req)))

    def edit(self, req: Request) -> Reply:
        ticket = self._issue(req)
        body = self.body_object(req)
        if "state" in body:
            if body["state"] not in ("open", "closed"):
                raise self.invalid("state")
            reason = body.get("state_reason")
            if reason not in (None, "completed", "not_planned", "reopened", "duplicate"):
                raise self.invalid("state_reason")
            ticket["state"] = body["state"]
            ticket["state_reason"] = reason or ("completed" if body["state"] == "closed"
                                                else None)
        for name in ("labels", "assignees"):
            if name in body:
                ticket[name] = self._strings(body, name)
        if "title" in body:
            ticket["title"] = body["title"]
        return Reply(200, self._json(ticket))

    def add_comment(self, req: Request) -> Reply:
        ticket = self._issue(req)
        text = self.body_object(req).get("body")
        if not isinstance(text, str) or not text.strip():
            raise self.invalid("body", "missing_field")
        ticket["comments"].append(text)
        return Reply(201, {"id": next(self._ids), "body": text, "user": {"login": "revleak"},
                           "html_url": f"https://github.com/{self.repo}/issues/"
                                       f"{ticket['number']}#issuecomment-1"})

    def add_assignees(self, req: Request) -> Reply:
        ticket = self._issue(req)
        for login in self._strings(self.body_object(req), "assignees", 39):
            if login not in ticket["assignees"]:
                ticket["assignees"].append(login)
        return Reply(201, self._json(ticket))


# --------------------------------------------------------------------------- webhook

WEBHOOK_FIELDS = ("action", "fingerprint", "check", "category", "entity_type", "entity_id",
                  "customer_id", "as_of", "owner", "due_date", "gap_amount", "gap_amount_base",
                  "currency", "gap_pct", "days_outstanding", "time_weighted_loss", "title",
                  "body")


class WebhookServer(FakeServer):
    """A contract §5 receiver: checks the HMAC, dedupes by Idempotency-Key, replies a key.

    ``deliveries`` holds every accepted POST: ``{"headers", "raw", "payload", "duplicate"}``.
    """

    provider = "webhook"

    def __init__(self, secret: str | None = None, path: str = "/hooks/revleak"):
        super().__init__(None, secret)
        self.path = path
        self.deliveries: list[dict[str, Any]] = []
        self.replies: dict[str, Reply] = {}
        self._nums = itertools.count(1)
        self.route("POST", re.escape(path), self.receive)

    @property
    def secret(self) -> str:
        assert self.password
        return self.password

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def authenticate(self, req: Request) -> None:
        """The signature is checked in ``receive``, after the Content-Type."""

    def signature(self, raw: bytes) -> str:
        return "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()

    def receive(self, req: Request) -> Reply:
        got = req.headers.get("X-Revleak-Signature") or ""
        if not hmac.compare_digest(got.encode(), self.signature(req.body).encode()):
            raise HttpError(401, {"error": "bad signature"})
        idem = req.headers.get("Idempotency-Key")
        if not idem:
            raise self.bad("Idempotency-Key header is required")
        payload = self.body_object(req)
        record = {"headers": {k: v for k, v in req.headers.items()}, "raw": req.body,
                  "payload": payload, "duplicate": idem in self.replies}
        self.deliveries.append(record)
        if idem in self.replies:
            return self.replies[idem]
        missing = [f for f in WEBHOOK_FIELDS if f not in payload]
        if missing:
            raise self.bad(f"missing fields: {', '.join(missing)}")
        if payload["action"] not in ("open", "update", "resolve"):
            raise self.bad(f"unknown action {payload['action']!r}")
        reply = self._apply(payload)
        self.replies[idem] = reply
        if payload["action"] == "open":
            self._created()
        return reply

    def _apply(self, payload: dict[str, Any]) -> Reply:
        if payload["action"] == "open":
            key = f"WH-{next(self._nums)}"
            self.tickets[key] = {"key": key, "fingerprint": payload["fingerprint"],
                                 "state": "open", "escalated": False, "events": [payload],
                                 "comments": []}
            return Reply(201, {"key": key})
        ticket = next((t for t in reversed(self.tickets.values())
                       if t["fingerprint"] == payload["fingerprint"]), None)
        if ticket is None:
            return Reply(404, {"error": "no ticket for this fingerprint"})
        ticket["events"].append(payload)
        ticket["comments"].append(payload.get("body") or "")
        if payload.get("escalated"):
            ticket["escalated"] = True
        if payload["action"] == "resolve":
            ticket["state"] = "resolved"
        return Reply(200, {"key": ticket["key"]})
