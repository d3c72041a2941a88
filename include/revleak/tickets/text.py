"""Ticket text, rendered once from ``templates/ticket_body.md.j2``: markdown for GitHub and the
webhook, plain ``label: value`` lines for Jira (as ADF) and ServiceNow. Every body carries the
event's marker (``revleak-event-<ref>``), so a retry can see what an earlier attempt wrote."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import jinja2

_body = jinja2.Environment(
    loader=jinja2.PackageLoader("revleak", "templates"), autoescape=False,
    undefined=jinja2.ChainableUndefined, trim_blocks=False,
).get_template("ticket_body.md.j2")
REF_CHARS = 20  # of the event's idempotency key: unique per fingerprint, generation and action


def marker(ref: str) -> str:
    """The token every ticket and comment of one event carries."""
    return f"revleak-event-{ref}"


def render(payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The event as sent: its payload, its idempotency key, its marker ``ref`` and the body a
    person reads."""
    ref = idempotency_key[:REF_CHARS]
    return {**payload, "idempotency_key": idempotency_key, "ref": ref,
            "body": _body.render(**payload, marker=marker(ref)).strip()}


def carries(value: Any, ref: str) -> bool:
    """Whether a ticket or comment (text, ADF or any JSON) carries the event's marker."""
    text = value if isinstance(value, str) else json.dumps(value)
    return marker(ref) in text


def plain(markdown: str) -> list[str]:
    """The markdown body as plain lines: table rows become ``label: value``, no ** or `."""
    lines = []
    for line in markdown.splitlines():
        line = line.strip()
        if re.fullmatch(r"\|[\s|:-]*\|", line):  # separator or empty header row
            continue
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            line = f"{cells[0]}: {' | '.join(cells[1:])}" if len(cells) > 1 else cells[0]
        lines.append(line.replace("**", "").replace("`", ""))
    return lines


def adf(lines: Iterable[str]) -> dict[str, Any]:
    """An Atlassian Document Format doc: one paragraph per non-blank line."""
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in lines if line.strip()]}


def title(event: dict[str, Any]) -> str:
    return " ".join(str(event["title"]).split())


def day(value: Any) -> str | None:
    """YYYY-MM-DD from a date, datetime or ISO string; None when absent or unparseable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return None


def labels(*values: Any) -> list[str]:
    """Distinct non-empty labels without whitespace (Jira and GitHub refuse spaces / blanks)."""
    out: list[str] = []
    for value in values:
        text = re.sub(r"\s+", "_", str(value or "").strip())
        if text and text not in out:
            out.append(text)
    return out


def identity(person: Any, system_key: str) -> str | None:
    """The person's id in one ticket system (``jira_account_id``, ``github_login``,
    ``servicenow_user``), else the generic ``account_id``."""
    p = person if isinstance(person, dict) else {}
    value = p.get(system_key) or p.get("account_id")
    return str(value) if value else None


def who(person: Any) -> str:
    """``Name <email>`` for an owner, for notices."""
    p = person if isinstance(person, dict) else {}
    name = str(p.get("name") or p.get("email") or "the owner")
    return f"{name} <{p['email']}>" if p.get("email") and p["email"] != name else name


def unmapped(system: str, key: str, person: Any, tried: str | None, consequence: str) -> str:
    """The notice for an owner the ticket system cannot assign: what to set, and what
    happened instead."""
    refused = f" refused {tried!r} for" if tried else " has no user for"
    return (f"{system}{refused} {who(person)}: set {key} on this owner in config routing "
            f"({consequence})")
