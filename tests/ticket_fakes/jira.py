"""A fake Jira: Cloud REST v3 (checked against Atlassian's description in
``tests/specs/jira-platform-v3.json``) or Server/Data Center REST v2 (checked by hand).

Like Jira Cloud, its search is eventually consistent: an issue created less than
``search_lag`` seconds ago is missing from the search results. ``users`` (when given) are
the assignable accountIds (v3) or names (v2); anyone else is refused as an assignee with
Jira's 400.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from tests.ticket_fakes.base import FakeServer, HttpError, Reply, Request
from tests.ticket_fakes.spec import spec

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
                 login: str = "revleak-bot@example.com", password: str | None = None,
                 users: Iterable[str] | None = None, search_lag: float = 0.0):
        super().__init__(login, password)
        self.version = api_version
        self.spec = spec("jira-platform-v3.json") if api_version == "3" else None
        self.project = project
        self.issue_types = issue_types
        self.users = set(users) if users is not None else None
        self.search_lag = search_lag
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
        """The user id from an assignee object; 400 on the wrong shape or an unknown user."""
        field_name = "accountId" if self.version == "3" else "name"
        if not isinstance(value, dict) or set(value) != {field_name}:
            raise self.field_errors({"assignee": f"expected an object with {field_name}"})
        user = value[field_name]
        if user is not None and (not isinstance(user, str) or not user):
            raise self.field_errors({"assignee": f"{field_name} must be a string"})
        if user is not None and self.users is not None and user not in self.users:
            raise self.field_errors({"assignee": f"User '{user}' cannot be assigned issues."})
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
            "status": "To Do", "resolution": None, "comments": [], "comment_bodies": [],
            "transitions": [], "created": time.time(),
        }
        self._created()
        return Reply(201, {"id": issue_id, "key": key,
                           "self": f"{self.url}/rest/api/{self.version}/issue/{issue_id}"})

    def _category(self, status: str) -> str:
        return next((t[3] for t in self.TRANSITIONS if t[2] == status), "new")

    def _issue_json(self, t: dict[str, Any], fields: str = "") -> dict[str, Any]:
        user_field = "accountId" if self.version == "3" else "name"
        out = {"summary": t["summary"], "labels": t["labels"], "duedate": t["duedate"],
               "assignee": {user_field: t["assignee"]} if t["assignee"] else None,
               "status": {"name": t["status"], "statusCategory": {
                   "key": self._category(t["status"])}}}
        if "description" in fields:
            out["description"] = t["fields"].get("description")
        if "comment" in fields:
            out["comment"] = {"comments": [{"id": str(10000 + i), "body": b}
                                           for i, b in enumerate(t["comment_bodies"], 1)],
                              "total": len(t["comment_bodies"])}
        return {"id": t["id"], "key": t["key"],
                "self": f"{self.url}/rest/api/{self.version}/issue/{t['id']}", "fields": out}

    def get_issue(self, req: Request) -> Reply:
        return Reply(200, self._issue_json(self._issue(req.params["key"]),
                                           req.query.get("fields", "")))

    def search_removed(self, req: Request) -> Reply:
        raise self.bad("The requested API has been removed. Please migrate to the "
                       "/rest/api/3/search/jql API.", status=410)

    def search(self, req: Request) -> Reply:
        jql = req.query.get("jql", "")
        m = re.search(r'labels\s*(?:=|in\s*\()\s*"((?:[^"\\]|\\.)*)"', jql)
        if not m and self.version == "3":
            raise self.bad("Unbounded JQL queries are not allowed here. Please add a search "
                           "restriction to your query.")
        indexed_before = time.time() - self.search_lag
        found = sorted((t for t in self.tickets.values() if t["created"] <= indexed_before),
                       key=lambda t: t["created"], reverse=True)
        if m:
            label = re.sub(r"\\(.)", r"\1", m.group(1))
            found = [t for t in found if label in t["labels"]]
        if re.search(r"statusCategory\s*!=\s*(Done|\"Done\")", jql, re.I):
            found = [t for t in found if self._category(t["status"]) != "done"]
        limit = int(req.query.get("maxResults") or 50)
        fields = req.query.get("fields", "")
        issues = [self._issue_json(t, fields) for t in found[:limit]]
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
        ticket["comment_bodies"].append(body)
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
