"""Were the books delivered? A check refuses to judge (``data_missing``) when a source of
facts it needs is empty, or was last loaded before the end of its as-of date (less the
source's configured ``max_age_days``). Freshness is judged from loads — ``revleak load``
records them in ``revleak.source_loads``; a table another tool fills names its loaded-at
column in configuration — never from business activity: a quiet month is judged normally.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from revleak.config import Config
from revleak.errors import RevleakError
from revleak.registry import CHECKS


def _facts_query(tables: tuple[str, ...], config: Config) -> sql.Composable:
    """One row per source: is it empty, and when was it last loaded."""
    parts = []
    for table in tables:
        column = config.source_of(table).loaded_at_column
        loaded_at = (
            sql.SQL("(select max({c})::timestamptz from revleak.{t})").format(
                c=sql.Identifier(column), t=sql.Identifier(table)) if column else
            sql.SQL("(select loaded_at from revleak.source_loads where table_name = {n})").format(
                n=sql.Literal(table)))
        parts.append(sql.SQL(
            "select {n} as source, not exists (select from revleak.{t}) as empty,"
            " {loaded_at} as loaded_at").format(
            n=sql.Literal(table), t=sql.Identifier(table), loaded_at=loaded_at))
    return sql.SQL(" union all ").join(parts)


def judge(conn: psycopg.Connection, check_id: str, as_of_end: datetime,
          config: Config) -> tuple[str | None, dict[str, Any]]:
    """The problem that stops the run (or None) and the facts it was judged on."""
    try:
        rows = conn.execute(_facts_query(CHECKS[check_id].sources, config)).fetchall()
    except psycopg.errors.UndefinedColumn as e:
        raise RevleakError(
            f"config {config.source}: a sources.<table>.loaded_at_column is not a column of "
            f"its table ({e.diag.message_primary}); fix the name") from None
    facts: dict[str, Any] = {}
    problems = []
    for source, empty, loaded_at in rows:
        max_age = config.source_of(source).max_age_days
        facts[source] = {"empty": empty, "loaded_at": loaded_at.isoformat() if loaded_at else None,
                         "max_age_days": max_age}
        if empty:
            problems.append(f"{source} is empty: load {source}.csv with `revleak load DIR`")
        elif loaded_at is not None and loaded_at < as_of_end - timedelta(days=max_age):
            problems.append(
                f"{source} was last loaded {loaded_at.astimezone(config.tz):%Y-%m-%d %H:%M %Z}, "
                f"before the end of the as-of date{_allowing(max_age)}: load the current "
                f"{source}.csv with `revleak load DIR` (or raise sources.{source}.max_age_days)")
    return ("; ".join(problems) or None), facts


def _allowing(days: int) -> str:
    return f" less {days} day(s)" if days else ""
