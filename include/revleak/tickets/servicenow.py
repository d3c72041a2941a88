"""ServiceNow Table API; the ticket key is the record's sys_id.

extra: table ("incident"), resolved_state ("6"), close_code ("Solved (Permanently)"),
assignment_group (optional, sys_id or name).

The assignee is the sys_user whose sys_id, user_name or email is the owner's
``servicenow_user`` (else ``account_id``, else email), looked up once per run. Records carry
the fingerprint as correlation_id; updates and escalations are work notes. Escalation
reassigns the record to the escalation owner with a work note. Every lookup here is a table
query, consistent the moment a write returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from revleak.tickets import text
from revleak.tickets.base import Destination, Outcome
from revleak.tickets.transport import Transport, basic_auth

# (urgency, impact): the default lookup gives priority 1 Critical .. 4 Low.
URGENCY_IMPACT = {"highest": ("1", "1"), "high": ("1", "2"), "medium": ("2", "2"),
                  "low": ("3", "2")}
TABLE = "/api/now/table"


def _q(value: str) -> str:
    """A value inside an encoded query (``^`` is the separator; ``^^`` a literal caret)."""
    return str(value).replace("^", "^^")


class ServiceNowProvider:
    name = "servicenow"
    consistent_find = True

    def __init__(self, dest: Destination, pacer: Callable[[], None] | None = None):
        extra = dest.extra
        self.table = str(extra.get("table") or "incident")
        self.resolved_state = str(extra.get("resolved_state") or "6")
        self.close_code = str(extra.get("close_code") or "Solved (Permanently)")
        self.assignment_group = extra.get("assignment_group")
        self.path = f"{TABLE}/{quote(self.table, safe='')}"
        self.http = Transport(dest, self.name, auth=basic_auth(dest, "servicenow"), pacer=pacer)
        self._users: dict[str, str | None] = {}

    def close(self) -> None:
        self.http.close()

    def preflight(self) -> None:
        """Nothing to check before delivering."""

    def _query(self, table: str, query: str, fields: str) -> list[dict[str, Any]]:
        data = self.http.json("GET", f"{TABLE}/{quote(table, safe='')}", params={
            "sysparm_query": query, "sysparm_fields": fields, "sysparm_limit": 1})
        return data.get("result") or []

    def _user(self, person: Any) -> tuple[str | None, str | None]:
        """(the identity tried, its sys_user sys_id or None)."""
        p = person if isinstance(person, dict) else {}
        tried = text.identity(p, "servicenow_user") or p.get("email")
        if not tried:
            return None, None
        if tried not in self._users:
            who = _q(tried)
            rows = self._query("sys_user", f"sys_id={who}^ORuser_name={who}^ORemail={who}",
                               "sys_id")
            self._users[tried] = rows[0]["sys_id"] if rows else None
        return tried, self._users[tried]

    def find(self, event: dict[str, Any], since: datetime) -> str | None:
        """The record whose correlation_id is the fingerprint and whose description carries
        the event's marker."""
        rows = self._query(self.table, f"correlation_id={_q(event['fingerprint'])}"
                                       f"^descriptionLIKE{text.marker(event['ref'])}", "sys_id")
        return rows[0]["sys_id"] if rows else None

    def open(self, event: dict[str, Any]) -> Outcome:
        record: dict[str, Any] = {
            "short_description": text.title(event)[:160],
            "description": "\n".join(text.plain(event["body"])),
            "correlation_id": event["fingerprint"],
            "correlation_display": "revleak",
        }
        notices = []
        tried, user = self._user(event.get("owner"))
        if user:
            record["assigned_to"] = user
        else:
            notices.append(text.unmapped(self.name, "servicenow_user", event.get("owner"), tried,
                                         "record created unassigned"))
        if self.assignment_group:
            record["assignment_group"] = self.assignment_group
        if due := text.day(event.get("due_date")):
            record["due_date"] = f"{due} 23:59:59"
        if pair := URGENCY_IMPACT.get(str(event.get("priority") or "").lower()):
            record["urgency"], record["impact"] = pair
        data = self.http.json("POST", self.path, record)
        return Outcome(str(data["result"]["sys_id"]), notices)

    def _noted(self, key: str, ref: str) -> bool:
        """Whether a work note carrying the event's marker is already on the record."""
        return bool(self._query("sys_journal_field", f"element_id={_q(key)}^element=work_notes"
                                                     f"^valueLIKE{text.marker(ref)}", "sys_id"))

    def _patch(self, key: str, fields: dict[str, Any]) -> None:
        if fields:
            self.http.send("PATCH", f"{self.path}/{quote(key, safe='')}", fields)

    def _work_note(self, key: str, event: dict[str, Any], since: datetime | None
                   ) -> dict[str, str]:
        if since is not None and self._noted(key, event["ref"]):
            return {}
        return {"work_notes": "\n".join(text.plain(event["body"]))}

    def update(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        self._patch(key, self._work_note(key, event, since))
        return Outcome(key)

    def escalate(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        fields = self._work_note(key, event, since)
        tried, user = self._user(event.get("escalation_owner"))
        notices = []
        if user:
            fields["assigned_to"] = user
        else:
            notices.append(text.unmapped(self.name, "servicenow_user",
                                         event.get("escalation_owner"), tried,
                                         "escalated without reassigning"))
        self._patch(key, fields)
        return Outcome(key, notices)

    def resolve(self, key: str, event: dict[str, Any], since: datetime | None) -> Outcome:
        """Resolution notes and state in one PATCH: repeating it changes nothing."""
        self._patch(key, {"state": self.resolved_state, "close_code": self.close_code,
                          "close_notes": "\n".join(text.plain(event["body"]))})
        return Outcome(key)
