"""The transactional outbox: ticket events written with the findings that cause them."""

from __future__ import annotations

from functools import cache

from revleak.config import PROJECT_ROOT


@cache
def events_sql() -> str:
    """sql/tickets/events.sql: the events a check's current findings call for."""
    text = (PROJECT_ROOT / "sql" / "tickets" / "events.sql").read_text(encoding="utf-8")
    return text.split("-- name: events", 1)[1].strip()
