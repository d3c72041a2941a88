"""``revleak load DIR``: contract CSV files → canonical tables; bad rows → quarantine.

A load never aborts on a bad value and never loses a good row. Python reads each file as
bytes, checks its header first (a file without its required columns is refused whole), and
streams the records into a staging table with COPY, memory flat: clean blocks pass through
untouched; a line that is not UTF-8, holds a NUL byte, leaves a quote open or has the wrong
number of fields is staged as a bad record with its line number. SQL then gives every row a
reason, set-based: each value PostgreSQL would refuse (types, precision, ranges, identifier
sizes), the row rules, duplicates and references. Good rows upsert (columns the file lacks
keep their stored values), bad rows go to ``revleak.quarantine`` with file, line and reason.
Each file loads in one transaction together with its ``revleak.source_loads`` record; a file
delivered again unchanged (same sha256) is not staged again unless ``force``.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count, repeat
from pathlib import Path

import psycopg
from psycopg import sql

from revleak import assets, audit
from revleak.errors import RevleakError
from revleak.tables import MAX_KEY_BYTES, TABLES, Column, Table

NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"  # [0-9]: faster than \d in PostgreSQL's engine
QUOTE = 200  # characters of a bad value a reason quotes
CHUNK = 1 << 20  # bytes read at a time
MAX_SPAN = 1000  # lines one quoted record may span before its opening quote counts as unbalanced
BLANKS = " \t\r\n"  # trimmed around every value (empty = NULL)
csv.field_size_limit(1 << 24)
log = logging.getLogger(__name__)


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
    unchanged: bool = False  # same bytes as the table's last load: not staged again
    checksum: str | None = None


class Refused(RevleakError):
    """The file as a whole cannot be read as its table (header, delimiter, encoding)."""


# --- the header ------------------------------------------------------------------------------

@dataclass
class Header:
    names: list[str]  # as found, trimmed and lower-cased
    positions: dict[str, int]  # contract column → field position
    missing: list[str]  # optional contract columns the file lacks


def read_header(table: Table, path: Path, line: bytes) -> Header:
    """The file's columns, or Refused naming what is wrong and the header found."""
    text = line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    if not text.strip():
        raise Refused(f"{path}: the file is empty; it needs a header row naming its columns "
                      f"({', '.join(table.column_names)})")
    try:
        decoded = text.decode()
    except UnicodeDecodeError as e:
        raise Refused(f"{path}: the header row is not UTF-8 (byte 0x{text[e.start]:02x} at "
                      f"position {e.start + 1}); re-export the file as UTF-8") from None
    names = [h.strip().lower() for h in next(csv.reader([decoded]))]
    found = _quote_py(decoded.replace("\t", "\\t"))
    seen: set[str] = set()
    duplicated = sorted({n for n in names if n and (n in seen or seen.add(n))})
    if duplicated:
        raise Refused(f"{path}: duplicated column {', '.join(duplicated)}; each column once "
                      f"(header found: {found})")
    missing = [c.name for c in table.columns if c.required and c.name not in names]
    if missing:
        foreign = next((d for d in ("';'", "tab", "'|'") if d.strip("'") in decoded
                        or d == "tab" and "\t" in decoded), None)
        if foreign:
            raise Refused(f"{path}: the file looks {foreign}-delimited; revleak reads "
                          f"comma-separated files, re-export with commas (missing "
                          f"{', '.join(missing)}; header found: {found})")
        unknown = [n for n in names if n not in table.column_names]
        hints = [f"{c} (found {close[0]!r}?)" if (close := difflib.get_close_matches(
            c, unknown, n=1, cutoff=0.75)) else c for c in missing]
        raise Refused(f"{path}: missing required column {', '.join(hints)} "
                      f"(header found: {found})")
    return Header(names, {c: names.index(c) for c in table.column_names if c in names},
                  [c.name for c in table.columns if not c.required and c.name not in names])


def _missing_warning(table: Table, path: Path, missing: list[str]) -> str:
    defaults = [f"{c.name} = {c.default}" for c in table.columns
                if c.name in missing and c.default]
    fill = ", ".join(defaults) or "none"
    if defaults and len(defaults) < len(missing):
        fill += " and none for the rest"
    return (f"{path.name} has no column {', '.join(missing)}: stored values are kept; "
            f"new rows get {fill}")


def _quote_py(value: str) -> str:
    """At most QUOTE characters of a value, for a message."""
    return value if len(value) <= QUOTE else f"{value[:QUOTE]}… ({len(value):,} characters)"


# --- staging: bytes → COPY rows (line, problem, raw, field…) --------------------------------


class Stager:
    """Turns a file's records into CSV rows for COPY: ``line,,,fields`` for a readable record,
    ``line,problem,raw`` plus empty fields for one that is not."""

    def __init__(self, header: Header, result: TableResult,
                 progress: Callable[[str, int], None]):
        self.header, self.width, self.result = header, len(header.names), result
        self.progress = progress

    def rows(self, fh) -> Iterator[bytes]:
        """COPY input for the records after the header; values arrive trimmed, empty = NULL."""
        line, pending, eof = 2, b"", False
        while not eof:
            block = fh.read(CHUNK)
            eof = not block
            data = pending + block
            if not eof:
                cut = data.rfind(b"\n") + 1
                data, pending = data[:cut], data[cut:]
                if not data:
                    continue
            elif not data:
                break
            data = data.replace(b"\r\n", b"\n")
            lines = data.split(b"\n")
            if lines[-1]:  # the last line of the file, without a newline
                lines.append(b"")
            lines.pop()
            out = self._clean(data, lines, line)
            used = len(lines)
            if out is None:
                out, used = self._mixed(lines, line, eof)
                if used < len(lines):  # a quoted record runs on into the next block
                    pending = b"".join(x + b"\n" for x in lines[used:]) + pending
            line += used
            self.progress(self.result.table, self.result.rows)
            yield out

    def _clean(self, data: bytes, lines: list[bytes], line: int) -> bytes | None:
        """The fast path: a block of plain lines passes through untouched (no quote, NUL, CR,
        tab or blank around a value; UTF-8; the header's number of fields)."""
        if any(x in data for x in (b'"', b"\x00", b"\r", b"\t", b" ,", b", ", b" \n", b"\n ")) \
                or data.startswith(b" ") or data.endswith(b" ") or \
                set(map(bytes.count, lines, repeat(b","))) != {self.width - 1}:
            return None
        if not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                return None
        self.result.rows += len(lines)
        return b"".join(b"%d,,,%b\n" % r for r in zip(count(line), lines))

    def _mixed(self, lines: list[bytes], line: int, eof: bool) -> tuple[bytes, int]:
        """Record by record: parse quoted records, stage unreadable lines as bad records."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        i = 0
        while i < len(lines):
            raw, n = lines[i], line + i
            if not raw:
                i += 1
                continue
            problem, text = _readable(raw)
            fields, span = None, 1
            if problem is None and '"' in text:
                fields, span, problem = self._quoted(lines, i, eof)
                if fields is None and problem is None:
                    return out.getvalue().encode(), i  # wait for the next block
            elif problem is None:
                fields = text.split(",")
            if fields is not None:
                fields = [f.strip(BLANKS) for f in fields]
            self.result.rows += 1
            i += span
            if problem is None and len(fields) != self.width:
                problem = f"wrong number of fields: expected {self.width}, got {len(fields)}"
                raw_json = {self.header.names[k] if k < self.width
                            else f"extra_{k - self.width + 1}": v for k, v in enumerate(fields)}
            elif problem is not None:
                raw_json = {"line": raw.decode(errors="backslashreplace").replace("\x00", "\\x00")}
            if problem is None:
                writer.writerow((n, None, None, *fields))
            else:
                writer.writerow((n, problem, json.dumps(raw_json, ensure_ascii=False),
                                 *[None] * self.width))
        return out.getvalue().encode(), len(lines)

    def _quoted(self, lines: list[bytes], i: int, eof: bool
                ) -> tuple[list[str] | None, int, str | None]:
        """(fields, lines used, problem) of the quoted record starting at line i; (None, 0,
        None) when it may continue past the lines read so far."""
        state = {"short": False, "more": False}
        last = min(len(lines), i + MAX_SPAN)

        def feed() -> Iterator[str]:
            for j in range(i, last):
                problem, text = _readable(lines[j])
                if problem:
                    break
                yield text + "\n"
            else:
                state["more"] = last == len(lines) and not eof
            state["short"] = True

        reader = csv.reader(feed())
        try:
            fields = next(reader)
        except csv.Error as e:
            return None, 1, f"malformed CSV: {e}"
        if state["short"]:
            if state["more"]:
                return None, 0, None
            return None, 1, "a quoted field is never closed (unbalanced \")"
        if reader.line_num > 1 and len(fields) != self.width:
            return None, 1, "a quoted field is never closed (unbalanced \")"
        return fields, reader.line_num, None


def _readable(raw: bytes) -> tuple[str | None, str]:
    """(why the line is unreadable or None, its text)."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        return (f"NUL byte at position {nul + 1} of the line (binary data); "
                "re-export the file as text"), ""
    try:
        return None, raw.decode()
    except UnicodeDecodeError as e:
        return (f"not UTF-8: byte 0x{raw[e.start]:02x} at position {e.start + 1} of the line; "
                "re-export the file as UTF-8"), ""


# --- checks: every value PostgreSQL would refuse, the row rules, duplicates, references ------

def _lit(value) -> sql.Literal:
    return sql.Literal(value)


def _v(col: str) -> sql.Composable:
    return sql.SQL("n.{}").format(sql.Identifier(col))


def _quote(v: sql.Composable) -> sql.Composable:
    """At most QUOTE characters of a bad value, for its reason."""
    return sql.SQL("left({v}, {q}) || case when length({v}) > {q} then '… ('"
                   " || to_char(length({v}), 'FM999,999,999,990') || ' characters)' else '' end"
                   ).format(v=v, q=_lit(QUOTE))


def _tests(col: Column) -> list[tuple[sql.Composable, str]]:
    """(condition that makes a present value bad, why), tested in order: each condition may
    rely on the ones before it being false, so no cast in them can fail."""
    v = _v(col.name)
    if col.type in ("money", "decimal", "pct"):
        p, s = col.precision
        what = {"money": "a money amount (decimal string, up to 4 decimals)",
                "decimal": "a decimal number", "pct": "a percentage from 0 to 100"}[col.type]
        tests = [(sql.SQL("{v} !~ {n}"), f"not {what}"),
                 (sql.SQL("case when length({v}) <= {d} then false else"
                          " length(ltrim(split_part(ltrim({v}, '-'), '.', 1), '0')) > {d} end"),
                  f"not {what}" if col.type == "pct" else
                  f"more than {p - s} digits before the decimal point (numeric({p},{s}))"),
                 (sql.SQL("length(split_part({v}, '.', 2)) > {s}"),
                  "money with more than 4 decimals (a float?); not rounded" if col.type == "money"
                  else f"more than {s} decimals; the books keep {s}, a value is never rounded")]
        if col.type == "pct":
            tests.append((sql.SQL("{v}::numeric > 100 or {v}::numeric < 0"), f"not {what}"))
        return [(c.format(v=v, n=_lit(NUMBER), d=_lit(p - s), s=_lit(s)), m) for c, m in tests]
    tests = {
        "date": [(sql.SQL("not revleak.is_date({v})"), "not a date (YYYY-MM-DD)")],
        "ts": [(sql.SQL("not revleak.is_ts({v})"), "not an ISO 8601 timestamp with offset")],
        "int": [(sql.SQL("{v} !~ '^-?[0-9]+$'"), "not a whole number"),
                (sql.SQL("case when length({v}) > 10 and length(ltrim(ltrim({v}, '-'), '0')) > 10"
                         " then true else {v}::bigint not between -2147483648 and 2147483647 end"),
                 "whole number out of range (-2147483648 to 2147483647)")],
        "bool": [(sql.SQL("lower({v}) not in ('true', 'false')"), "not true/false")],
        "ccy": [(sql.SQL("{v} !~ '^[A-Z]{{3}}$'"), "not an ISO 4217 currency code")],
        "enum": [(sql.SQL("{v} <> all({vals})"),
                  f"unknown value; allowed: {', '.join(col.values)}")],
    }.get(col.type, [])
    if col.key:
        tests.append((sql.SQL("octet_length({v}) > {max}"),
                      f"longer than {MAX_KEY_BYTES:,} bytes; an identifier must fit an index"))
    return [(c.format(v=v, vals=_lit(list(col.values)), max=_lit(MAX_KEY_BYTES)), m)
            for c, m in tests]


def _problem(col: Column) -> sql.Composable:
    """Why the row's value of ``col`` is bad (NULL when it is fine)."""
    v = _v(col.name)
    whens = [sql.SQL("when {v} is null then {msg}").format(
        v=v, msg=_lit(f"{col.name}: required value missing"))] if col.required else []
    whens += [sql.SQL("when {cond} then {msg} || {q}").format(
        cond=cond, msg=_lit(f"{col.name}: {why}: "), q=_quote(v)) for cond, why in _tests(col)]
    return sql.SQL("case {} end").format(sql.SQL(" ").join(whens)) if whens else sql.NULL


def _typed(col: Column) -> sql.Composable:
    """The value as its column's type (only for valid values)."""
    v = _v(col.name)
    if col.default is not None:
        return sql.SQL("coalesce({v}, {d})").format(v=v, d=_lit(col.default))
    if col.type == "bool":
        return sql.SQL("lower({v})::boolean").format(v=v)
    cast = {"date": "date", "ts": "timestamptz", "money": "numeric", "decimal": "numeric",
            "int": "integer", "pct": "numeric"}.get(col.type)
    return sql.SQL("{v}::{t}").format(v=v, t=sql.SQL(cast)) if cast else v


def _value_problems(table: Table) -> list[sql.Composable]:
    """Why each value is bad: its type, precision, size, and the row it references."""
    return [_problem(c) for c in table.columns] + [
        sql.SQL("case when {v} is not null and {p}.{k} is null then {msg} || {q} end").format(
            v=_v(col), p=sql.Identifier(f"p_{col}"), k=sql.Identifier(key), q=_quote(_v(col)),
            msg=_lit(f"{col}: no {parent} row with {key} = "))
        for col, (parent, key) in _parents(table)]


def _row_rules(table: Table) -> list[sql.Composable]:
    """Rules across the columns of one row (the contract's 'broken arithmetic' and friends),
    tested once every value is valid, so their casts cannot fail."""
    t = {c.name: _typed(c) for c in table.columns}
    rules = []
    if table.name == "invoice_lines":
        # amount = quantity × unit_price × (1 − discount_pct/100) to the cent, sign included;
        # only a credit note (its invoices row's kind) may mirror it
        formula = "quantity × unit_price × (1 − discount_pct/100) = "
        rules.append(sql.SQL(
            "case when abs({amount} - {e}) < 0.01 then null"
            " when abs({amount} + {e}) < 0.01 and p_invoice_id.kind = 'credit_note' then null"
            " when abs({amount} + {e}) < 0.01 then 'amount: ' || {amount} || {mirrored}"
            "  || round({e}, 2) || ' (only a credit note may mirror it)'"
            " else 'amount: ' || {amount} || {wrong} || round({e}, 2) end").format(
            amount=t["amount"],
            e=sql.SQL("({q} * {p} * (1 - coalesce({d}, 0) / 100))").format(
                q=t["quantity"], p=t["unit_price"], d=t["discount_pct"]),
            mirrored=_lit(f" has the opposite sign of {formula}"),
            wrong=_lit(f" is not {formula}")))
    if table.name == "opportunities":
        rules.append(sql.SQL(
            "case when n.stage = 'closed_won' and (n.amount is null or n.currency is null"
            " or n.contract_start is null or n.contract_end is null"
            " or n.billing_frequency is null) then 'closed_won needs amount, currency,"
            " contract_start, contract_end, billing_frequency' end"))
    periods = {"opportunities": ("contract_start", "contract_end"),
               "rate_cards": ("effective_from", "effective_to"),
               "discount_approvals": ("valid_from", "valid_to"),
               "promotions": ("valid_from", "valid_to")}
    if table.name in periods:
        lo, hi = periods[table.name]
        rules.append(sql.SQL("case when {hi} < {lo} then {msg} end").format(
            hi=t[hi], lo=t[lo], msg=_lit(f"{hi} is before {lo}")))
    if table.name == "fx_rates":
        rules.append(sql.SQL("case when {r} <= 0 then 'rate_to_base: must be above 0: ' || {r}"
                             " end").format(r=t["rate_to_base"]))
    return rules


def _parents(table: Table) -> list[tuple[str, tuple[str, str]]]:
    """References to other tables (self-references are checked after the row checks)."""
    return [(c, ref) for c, ref in table.references.items() if ref[0] != table.name]


# --- the load --------------------------------------------------------------------------------

class Loader:
    """Loads one directory of contract CSV files into the warehouse."""

    def __init__(self, conn: psycopg.Connection,
                 progress: Callable[[str, int], None] | None = None,
                 warn: Callable[[str], None] | None = None, force: bool = False):
        self.conn = conn
        self.progress = progress or (lambda table, rows: None)
        self.warnings: list[str] = []
        self._warn = warn or log.warning
        self.force = force

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self._warn(message)

    def load_dir(self, directory: Path) -> tuple[int, list[TableResult]]:
        directory = Path(directory)
        if not directory.is_dir():
            raise RevleakError(
                f"{directory} is not a directory; pass the folder holding <table>.csv")
        files = {t: directory / f"{t}.csv" for t in TABLES if (directory / f"{t}.csv").is_file()}
        self._misnamed(directory)
        if not files:
            raise RevleakError(
                f"no contract CSV files in {directory}; expected names like customers.csv, "
                "invoices.csv (see CANONICAL_MODEL.md §2)")
        load_id = self.conn.execute(
            "insert into revleak.loads (source) values (%s) returning load_id",
            (str(directory.resolve()),)).fetchone()[0]
        self.conn.commit()
        results: list[TableResult] = []
        try:
            for t, f in files.items():
                results.append(self.load_file(TABLES[t], f, load_id))
        finally:  # the loads record finishes with the counts so far, whatever happened
            if not self.conn.broken:
                self.conn.rollback()
                summary = {r.table: {"rows": r.rows, "loaded": r.loaded,
                                     "quarantined": r.quarantined, "unchanged": r.unchanged,
                                     "error": r.error} for r in results}
                self.conn.execute(
                    "update revleak.loads set finished_at = now(), summary = %s"
                    " where load_id = %s",
                    (psycopg.types.json.Jsonb({**summary, "warnings": self.warnings}), load_id))
                self.conn.commit()
        if untold := assets.tell_airflow(self.conn):  # price tables changed: the change checks
            self.warn(untold)
        return load_id, results

    def _misnamed(self, directory: Path) -> None:
        """A warning for each .csv file that is not named like a contract table."""
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() != ".csv" or path.stem in TABLES or not path.is_file():
                continue
            stem = path.stem.strip().lower()
            close = stem if stem in TABLES else next(
                iter(difflib.get_close_matches(stem, TABLES, n=1, cutoff=0.75)), None)
            if close:
                self.warn(f"{path.name} was not loaded: it looks like {close}.csv; rename it to "
                          f"{close}.csv (names are lower case)")
            else:
                self.warn(f"{path.name} was not loaded: not a contract table "
                          f"({', '.join(TABLES)})")

    def load_file(self, table: Table, path: Path, load_id: int) -> TableResult:
        result = TableResult(table.name, str(path))
        try:
            with open(path, "rb") as fh:
                result.checksum = hashlib.file_digest(fh, "sha256").hexdigest()
            with self.conn.transaction():
                if not self.force and self._unchanged(table, path, load_id, result):
                    return result
                self.conn.execute("set local revleak.loading = 'on'")  # see 0010_loader.sql
                self.conn.execute("set local work_mem = '64MB'")  # hash a file's keys in memory
                header = self._stage(table, path, result)
                self._check(table, header)
                self._quarantine(table, header, path, load_id, result)
                self._upsert(table, header, result)
                self._record(table, path, load_id, result)
                assets.note_change(self.conn, table.name, load_id, result.inserted,
                                   result.updated)
                if result.updated:
                    audit.record(self.conn, "load.rows_replaced", table.name, {
                        "file": str(path.resolve()), "rows_replaced": result.updated,
                        "rows_inserted": result.inserted, "load_id": load_id})
        except RevleakError as e:
            result.error = str(e)
        except OSError as e:
            result.error = f"{path}: cannot read the file ({e.strerror})"
        except psycopg.Error as e:
            if self.conn.broken:
                raise
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            result.error = f"{path}: not loaded, database error: {first}"
        return result

    def _unchanged(self, table: Table, path: Path, load_id: int, result: TableResult) -> bool:
        """Same bytes as the table's last load and nothing it was checked against changed
        since: refresh the load record (the books were delivered again), stage nothing."""
        row = self.conn.execute(
            "select s.rows_read, s.rows_loaded, s.rows_quarantined, s.source_file"
            " from revleak.source_loads s where s.table_name = %s and s.checksum = %s"
            " and s.staged_at is not null and not exists (select from revleak.source_loads p"
            "  where p.table_name = any(%s) and p.changed_at > s.staged_at)",
            (table.name, result.checksum,
             [table.name, *(parent for parent, _ in table.references.values())])).fetchone()
        if row is None:
            return False
        result.rows, result.loaded, result.quarantined, previous = row
        result.unchanged = True
        self.conn.execute(
            "update revleak.source_loads set loaded_at = now(), load_id = %s, source_file = %s"
            " where table_name = %s", (load_id, str(path.resolve()), table.name))
        self.conn.execute("update revleak.quarantine set load_id = %s where source_file = %s",
                          (load_id, previous))
        return True

    def _stage(self, table: Table, path: Path, result: TableResult) -> Header:
        with open(path, "rb") as fh:
            header = read_header(table, path, fh.readline())
            if header.missing:
                self.warn(_missing_warning(table, path, header.missing))
            fields = [sql.Identifier(f"f{i}") for i in range(len(header.names))]
            self.conn.execute(sql.SQL(
                "create temp table stage (_line bigint, _shape text, _raw jsonb, {cols})"
                " on commit drop").format(
                cols=sql.SQL(", ").join(sql.SQL("{} text").format(f) for f in fields)))
            stager = Stager(header, result, self.progress)
            with self.conn.cursor().copy(sql.SQL(
                    "copy stage from stdin (format csv)")) as copy:
                for block in stager.rows(fh):
                    copy.write(block)
        return header

    def _check(self, table: Table, header: Header) -> None:
        """Give every staged row a reason (NULL = good): values, rules, duplicates, keys."""
        values = sql.SQL(", ").join(
            (sql.Identifier(f"f{header.positions[c]}") if c in header.positions
             else sql.SQL("null::text")) + sql.SQL(" as {}").format(sql.Identifier(c))
            for c in table.column_names)
        cols = sql.SQL(", ").join(_v(c) for c in table.column_names)
        pk = [c for c in table.columns if c.name in table.pk]
        joins = sql.SQL(" ").join(
            sql.SQL("left join revleak.{t} {p} on {p}.{k} = n.{c}").format(
                t=sql.Identifier(parent), p=sql.Identifier(f"p_{col}"), k=sql.Identifier(key),
                c=sql.Identifier(col))
            for col, (parent, key) in _parents(table))
        self.conn.execute(sql.SQL(
            "create temp table checked on commit drop as"
            " select n._line, n._raw, {cols}, coalesce(n._shape,"
            "  nullif(concat_ws('; ', {problems}), ''), nullif(concat_ws('; ', {rules}), ''))"
            "  as reason"
            " from (select _line, _shape, _raw, {values} from stage) n {joins}").format(
            cols=cols, values=values, joins=joins,
            problems=sql.SQL(", ").join(_value_problems(table)),
            rules=sql.SQL(", ").join(_row_rules(table) or [sql.NULL])))
        keys = sql.SQL(", ").join(_typed(c) for c in pk)
        self.conn.execute(sql.SQL(
            "update checked n set reason = 'duplicate key (' || {quoted} || ') of line ' || d.first"
            " from (select {named}, min(_line) as first from checked n where reason is null"
            "       group by {keys} having count(*) > 1) d"
            " where n.reason is null and ({keys}) = ({d_keys}) and n._line > d.first").format(
            quoted=sql.SQL(" || ', ' || ").join(_quote(_v(c.name)) for c in pk), keys=keys,
            named=sql.SQL(", ").join(sql.SQL("{} as {}").format(_typed(c), sql.Identifier(c.name))
                                     for c in pk),
            d_keys=sql.SQL(", ").join(sql.SQL("d.{}").format(sql.Identifier(c.name))
                                      for c in pk)))
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
                "update checked n set reason = {msg} || {q}"
                " where n.reason is null and n.{c} is not null"
                " and not exists (select from checked x where x.{k} = n.{c} and x.reason is null)"
                " and not exists (select from revleak.{p} x where x.{k} = n.{c})").format(
                    c=c, k=k, p=sql.Identifier(parent), q=_quote(_v(col)),
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

    def _quarantine(self, table: Table, header: Header, path: Path, load_id: int,
                    result: TableResult) -> None:
        """This file's bad rows replace the ones its earlier loads left."""
        file = str(path.resolve())
        raw = sql.SQL("coalesce(_raw, jsonb_build_object({pairs}))").format(
            pairs=sql.SQL(", ").join(sql.SQL("{}, {}").format(_lit(c), sql.Identifier(c))
                                     for c in table.column_names if c in header.positions))
        self.conn.execute("delete from revleak.quarantine where source_file = %s", (file,))
        result.quarantined = self.conn.execute(sql.SQL(
            "insert into revleak.quarantine"
            " (source_file, line_no, table_name, reason, raw, load_id)"
            " select {file}, _line, {table}, reason, {raw}, {load}"
            " from checked where reason is not null").format(
            file=_lit(file), table=_lit(table.name), raw=raw, load=_lit(load_id))).rowcount
        result.loaded = result.rows - result.quarantined

    def _upsert(self, table: Table, header: Header, result: TableResult) -> None:
        """Good rows insert or update; a column the file lacks keeps its stored value."""
        present = [c for c in table.columns if c.name in header.positions or c.default]
        updated = [c.name for c in present if c.name not in table.pk
                   and c.name in header.positions]
        target = sql.SQL(", ").join(sql.Identifier(c.name) for c in present)
        casts = sql.SQL(", ").join(_typed(c) for c in present)
        sets = sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                                  for c in updated)
        conflict = sql.SQL("do nothing") if not updated else sql.SQL(
            "do update set {sets} where ({old}) is distinct from ({new})").format(
            sets=sets,
            old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in updated),
            new=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c))
                                   for c in updated))
        if not self.conn.execute(sql.SQL("select exists (select from revleak.{})").format(
                sql.Identifier(table.name))).fetchone()[0]:  # a first load: nothing to update
            result.inserted = self.conn.execute(sql.SQL(
                "insert into revleak.{target} ({cols}) select {casts} from checked n"
                " where reason is null").format(target=sql.Identifier(table.name), cols=target,
                                                casts=casts)).rowcount
            return
        result.inserted, result.updated = self.conn.execute(sql.SQL(
            "with up as (insert into revleak.{target} as t ({cols})"
            " select {casts} from checked n where reason is null"
            " on conflict ({pk}) {conflict} returning (xmax = 0) as inserted)"
            " select count(*) filter (where inserted), count(*) filter (where not inserted) from up"
        ).format(target=sql.Identifier(table.name), cols=target, casts=casts,
                 pk=sql.SQL(", ").join(map(sql.Identifier, table.pk)),
                 conflict=conflict)).fetchone()

    def _record(self, table: Table, path: Path, load_id: int, result: TableResult) -> None:
        """The table's load record, in the same transaction as its rows."""
        self.conn.execute(
            "insert into revleak.source_loads as s (table_name, loaded_at, load_id, source_file,"
            " checksum, rows_read, rows_loaded, rows_quarantined, staged_at, changed_at)"
            " values (%(table)s, now(), %(load)s, %(file)s, %(sum)s, %(rows)s, %(loaded)s,"
            "  %(bad)s, now(), case when %(changed)s then now() end)"
            " on conflict (table_name) do update set loaded_at = excluded.loaded_at,"
            "  load_id = excluded.load_id, source_file = excluded.source_file,"
            "  checksum = excluded.checksum, rows_read = excluded.rows_read,"
            "  rows_loaded = excluded.rows_loaded, rows_quarantined = excluded.rows_quarantined,"
            "  staged_at = excluded.staged_at, changed_at = coalesce(excluded.changed_at,"
            "  s.changed_at)",
            {"table": table.name, "load": load_id, "file": str(path.resolve()),
             "sum": result.checksum, "rows": result.rows, "loaded": result.loaded,
             "bad": result.quarantined, "changed": bool(result.inserted or result.updated)})


def format_summary(results: list[TableResult]) -> str:
    lines = [f"{'table':<20} {'rows':>10} {'loaded':>10} {'new':>10} {'changed':>10} "
             f"{'quarantined':>12}"]
    for r in results:
        if r.error:
            lines.append(f"{r.table:<20} {'refused (see the error below)':>56}")
            continue
        lines.append(f"{r.table:<20} {r.rows:>10,} {r.loaded:>10,} {r.inserted:>10,} "
                     f"{r.updated:>10,} {r.quarantined:>12,}" + ("  unchanged" if r.unchanged
                                                                  else ""))
    return "\n".join(lines)


def load(conn: psycopg.Connection, directory: Path, progress=None, warn=None,
         force: bool = False) -> tuple[int, list[TableResult]]:
    """Load every contract CSV in ``directory``; returns the load id and per-table results.
    ``warn`` receives one line per warning (default: the log); ``force`` stages unchanged
    files again."""
    return Loader(conn, progress, warn, force).load_dir(directory)
