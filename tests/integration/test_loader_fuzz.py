"""Fuzz: valid books with damaged lines still load — no abort, no good row lost.

Hypothesis damages the data lines of a small valid company (every contract table): values
PostgreSQL would refuse, bytes that are not UTF-8, NUL bytes, stray quotes and commas, lines
cut, split or repeated. For each damaged set of files the load refuses nothing (the headers
are intact), every row read is either loaded or quarantined, every untouched row is loaded
as written or quarantined for a reason that lies in another row (a missing parent, a
duplicate key, ...), and loading the files again — unchanged, then forced — changes nothing.

CI runs a bounded number of examples; a long run sets REVLEAK_FUZZ_EXAMPLES:

    REVLEAK_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/integration/test_loader_fuzz.py -q
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import date, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revleak import cli, loader
from revleak.tables import TABLES
from tests.books import TS, Books

EXAMPLES = int(os.environ.get("REVLEAK_FUZZ_EXAMPLES", "12"))
# a row may be refused for what another row is: its parent, an earlier row with its key, ...
ELSEWHERE = re.compile(r"^(\w+: no \w+ row with |duplicate key |period overlaps "
                       r"|amount: \S+ has the opposite sign .*only a credit note may mirror)")
NASTY = ["", " ", "1e20", "100000000000000000000", "123456789012345678901234", "-0", "0.1234567",
         "12.34567", "NaN", "Infinity", "2147483648", "-2147483649", "99999-01-01", "2024-02-30",
         "0000-01-01", "2025-01-01T25:00:00+00:00", "2025-01-01T00:00:00", "TRUE", "yes", "usd",
         "ZZZ", "a\x00b", "K" * 2500, "é", "😀", "\\.", "\\N", "NULL", "'; drop table x; --",
         '"', '""', "a\nb", "a\r\nb", ",", "\t", "-5", "101", "C-O1", "O1", "I1", "credit_note",
         "closed_won", "invoice"]


def company() -> dict[str, list[dict]]:
    """A small valid company touching every contract table and column type."""
    b = Books()
    b.contract("O1", "1200.00", "2025-01-01", "2025-12-31", "monthly", currency="EUR")
    b.contract("O2", "3000.00", "2025-01-01", "2025-12-31", "quarterly", auto_renew=True)
    b.contract("O3", "900.00", "2026-01-01", "2026-12-31", "annual", customer_id="C-O2",
               renewal_of="O2")
    b.contract("O4", "", "", "", stage="proposal", customer_id="C-O1")
    b.invoice("I1", "O1", "2025-01-01", "100.00", "20.00")
    b.invoice("I2", "O2", "2025-01-01", "750.00", status="open")
    b.invoice("I3", "O1", "2025-02-01", "-20.00", kind="credit_note")
    b.rows["invoice_lines"].append({"invoice_id": "I2", "line_no": "2", "sku": "SEAT",
                                    "quantity": "2.5", "unit_price": "40.00",
                                    "discount_pct": "10", "promo_code": "WELCOME10",
                                    "amount": "90.00"})
    b.payment("P1", "I1", "120.00", "2025-01-05T10:00:00+00:00", currency="EUR")
    b.payment("P2", None, "50.00", "2025-01-06T10:00:00+00:00", customer_id="C-O2")
    b.fx("EUR", "2025-01-01", "1.0850000000").fx("EUR", "2025-01-02", "1.0900000000")
    more = {
        "inbound_signals": [{"signal_id": "S1", "received_at": TS, "channel": "phone",
                             "intent": "high", "contact_key": "h1", "answered": "true"}],
        "opportunity_events": [{"event_id": "E1", "opportunity_id": "O1", "occurred_at": TS,
                                "event_type": "next_step_set", "next_step_due": TS,
                                "has_note": "false"},
                               {"event_id": "E2", "opportunity_id": "O4", "occurred_at": TS,
                                "event_type": "stage_changed", "stage_to": "proposal"}],
        "bank_transactions": [{"txn_id": "T1", "booked_date": "2025-01-07", "amount": "120.00",
                               "currency": "EUR", "reference": "P1", "counterparty": "Acme"}],
        "gl_entries": [{"entry_id": "G1", "posted_date": "2025-01-31", "account": "revenue",
                        "customer_id": "C-O1", "invoice_id": "I1", "amount": "120.00",
                        "currency": "EUR"}],
        "rate_cards": [{"sku": "SEAT", "currency": "USD", "list_price": "40.00",
                        "effective_from": "2025-01-01", "effective_to": "2025-06-30"},
                       {"sku": "SEAT", "currency": "USD", "list_price": "45.00",
                        "effective_from": "2025-07-01"}],
        "promotions": [{"promo_code": "WELCOME10", "discount_pct": "10",
                        "valid_from": "2025-01-01", "valid_to": "2025-12-31",
                        "stackable": "false"}],
        "discount_approvals": [{"approval_id": "A1", "customer_id": "C-O2", "sku": "SEAT",
                                "max_discount_pct": "20.5", "approved_by": "CFO",
                                "valid_from": "2025-01-01"}],
    }
    b.rows["opportunities"][0]["signal_id"] = "S1"
    for table, rows in more.items():
        b.rows[table].extend(rows)
    return b.rows


def csv_line(fields) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue().encode()


def as_files(rows: dict[str, list[dict]]) -> dict[str, list[list]]:
    """Per table: [header] + [original row index, line bytes, damaged?] per data line."""
    files = {}
    for table, records in rows.items():
        names = TABLES[table].column_names
        files[table] = [csv_line(names)] + [
            [i, csv_line([str(r.get(c, "")) for c in names]), False]
            for i, r in enumerate(records)]
    return files


@st.composite
def damage(draw, files: dict[str, list]) -> dict[str, list]:
    """Apply 1–6 damages to data lines; a damaged line remembers it."""
    for _ in range(draw(st.integers(1, 6))):
        table = draw(st.sampled_from(sorted(files)))
        lines = files[table]
        k = draw(st.integers(1, len(lines) - 1))
        _, line, _ = lines[k]
        kind = draw(st.sampled_from(["value", "value", "bytes", "cut", "repeat", "comma"]))
        if kind == "value":
            fields = next(csv.reader([line.decode(errors="replace")])) or [""]
            value = draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)))
            fields[draw(st.integers(0, len(fields) - 1))] = value
            line = csv_line(fields)
        elif kind == "bytes":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(st.binary(min_size=1, max_size=4)) + line[at:]
        elif kind == "cut":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + line[at + draw(st.integers(1, 12)):]
        elif kind == "comma":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + b"," + line[at:]
        if kind == "repeat":  # the same record twice: the copy is the damaged one
            lines.insert(k + 1, [None, line, True])
        else:
            lines[k] = [lines[k][0], line, True]
    return files


def typed(column, text: str | None):
    """An untouched value as the warehouse stores it (independently of the loader)."""
    if text in (None, ""):
        return column.default
    return {"money": Decimal, "decimal": Decimal, "pct": Decimal, "int": int,
            "date": date.fromisoformat, "ts": datetime.fromisoformat,
            "bool": lambda v: v == "true"}.get(column.type, str)(text)


def reset(conn) -> None:
    conn.execute("truncate revleak.quarantine, revleak.source_loads, revleak.loads, "
                 + ", ".join(f"revleak.{t}" for t in TABLES) + " cascade")
    conn.commit()


def snapshot(conn) -> dict:
    state = {t: sorted(map(repr, conn.execute(f"select * from revleak.{t}").fetchall()))
             for t in TABLES}
    state["quarantine"] = conn.execute("select source_file, line_no, reason, raw"
                                       " from revleak.quarantine order by 1, 2").fetchall()
    return state


def test_the_company_the_fuzz_damages_is_valid(conn, tmp_path):
    files = as_files(company())
    for table, lines in files.items():
        (tmp_path / f"{table}.csv").write_bytes(
            b"\n".join([lines[0], *(line for _, line, _ in lines[1:])]) + b"\n")
    _, results = loader.load(conn, tmp_path)
    assert len(results) == len(TABLES)
    assert all(r.rows and r.loaded == r.rows and not r.error for r in results), results


@settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data(), crlf=st.booleans())
def test_damaged_books_load_every_good_row_and_reload_to_the_same_state(
        conn, warehouse_uri, tmp_path_factory, data, crlf):
    rows = company()
    files = data.draw(damage(as_files(rows)))
    directory = tmp_path_factory.mktemp("books")
    newline = b"\r\n" if crlf else b"\n"
    for table, lines in files.items():
        (directory / f"{table}.csv").write_bytes(
            newline.join([lines[0], *(line for _, line, _ in lines[1:])]) + newline)
    reset(conn)

    _, results = loader.load(conn, directory)
    for r in results:
        assert r.error is None, r.error  # row damage never refuses a file
        assert r.loaded + r.quarantined == r.rows, r
        stored = conn.execute(f"select count(*) from revleak.{r.table}").fetchone()[0]
        bad = conn.execute("select count(*) from revleak.quarantine where table_name = %s",
                           (r.table,)).fetchone()[0]
        assert (stored, bad) == (r.loaded, r.quarantined), r

    for table, lines in files.items():
        spec = TABLES[table]
        quarantine = conn.execute("select raw, reason from revleak.quarantine"
                                  " where table_name = %s", (table,)).fetchall()
        # a stray quote may carry the lines after it into one quoted record
        quoted_from = min((n for n, (_, line, hurt) in enumerate(lines[1:], 1)
                           if hurt and line.count(b'"') % 2), default=len(lines))
        for n, (original, _, hurt) in enumerate(lines[1:], 1):
            if hurt or original is None or n > quoted_from:
                continue
            row = rows[table][original]
            text = {c: (str(row.get(c, "")) or None) for c in spec.column_names}
            key = [typed(c, text[c.name]) for c in spec.columns if c.name in spec.pk]
            where = " and ".join(f"{k} = %s" for k in spec.pk)
            stored = conn.execute(f"select {', '.join(spec.column_names)} from revleak.{table}"
                                  f" where {where}", key).fetchone()
            as_written = tuple(typed(c, text[c.name]) for c in spec.columns)
            if stored == as_written:
                continue
            reasons = [reason for raw, reason in quarantine if raw == text]
            assert reasons and all(ELSEWHERE.match(part) for r in reasons
                                   for part in r.split("; ")), (table, n, row, stored, reasons)

    before = snapshot(conn)
    assert cli.main(["load", str(directory)]) == 0  # delivered again: unchanged, skipped
    _, forced = loader.load(conn, directory, force=True)
    assert [(r.table, r.rows, r.loaded, r.quarantined) for r in forced] == [
        (r.table, r.rows, r.loaded, r.quarantined) for r in results]
    assert all(r.inserted == 0 and r.updated == 0 for r in forced)
    assert snapshot(conn) == before
