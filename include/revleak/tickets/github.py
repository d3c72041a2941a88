"""GitHub Issues (github.com, or Enterprise with base_url ``https://host/api/v3``).

extra: repo ("owner/name", required), allow_public (false). The connection's password is the
token.

Before the first write of a relay run the repository is looked up once (``private`` and
``visibility``): revleak posts only to a private repository unless ``allow_public: true``. A
public repository (anyone can read it) or an internal one (every member of the enterprise can)
is refused, and so is one the token cannot see (404).

One label set for every issue: ``revleak``, the check and the category; the fingerprint and
the event's marker live in the body. The assignee is the owner's ``github_login`` (else
``account_id``). Escalation reassigns the issue to the escalation owner and comments. Lookups
list issues and comments updated since the attempt in doubt: the REST lists are consistent,
unlike the search API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from revleak.tickets import text
from revleak.tickets.base import Destination, Outcome, Refused, RejectedError
from revleak.tickets.transport import Bearer, Transport

PER_PAGE = 100
READERS = {"public": "anyone", "internal": "every member of the enterprise"}


class GitHubProvider:
    name = "github"
    consistent_find = True

    def __init__(self, dest: Destination, pacer: Callable[[], None] | None = None):
        repo = dest.extra.get("repo")
        if not repo or not isinstance(repo, str):
            raise ValueError("github needs extra.repo in the revleak_tickets connection")
        owner, sep, name = repo.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ValueError("github extra.repo must look like \"owner/name\"")
        if not dest.password:
            raise ValueError("github needs the connection's password (a token)")
        self.repo = repo
        self.allow_public = dest.flag("allow_public")
        self.repo_path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self.path = f"{self.repo_path}/issues"
        self.http = Transport(dest, self.name, auth=Bearer(dest.password), pacer=pacer, headers={
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})

    def close(self) -> None:
        self.http.close()

    def preflight(self) -> None:
        """Refuse a repository that people outside it can read, unless extra.allow_public."""
        if self.allow_public:
            return
        try:
            repo = self.http.json("GET", self.repo_path)
        except RejectedError as e:
            if e.status != 404:
                raise
            raise Refused(f"github repository {self.repo} not found: check extra.repo in the "
                          "revleak_tickets connection and that its token can read the "
                          "repository") from None
        visibility = str(repo.get("visibility") or "private") if repo.get("private") is True \
            else "public"
        if visibility != "private":
            raise Refused(
                f"github repository {self.repo} is {visibility} "
                f"({READERS.get(visibility, 'people outside it')} can read its issues): "
                "set extra.allow_public: true in the revleak_tickets connection to post "
                "findings there anyway (extra.redact: true leaves customers and amounts out)")

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            items = self.http.json("GET", path, params={**params, "per_page": PER_PAGE,
                                                        "page": page})
            yield from items
            if len(items) < PER_PAGE:
                return
            page += 1

    def find(self, event: dict[str, Any], since: datetime) -> str | None:
        """The issue (not pull request) updated since ``since`` whose body carries the event's
        marker."""
        for item in self._pages(self.path, {"labels": "revleak", "state": "all",
                                            "since": since.isoformat(), "sort": "created",
                                            "direction": "desc"}):
            if "pull_request" not in item and text.carries(item.get("body") or "", event["ref"]):
                return str(item["number"])
        return None

    def _assignee_refused(self, e: RejectedError, login: str | None) -> bool:
        return bool(login) and e.status == 422 and "assignees" in str(e)

    def open(self, event: dict[str, Any]) -> Outcome:
        issue: dict[str, Any] = {
            "title": text.title(event),
            "body": event["body"],
            "labels": text.labels("revleak", event.get("check"), event.get("category")),
        }
        login = text.identity(event.get("owner"), "github_login")
        notices = []
        if login:
            issue["assignees"] = [login]
        else:
            notices.append(text.unmapped(self.name, "github_login", event.get("owner"), None,
                                         "issue created unassigned"))
        try:
            data = self.http.json("POST", self.path, issue)
        except RejectedError as e:
            if not self._assignee_refused(e, login):
                raise
            del issue["assignees"]
            data = self.http.json("POST", self.path, issue)
            notices.append(text.unmapped(self.name, "github_login", event.get("owner"), login,
                                         "issue created unassigned"))
        return Outcome(str(data["number"]), notices)

    def _issue(self, key: str) -> str:
        return f"{self.path}/{quote(key, safe='')}"

    def _comment(self, key: str, event: dict[str, Any], since: datetime | None) -> None:
        path = f"{self._issue(key)}/comments"
        if since is not None and any(text.carries(c.get("body") or "", event["ref"])
                                     for c in self._pages(path, {"since": since.isoformat()})):
            return
        self.http.send("POST", path, {"body": event["body"]})

    def update(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._comment(key, event, since)
        return Outcome(key)

    def escalate(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._comment(key, event, since)
        person = event.get("escalation_owner")
        login = text.identity(person, "github_login")
        if login:
            try:
                self.http.send("PATCH", self._issue(key), {"assignees": [login]})
                return Outcome(key)
            except RejectedError as e:
                if not self._assignee_refused(e, login):
                    raise
        return Outcome(key, [text.unmapped(self.name, "github_login", person, login,
                                           "escalated without reassigning")])

    def resolve(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._comment(key, event, since)
        self.http.send("PATCH", self._issue(key), {"state": "closed",
                                                   "state_reason": "completed"})
        return Outcome(key)
