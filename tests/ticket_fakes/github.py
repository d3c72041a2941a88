"""A fake GitHub REST API for one repository's issues, checked against GitHub's own description
(``tests/specs/github-rest.json``, cut from ``@octokit/openapi``).

``assignable`` (when given) are the logins that may be assigned; others get GitHub's 422.
``secondary_limit_next`` answers like GitHub's secondary rate limit: 403 (or 429) with the
documented message and no ``Retry-After``.

``GET /repos/{owner}/{repo}`` answers the repository with ``visibility`` (``private``,
``public`` or ``internal``; ``private`` is true unless public, as GitHub reports an internal
repository). The faults ``fail_next``/``delay_next``/``reset_next`` queue hit the issue
endpoints only, as they always did; ``fail_repository_next`` queues the repository lookup's.
"""

from __future__ import annotations

import hmac
import itertools
import re
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tests.ticket_fakes.base import FakeServer, HttpError, Reply, Request, _Fault
from tests.ticket_fakes.spec import spec

GITHUB_VERSIONS = {"2022-11-28", "2026-03-10"}
SECONDARY_LIMIT = ("You have exceeded a secondary rate limit. Please wait a few minutes before "
                   "you try again. If you reach out to GitHub Support for help, please include "
                   "the request ID.")


REPOSITORY = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class GitHubServer(FakeServer):
    provider = "github"
    spec = spec("github-rest.json")

    def __init__(self, repo: str = "acme/revenue", token: str | None = None,
                 assignable: Iterable[str] | None = None, visibility: str = "private"):
        super().__init__(None, token)
        self.repo = repo
        self.visibility = visibility
        self.assignable = set(assignable) if assignable is not None else None
        self.repository_faults: deque[_Fault] = deque()
        self._nums = itertools.count(1)
        self._ids = itertools.count(900001)
        self.route("GET", REPOSITORY, self.repository)
        base = rf"{REPOSITORY}/issues"
        self.route("POST", base, self.create)
        self.route("GET", base, self.list_issues)
        self.route("PATCH", rf"{base}/(?P<n>\d+)", self.edit)
        self.route("POST", rf"{base}/(?P<n>\d+)/comments", self.add_comment)
        self.route("GET", rf"{base}/(?P<n>\d+)/comments", self.list_comments)

    def default_extra(self) -> dict[str, Any]:
        return {"repo": self.repo}

    def secondary_limit_next(self, n: int = 1, status: int = 403) -> None:
        self.fail_next(n, status=status, message=SECONDARY_LIMIT)

    def fail_repository_next(self, n: int = 1, status: int = 500,
                             headers: dict[str, str] | None = None,
                             message: str = "injected fault") -> None:
        """Answer the next ``n`` repository lookups with ``status``."""
        with self.lock:
            self.repository_faults.extend([self.failure(status, None, headers,
                                                        message=message)] * n)

    def faults_for(self, req: Request) -> deque[_Fault]:
        return self.repository_faults if re.fullmatch(REPOSITORY, req.path) else self._faults

    def clear_faults(self) -> None:
        with self.lock:
            super().clear_faults()
            self.repository_faults.clear()

    @property
    def repository_lookups(self) -> int:
        """How many times the repository was asked for."""
        with self.lock:
            return sum(1 for r in self.requests_log if r.method == "GET"
                       and re.fullmatch(REPOSITORY, r.path.split("?", 1)[0]))

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

    def invalid(self, field_name: str, code: str = "invalid", value: Any = None) -> HttpError:
        error = {"resource": "Issue", "code": code, "field": field_name}
        if value is not None:
            error["value"] = value
        return HttpError(422, {"message": "Validation Failed", "errors": [error],
                               "documentation_url": "https://docs.github.com/rest/issues/issues",
                               "status": "422"})

    def repository(self, req: Request) -> Reply:
        """GitHub's full repository, trimmed to what a client reads."""
        self._repo(req)
        owner, name = self.repo.split("/", 1)
        return Reply(200, {
            "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name,
            "full_name": self.repo, "private": self.visibility != "public",
            "visibility": self.visibility,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "html_url": f"https://github.com/{self.repo}", "description": None,
            "fork": False, "url": f"{self.url}/repos/{self.repo}", "has_issues": True,
            "archived": False, "disabled": False, "default_branch": "main",
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True,
                            "pull": True},
            "created_at": "2024-01-01T00:00:00Z", "updated_at": _stamp()})

    def _repo(self, req: Request) -> None:
        if f"{req.params['owner']}/{req.params['name']}" != self.repo:
            raise HttpError(404, self.error_body(404, "Not Found"))

    def _issue(self, req: Request) -> dict[str, Any]:
        self._repo(req)
        ticket = self.tickets.get(req.params["n"])
        if ticket is None:
            raise HttpError(404, self.error_body(404, "Not Found"))
        return ticket

    def _assignees(self, body: dict[str, Any]) -> list[str]:
        logins = list(dict.fromkeys(body.get("assignees") or []))
        for login in logins:
            if self.assignable is not None and login not in self.assignable:
                raise self.invalid("assignees", value=login)
        return logins

    def _json(self, t: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/repos/{self.repo}/issues/{t['number']}"
        out = {"id": t["id"], "number": t["number"], "title": t["title"], "body": t["body"],
               "state": t["state"], "state_reason": t["state_reason"], "url": url,
               "html_url": f"https://github.com/{self.repo}/issues/{t['number']}",
               "labels": [{"name": x} for x in t["labels"]],
               "assignees": [{"login": x} for x in t["assignees"]],
               "assignee": {"login": t["assignees"][0]} if t["assignees"] else None,
               "comments": len(t["comments"]), "created_at": t["created_at"],
               "updated_at": t["updated_at"]}
        if t.get("pull_request"):
            out["pull_request"] = {"url": url.replace("/issues/", "/pulls/")}
        return out

    def _new(self, title: str, body: Any, labels: list[str], assignees: list[str],
             pull_request: bool = False) -> dict[str, Any]:
        n = next(self._nums)
        now = _stamp()
        ticket = {"id": next(self._ids), "number": n, "title": title, "body": body,
                  "state": "open", "state_reason": None, "labels": labels,
                  "assignees": assignees, "comments": [], "comment_log": [],
                  "pull_request": pull_request, "created_at": now, "updated_at": now}
        self.tickets[str(n)] = ticket
        return ticket

    def add_pull_request(self, title: str, body: str, labels: list[str]) -> str:
        """A pull request (which the issues list also returns) sharing the issue numbers."""
        with self.lock:
            return str(self._new(title, body, labels, [], pull_request=True)["number"])

    @property
    def labels_used(self) -> set[str]:
        return {x for t in self.tickets.values() for x in t["labels"]}

    def create(self, req: Request) -> Reply:
        self._repo(req)
        body = self.body_object(req)
        ticket = self._new(str(body["title"]), body.get("body"),
                           list(dict.fromkeys(body.get("labels") or [])), self._assignees(body))
        self._created()
        return Reply(201, self._json(ticket))

    def _page(self, items: list[Any], req: Request) -> list[Any]:
        per_page = min(int(req.query.get("per_page") or 30), 100)
        page = int(req.query.get("page") or 1)
        return items[(page - 1) * per_page:page * per_page]

    def list_issues(self, req: Request) -> Reply:
        self._repo(req)
        state = req.query.get("state", "open")
        wanted = [x for x in req.query.get("labels", "").split(",") if x]
        since = req.query.get("since")
        key = "updated_at" if req.query.get("sort") == "updated" else "created_at"
        found = [t for t in self.tickets.values()
                 if (state == "all" or t["state"] == state)
                 and all(x in t["labels"] for x in wanted)
                 and (not since or datetime.fromisoformat(t["updated_at"])
                      >= datetime.fromisoformat(since))]
        found.sort(key=lambda t: t[key], reverse=req.query.get("direction") != "asc")
        return Reply(200, [self._json(t) for t in self._page(found, req)])

    def edit(self, req: Request) -> Reply:
        ticket = self._issue(req)
        body = self.body_object(req)
        if "state" in body:
            ticket["state"] = body["state"]
            ticket["state_reason"] = body.get("state_reason") or (
                "completed" if body["state"] == "closed" else None)
        if "assignees" in body:
            ticket["assignees"] = self._assignees(body)
        if "labels" in body:
            ticket["labels"] = list(body["labels"])
        ticket["updated_at"] = _stamp()
        return Reply(200, self._json(ticket))

    def add_comment(self, req: Request) -> Reply:
        ticket = self._issue(req)
        text = self.body_object(req)["body"]
        if not text.strip():
            raise self.invalid("body", "missing_field")
        comment = {"id": next(self._ids), "body": text, "user": {"login": "revleak"},
                   "created_at": _stamp(), "updated_at": _stamp(),
                   "html_url": f"https://github.com/{self.repo}/issues/{ticket['number']}"}
        ticket["comments"].append(text)
        ticket["comment_log"].append(comment)
        ticket["updated_at"] = comment["created_at"]
        return Reply(201, comment)

    def list_comments(self, req: Request) -> Reply:
        ticket = self._issue(req)
        since = req.query.get("since")
        found = [c for c in ticket["comment_log"] if not since or datetime.fromisoformat(
            c["updated_at"]) >= datetime.fromisoformat(since)]
        return Reply(200, self._page(found, req))
