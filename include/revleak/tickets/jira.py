"""Jira Cloud (REST v3, ADF text, accountId) or Server/Data Center (REST v2, user names).

extra: project (required), api_version "3"|"2", issue_type ("Task"), resolve_transition
("Done"), resolution (optional resolution name set by the transition), priorities (map of
revleak priority → Jira priority name).

The assignee is the owner's ``jira_account_id`` (else ``account_id``). Escalation reassigns
the issue to the escalation owner and comments. Issues carry the labels ``revleak``,
``revleak-<fingerprint>`` and the category. Jira's search is eventually consistent
(``consistent_find`` is False): the relay trusts an empty search only once the attempt it
looks for is older than ``tickets.search_settle_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from revleak.tickets import text
from revleak.tickets.base import Destination, Outcome, RejectedError
from revleak.tickets.transport import Transport, basic_auth

PRIORITIES = {"highest": "Highest", "high": "High", "medium": "Medium", "low": "Low"}


class JiraProvider:
    name = "jira"
    consistent_find = False

    def __init__(self, dest: Destination, pacer: Callable[[], None] | None = None):
        extra = dest.extra
        self.version = str(extra.get("api_version") or "3")
        if self.version not in ("2", "3"):
            raise ValueError("jira extra.api_version must be \"3\" (Cloud) or \"2\" (Server/DC)")
        self.project = extra.get("project")
        if not self.project or not isinstance(self.project, str):
            raise ValueError("jira needs extra.project in the revleak_tickets connection")
        self.issue_type = str(extra.get("issue_type") or "Task")
        self.resolve_transition = str(extra.get("resolve_transition") or "Done")
        self.resolution = extra.get("resolution")
        self.priorities = {**PRIORITIES, **(extra.get("priorities") or {})}
        self.api = f"/rest/api/{self.version}"
        self.http = Transport(dest, self.name, auth=basic_auth(dest, "jira"), pacer=pacer)

    def close(self) -> None:
        self.http.close()

    def preflight(self) -> None:
        """Nothing to check before delivering."""

    def _text(self, body: str) -> Any:
        lines = text.plain(body)
        return text.adf(lines) if self.version == "3" else "\n".join(lines)

    def _user(self, account: str) -> dict[str, str]:
        return {"accountId": account} if self.version == "3" else {"name": account}

    def _issue(self, key: str) -> str:
        return f"{self.api}/issue/{quote(key, safe='')}"

    def find(self, event: dict[str, Any], since: datetime) -> str | None:
        """The issue labelled with the fingerprint whose description carries the event's
        marker (newest first)."""
        label = f"revleak-{event['fingerprint']}".replace("\\", "\\\\").replace('"', '\\"')
        jql = f'labels = "{label}" ORDER BY created DESC'
        path = f"{self.api}/search/jql" if self.version == "3" else f"{self.api}/search"
        data = self.http.json("GET", path, params={"jql": jql, "maxResults": 20,
                                                   "fields": "description"})
        for issue in (data.get("issues") or []) if isinstance(data, dict) else []:
            if text.carries((issue.get("fields") or {}).get("description") or "", event["ref"]):
                return str(issue["key"])
        return None

    def open(self, event: dict[str, Any]) -> Outcome:
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": text.title(event)[:255],
            "description": self._text(event["body"]),
            "labels": text.labels("revleak", f"revleak-{event['fingerprint']}",
                                  event.get("category")),
        }
        if due := text.day(event.get("due_date")):
            fields["duedate"] = due
        if priority := self.priorities.get(str(event.get("priority") or "").lower()):
            fields["priority"] = {"name": priority}
        notices: list[str] = []
        account = text.identity(event.get("owner"), "jira_account_id")
        if account:
            fields["assignee"] = self._user(account)
        else:
            notices.append(text.unmapped(self.name, "jira_account_id", event.get("owner"), None,
                                         "issue created unassigned"))
        try:
            data = self.http.json("POST", f"{self.api}/issue", {"fields": fields})
        except RejectedError as e:
            if not (account and e.status == 400 and "assignee" in str(e)):
                raise
            del fields["assignee"]
            data = self.http.json("POST", f"{self.api}/issue", {"fields": fields})
            notices.append(text.unmapped(self.name, "jira_account_id", event.get("owner"),
                                         account, "issue created unassigned"))
        return Outcome(str(data["key"]), notices)

    def _comment(self, key: str, event: dict[str, Any], since: datetime | None) -> None:
        if since is not None and self._has_comment(key, event["ref"]):
            return
        self.http.send("POST", f"{self._issue(key)}/comment", {"body": self._text(event["body"])})

    def _has_comment(self, key: str, ref: str) -> bool:
        data = self.http.json("GET", self._issue(key), params={"fields": "comment"})
        comments = ((data.get("fields") or {}).get("comment") or {}).get("comments") or []
        return any(text.carries(c.get("body") or "", ref) for c in comments)

    def update(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._comment(key, event, since)
        return Outcome(key)

    def escalate(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._comment(key, event, since)
        person = event.get("escalation_owner")
        account = text.identity(person, "jira_account_id")
        if account:
            try:
                self.http.send("PUT", f"{self._issue(key)}/assignee", self._user(account))
                return Outcome(key)
            except RejectedError as e:
                if e.status not in (400, 404):
                    raise
        return Outcome(key, [text.unmapped(self.name, "jira_account_id", person, account,
                                           "escalated without reassigning")])

    def resolve(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._comment(key, event, since)
        if not self._is_done(key):
            self._transition(key)
        return Outcome(key)

    def _is_done(self, key: str) -> bool:
        data = self.http.json("GET", self._issue(key), params={"fields": "status"})
        status = (data.get("fields") or {}).get("status") or {}
        return (status.get("statusCategory") or {}).get("key") == "done"

    def _transition(self, key: str) -> None:
        path = f"{self._issue(key)}/transitions"
        transitions = self.http.json("GET", path).get("transitions") or []
        want = self.resolve_transition.casefold()
        for t in transitions:
            names = {str(t.get("name", "")).casefold(),
                     str((t.get("to") or {}).get("name", "")).casefold()}
            if want in names:
                body: dict[str, Any] = {"transition": {"id": str(t["id"])}}
                if self.resolution:
                    body["fields"] = {"resolution": {"name": self.resolution}}
                self.http.send("POST", path, body)
                return
        available = ", ".join(str(t.get("name")) for t in transitions) or "none"
        raise RejectedError(f"jira: issue {key} has no transition named "
                            f"{self.resolve_transition!r} (available: {available}); "
                            "set extra.resolve_transition")
