"""``revleak load DIR``: contract CSV files → canonical tables; bad rows → quarantine.

Python only streams each file into a staging table with COPY (memory stays flat); the
validation, duplicate and key checks, quarantine and the upsert are set-based SQL.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from revleak.errors import RevleakError
from revleak.tables import TABLES, Column, Table

MONEY = r"^-?\d+(\.\d{1,4})?$"
DECIMAL = r"^-?\d+(\.\d+)?$"
csv.field_size_limit(1 << 24)


@dataclass
class TableResult:
    table: str
    file: str
    rows: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0
    error: str | None = None


def _lit(value: str) -> sql.Literal:
    return sql.Literal(value)


def _problem(col: Column) -> sql.Composable:
    """SQL giving why a staged value is bad (NULL when it is fine)."""
    v = sql.SQL("s.{}").format(sql.Identifier(col.name))
    d, m = _lit(DECIMAL), _lit(MONEY)
    tests = {
        "date": [(sql.SQL("not revleak.is_date({v})"), "not a date (YYYY-MM-DD)")],
        "ts": [(sql.SQL("not revleak.is_ts({v})"), "not an ISO 8601 timestamp with offset")],
        "money": [(sql.SQL("{v} ~ '^-?\\d+\\.\\d{{5,}}$'"),
                   "money with more than 4 decimals (a float?)"),
                  (sql.SQL("{v} !~ {m}"), "not a money amount (decimal string, up to 4 decimals)")],
        "decimal": [(sql.SQL("{v} !~ {d}"), "not a decimal number")],
        "int": [(sql.SQL("{v} !~ '^-?\\d{{1,9}}$'"), "not a whole number")],
        "pct": [(sql.SQL("{v} !~ {d} or {v}::numeric not between 0 and 100"),
                 "not a percentage from 0 to 100")],
        "bool": [(sql.SQL("lower({v}) not in ('true', 'false')"), "not true/false")],
        "ccy": [(sql.SQL("{v} !~ '^[A-Z]{{3}}$'"), "not an ISO 4217 currency code")],
        "enum": [(sql.SQL("{v} <> all({vals})"),
                  f"unknown value; allowed: {', '.join(col.values)}")],
    }.get(col.type, [])
    whens = [sql.SQL("when {v} is null then {msg}").format(
        v=v, msg=_lit(f"{col.name}: required value missing"))] if col.required else []
    whens += [sql.SQL("when {cond} then {msg} || {v}").format(
        cond=cond.format(v=v, d=d, m=m, vals=_lit(list(col.values))),
        msg=_lit(f"{col.name}: {msg}: "), v=v) for cond, msg in tests]
    if not whens:
        return sql.NULL
    return sql.SQL("case {} end").format(sql.SQL(" ").join(whens))


def _cast(col: Column) -> sql.Composable:
    v = sql.Identifier(col.name)
    cast = {"date": "date", "ts": "timestamptz", "money": "numeric", "decimal": "numeric",
            "int": "integer", "pct": "numeric", "bool": "boolean"}.get(col.type)
    if col.type == "bool":
        return sql.SQL("lower({v})::boolean").format(v=v)
    return sql.SQL("{v}::{t}").format(v=v, t=sql.SQL(cast)) if cast else v


def _row_rules(table: Table) -> list[sql.Composable]:
    """Rules across columns of one row (the contract's 'broken arithmetic' and friends)."""
    rules = [_problem(c) for c in table.columns]
    if table.name == "invoice_lines":  # amount = quantity × unit_price × (1 − discount/100)
        expected = ("s.quantity::numeric * s.unit_price::numeric"
                    " * (1 - coalesce(s.discount_pct, '0')::numeric / 100)")
        rules.append(sql.SQL(
            "case when s.quantity ~ {d} and s.unit_price ~ {m} and s.amount ~ {m}"
            " and coalesce(s.discount_pct, '0') ~ {d}"
            " and abs(s.amount::numeric - {e}) >= 0.01"
            " and not (s.amount::numeric < 0 and abs(s.amount::numeric + {e}) < 0.01)"
            " then 'amount: ' || s.amount"
            " || ' is not quantity × unit_price × (1 − discount_pct/100) = '"
            " || round({e}, 2) end"
        ).format(d=_lit(DECIMAL), m=_lit(MONEY), e=sql.SQL(expected)))
    if table.name == "opportunities":
        rules.append(sql.SQL(
            "case when s.stage = 'closed_won' and (s.amount is null or s.currency is null"
            " or s.contract_start is null or s.contract_end is null or s.billing_frequency is null)"
            " then 'closed_won needs amount, currency, contract_start, contract_end,"
            " billing_frequency' end"))
        rules.append(sql.SQL(
            "case when revleak.is_date(s.contract_start) and revleak.is_date(s.contract_end)"
            " and s.contract_end::date < s.contract_start::date"
            " then 'contract_end is before contract_start' end"))
    if table.name in ("rate_cards", "discount_approvals", "promotions"):
        lo, hi = {"rate_cards": ("effective_from", "effective_to")}.get(
            table.name, ("valid_from", "valid_to"))
        rules.append(sql.SQL(
            "case when revleak.is_date(s.{lo}) and revleak.is_date(s.{hi})"
            " and s.{hi}::date < s.{lo}::date then {msg} end").format(
            lo=sql.Identifier(lo), hi=sql.Identifier(hi), msg=_lit(f"{hi} is before {lo}")))
    for n, (col, (parent, key)) in enumerate(_parents(table)):
        rules.append(sql.SQL(
            "case when s.{c} is not null and {p}.{k} is null then {msg} || s.{c} end").format(
            c=sql.Identifier(col), p=sql.Identifier(f"p{n}"), k=sql.Identifier(key),
            msg=_lit(f"{col}: no {parent} row with {key} = ")))
    return rules


def _parents(table: Table) -> list[tuple[str, tuple[str, str]]]:
    """References to other tables (self-references are checked after the row checks)."""
    return [(c, ref) for c, ref in table.references.items() if ref[0] != table.name]


def _parent_joins(table: Table) -> sql.Composable:
    """Join each referenced table once, so the planner can hash-join instead of probing."""
    return sql.SQL(" ").join(
        sql.SQL("left join revleak.{t} {p} on {p}.{k} = s.{c}").format(
            t=sql.Identifier(parent), p=sql.Identifier(f"p{n}"), k=sql.Identifier(key),
            c=sql.Identifier(col))
        for n, (col, (parent, key)) in enumerate(_parents(table)))


class Loader:
    """Loads one directory of contract CSV files into the warehouse."""

    def __init__(self, conn: psycopg.Connection,
                 progress: Callable[[str, int], None] | None = None):
        self.conn = conn
        self.progress = progress or (lambda table, rows: None)

    def load_dir(self, directory: Path) -> tuple[int, list[TableResult]]:
        directory = Path(directory)
        if not directory.is_dir():
            raise RevleakError(
                f"{directory} is not a directory; pass the folder holding <table>.csv")
        files = {t: directory / f"{t}.csv" for t in TABLES if (directory / f"{t}.csv").is_file()}
        if not files:
            raise RevleakError(
                f"no contract CSV files in {directory}; expected names like customers.csv, "
                "invoices.csv (see CANONICAL_MODEL.md §2)")
        load_id = self.conn.execute(
            "insert into revleak.loads (source) values (%s) returning load_id",
            (str(directory.resolve()),)).fetchone()[0]
        self.conn.commit()
        results = [self.load_file(TABLES[t], f, load_id) for t, f in files.items()]
        self.conn.execute(
            "update revleak.loads set finished_at = now(), summary = %s where load_id = %s",
            (psycopg.types.json.Jsonb({r.table: {"loaded": r.loaded, "quarantined": r.quarantined,
                                                 "error": r.error} for r in results}), load_id))
        self.conn.commit()
        return load_id, results

    def load_file(self, table: Table, path: Path, load_id: int) -> TableResult:
        result = TableResult(table.name, str(path))
        try:
            with self.conn.transaction():
                self._stage(table, path, result)
                self._check(table)
                self._quarantine(table, path, load_id, result)
                self._upsert(table, result)
        except RevleakError as e:
            result.error = str(e)
        return result

    def _stage(self, table: Table, path: Path, result: TableResult) -> None:
        cols = table.column_names
        self.conn.execute(sql.SQL(
            "create temp table stage (_line bigint, _shape text, _raw jsonb, {cols}) on commit drop"
        ).format(cols=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c))
                                          for c in cols)))
        copy_sql = sql.SQL("copy stage (_line, _shape, _raw, {cols}) from stdin").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, cols)))
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh, \
                    self.conn.cursor().copy(copy_sql) as copy:
                reader = csv.reader(fh)
                header = next(reader, None)
                if not header:
                    raise RevleakError(f"{path}: the file is empty; it needs a header row")
                header = [h.strip().lower() for h in header]
                positions = [header.index(c) if c in header else None for c in cols]
                width, line = len(header), reader.line_num
                for record in reader:
                    start, line = line + 1, reader.line_num
                    if not record:
                        continue
                    result.rows += 1
                    if len(record) != width:
                        shape = f"wrong number of fields: expected {width}, got {len(record)}"
                        copy.write_row((start, shape, _raw(header, record, width),
                                        *[None] * len(cols)))
                        continue
                    values = [record[i].strip() or None if i is not None else None
                              for i in positions]
                    copy.write_row((start, None, None, *values))
                    if result.rows % 100_000 == 0:
                        self.progress(table.name, result.rows)
        except UnicodeDecodeError as e:
            raise RevleakError(f"{path}: not UTF-8 text near byte {e.start}; "
                               "re-export the file as UTF-8") from None
        except csv.Error as e:
            raise RevleakError(f"{path} line {reader.line_num}: malformed CSV ({e}); "
                               "fix the quoting on that line") from None
        self.progress(table.name, result.rows)
        self.conn.execute("analyze stage")

    def _check(self, table: Table) -> None:
        """Give every staged row a reason (NULL = good): types, rules, duplicates, keys."""
        rules = sql.SQL(", ").join(_row_rules(table))
        self.conn.execute(sql.SQL(
            "create temp table checked on commit drop as"
            " select s.*, coalesce(s._shape, nullif(concat_ws('; ', {rules}), '')) as reason"
            " from stage s {joins}").format(rules=rules, joins=_parent_joins(table)))
        pk = sql.SQL(", ").join(map(sql.Identifier, table.pk))
        self.conn.execute(sql.SQL(
            "update checked c set reason = 'duplicate key (' || {keys} || ') of line ' || d.first"
            " from (select _line, first_value(_line) over w as first,"
            "        row_number() over w as n"
            "       from checked where reason is null window w as (partition by {pk}"
            "       order by _line)) d"
            " where c._line = d._line and d.n > 1").format(
            pk=pk, keys=sql.SQL(" || ', ' || ").join(
                sql.SQL("c.{}").format(sql.Identifier(k)) for k in table.pk)))
        self._self_references(table)
        if table.name == "rate_cards":
            self._rate_overlaps()

    def _self_references(self, table: Table) -> None:
        """A row may point at a row of the same file; it is bad if that row is missing or bad."""
        for col, (parent, key) in table.references.items():
            if parent != table.name:
                continue
            c, k = sql.Identifier(col), sql.Identifier(key)
            while self.conn.execute(sql.SQL(
                "update checked c set reason = {msg} || c.{c}"
                " where c.reason is null and c.{c} is not null"
                " and not exists (select from checked x where x.{k} = c.{c} and x.reason is null)"
                " and not exists (select from revleak.{p} x where x.{k} = c.{c})").format(
                    c=c, k=k, p=sql.Identifier(parent),
                    msg=_lit(f"{col}: no {parent} row with {key} = "))).rowcount:
                pass

    def _rate_overlaps(self) -> None:
        """Periods of one sku and currency never overlap (existing rows count too)."""
        self.conn.execute(
            "update checked c set reason = 'period overlaps the rate card period from '"
            "  || o.effective_from"
            " from (select sku, currency, effective_from::date as effective_from,"
            "        effective_to::date as effective_to, _line from checked where reason is null"
            "       union all select sku, currency, effective_from, effective_to, null"
            "       from revleak.rate_cards) o"
            " where c.reason is null and o.sku = c.sku and o.currency = c.currency"
            " and o.effective_from <> c.effective_from::date"
            " and daterange(o.effective_from, o.effective_to, '[]')"
            "  && daterange(c.effective_from::date, c.effective_to::date, '[]')"
            " and (o._line is null or o.effective_from < c.effective_from::date)")

    def _quarantine(self, table: Table, path: Path, load_id: int, result: TableResult) -> None:
        raw = sql.SQL("coalesce(_raw, jsonb_build_object({pairs}))").format(
            pairs=sql.SQL(", ").join(sql.SQL("{}, {}").format(_lit(c), sql.Identifier(c))
                                     for c in table.column_names))
        cur = self.conn.execute(sql.SQL(
            "insert into revleak.quarantine"
            " (source_file, line_no, table_name, reason, raw, load_id)"
            " select {file}, _line, {table}, reason, {raw}, {load}"
            " from checked where reason is not null"
            " on conflict (source_file, line_no) do update set table_name = excluded.table_name,"
            "  reason = excluded.reason, raw = excluded.raw, load_id = excluded.load_id,"
            "  quarantined_at = now()").format(
            file=_lit(str(path.resolve())), table=_lit(table.name), raw=raw, load=_lit(load_id)))
        result.quarantined = cur.rowcount

    def _upsert(self, table: Table, result: TableResult) -> None:
        cols = table.column_names
        non_key = [c for c in cols if c not in table.pk]
        ident = sql.SQL(", ").join(map(sql.Identifier, cols))
        rendered = {
            "cols": ident,
            "casts": sql.SQL(", ").join(_cast(c) for c in table.columns),
            "target": sql.Identifier(table.name),
            "pk": sql.SQL(", ").join(map(sql.Identifier, table.pk)),
            "sets": sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                                       for c in non_key),
            "old": sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in non_key),
            "new": sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c))
                                      for c in non_key),
        }
        if table.name == "invoices":  # kind defaults to invoice
            rendered["casts"] = sql.SQL(", ").join(
                sql.SQL("coalesce(kind, 'invoice')") if c.name == "kind" else _cast(c)
                for c in table.columns)
        inserted, updated = self.conn.execute(sql.SQL(
            "with up as (insert into revleak.{target} as t ({cols})"
            " select {casts} from checked where reason is null order by _line"
            " on conflict ({pk}) do update set {sets}"
            " where ({old}) is distinct from ({new})"
            " returning (xmax = 0) as inserted)"
            " select count(*) filter (where inserted), count(*) filter (where not inserted) from up"
        ).format(**rendered)).fetchone()
        result.inserted, result.updated = inserted, updated
        result.loaded = result.rows - result.quarantined


def _raw(header: list[str], record: list[str], width: int) -> psycopg.types.json.Jsonb:
    """Keep a misshapen row whole: named fields, plus the extras by position."""
    raw = {header[i] if i < width else f"extra_{i - width + 1}": v for i, v in enumerate(record)}
    return psycopg.types.json.Jsonb(raw)


def format_summary(results: list[TableResult]) -> str:
    lines = [f"{'table':<20} {'rows':>10} {'loaded':>10} {'new':>10} {'changed':>10} "
             f"{'quarantined':>12}"]
    for r in results:
        if r.error:
            lines.append(f"{r.table:<20} ERROR {r.error}")
            continue
        lines.append(f"{r.table:<20} {r.rows:>10,} {r.loaded:>10,} {r.inserted:>10,} "
                     f"{r.updated:>10,} {r.quarantined:>12,}")
    return "\n".join(lines)


def load(conn: psycopg.Connection, directory: Path, progress=None) -> tuple[int, list[TableResult]]:
    """Load every contract CSV in ``directory``; returns the load id and per-table results."""
    return Loader(conn, progress).load_dir(directory)
