"""Ticket text, rendered once from ``templates/ticket_body.md.j2``: markdown for GitHub and the
webhook, plain ``label: value`` lines for Jira (as ADF) and ServiceNow. Every body carries the
event's marker (``revleak-event-<ref>``), so a retry can see what an earlier attempt wrote.
With the connection's ``extra.redact`` the event is rendered from ``redacted(payload)``."""

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
WITHHELD = "withheld"
_body.globals["withheld"] = WITHHELD
MONEY = ("expected_amount", "actual_amount", "gap_amount", "gap_amount_base",
         "time_weighted_loss")
AGGREGATES = ("zone", "portfolio")  # entities that name no customer
ZONE_EVIDENCE = ("value_pct", "limit_pct", "problems", "population", "rule")


def marker(ref: str) -> str:
    """The token every ticket and comment of one event carries."""
    return f"revleak-event-{ref}"


def render(payload: dict[str, Any], idempotency_key: str, redact: bool = False
           ) -> dict[str, Any]:
    """The event as sent: its payload (``redact``-ed when asked), its idempotency key, its
    marker ``ref`` and the body a person reads."""
    if redact:
        payload = redacted(payload)
    ref = idempotency_key[:REF_CHARS]
    return {**payload, "idempotency_key": idempotency_key, "ref": ref,
            "body": _body.render(**payload, marker=marker(ref)).strip()}


def redacted(payload: dict[str, Any]) -> dict[str, Any]:
    """The event for a ticket system that must not hold customers or money: no customer id, no
    entity id that may name one (a funnel zone and the portfolio keep theirs), every amount
    null (``MONEY``; a gap's share of expected too — a zone keeps its rate, which is no money),
    no evidence but a zone's rate, counts, rule, trend and leak-state counts, and a title
    without figures. Fingerprint, check, category, owners, deadline, priority and the report
    link stay: the body sends the reader to the report."""
    zone = payload.get("entity_type") == "zone"
    shown = payload.get("entity_type") in AGGREGATES
    evidence = payload.get("evidence") if zone and isinstance(payload.get("evidence"), dict) \
        else {}
    kept: dict[str, Any] = {k: evidence[k] for k in ZONE_EVIDENCE if k in evidence}
    if isinstance(evidence.get("trend"), dict):
        kept["trend"] = {"sentence": evidence["trend"].get("sentence")}
    if isinstance(evidence.get("states"), dict):
        kept["states"] = {state: {"count": s.get("count")}
                          for state, s in evidence["states"].items() if isinstance(s, dict)}
    entity = payload.get("entity_id") if shown else WITHHELD
    named = entity if shown else f"finding {str(payload.get('fingerprint'))[:12]}"
    return {**payload, **dict.fromkeys(MONEY), "customer_id": None, "entity_id": entity,
            "gap_pct": payload.get("gap_pct") if zone else None, "evidence": kept,
            "title": f"[revleak] {payload.get('category')}: {payload.get('entity_type')} "
                     f"{named}", "redacted": True}


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
