"""The loader on a real PostgreSQL: every bad-row kind is quarantined with its line and
reason, every good row lands, a bad header refuses only its file, and loading the same files
again changes nothing."""

from __future__ import annotations

import csv
import hashlib
import textwrap
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revleak import cli, loader, warehouse
from revleak.tables import TABLES

HEADERS = {
    "customers": "customer_id,name,segment,region,currency,created_at",
    "invoices": "invoice_id,customer_id,opportunity_id,issue_date,due_date,currency,status,"
                "period_start,period_end,kind",
    "invoice_lines": "invoice_id,line_no,sku,quantity,unit_price,discount_pct,promo_code,amount",
    "opportunities": "opportunity_id,customer_id,signal_id,created_at,channel,intent,team,owner,"
                     "stage,amount,currency,expected_close_date,closed_at,close_reason,"
                     "contract_start,contract_end,billing_frequency,auto_renew,renewal_of,source",
}
TS = "2025-01-01T00:00:00+00:00"


def write(directory, table, rows):
    body = "\n".join([HEADERS[table], *(textwrap.dedent(r).strip() for r in rows)]) + "\n"
    (directory / f"{table}.csv").write_text(body, encoding="utf-8")


@pytest.fixture
def books(tmp_path):
    write(tmp_path, "customers", [
        f"C1,Acme,smb,EU,EUR,{TS}",                         # line 2: good
        f"C2,Beta,giant,EU,EUR,{TS}",                       # line 3: unknown enum
        f"C1,Acme again,smb,EU,EUR,{TS}",                   # line 4: duplicate key
        "C3,Gamma,mid,US,USD,2025-02-30T00:00:00+00:00",   # line 5: wrong type (no such day)
        f",Nameless,mid,US,USD,{TS}",                       # line 6: missing required value
        f"C4,Delta,enterprise,US,USD,{TS}",                 # line 7: good
        f"C5,Extra,mid,US,USD,{TS},surplus",                # line 8: too many fields
        "C6,Offsetless,mid,US,USD,2025-01-01T00:00:00",    # line 9: timestamp without offset
    ])
    write(tmp_path, "opportunities", [
        f"O1,C1,,{TS},phone,high,,,closed_won,1200,EUR,,{TS},won,2025-01-01,2025-12-31,"
        "monthly,false,,",                                  # line 2: good
        f"O2,C4,,{TS},phone,high,,,closed_won,,USD,,{TS},won,2025-01-01,2025-12-31,"
        "monthly,false,,",                                  # line 3: closed_won without amount
        f"O3,C1,,{TS},phone,high,,,proposal,,,,,,,,,,O1,",  # line 4: good, renews O1
        f"O4,C1,,{TS},phone,high,,,proposal,,,,,,,,,,O9,",  # line 5: dangling renewal_of
        f"O5,C1,,{TS},fax,high,,,new,,,,,,,,,,,",           # line 6: unknown channel
    ])
    write(tmp_path, "invoices", [
        "I1,C1,O1,2025-01-01,2025-01-31,EUR,open,,,",      # line 2: good (kind defaults)
        "I2,C9,,2025-01-01,2025-01-31,EUR,open,,,",        # line 3: dangling customer
        "I3,C4,,2025-01-01,2025-01-31,USD,paid,,,credit_note",  # line 4: good credit note
    ])
    write(tmp_path, "invoice_lines", [
        "I1,1,SKU,2,100.00,10,,180.00",                     # line 2: good
        "I1,2,SKU,2,100.00,10,,170.00",                     # line 3: broken arithmetic
        "I1,3,SKU,1,99.999999,,,100.00",                    # line 4: float-looking money
        "I2,1,SKU,1,100,,,100",                             # line 5: dangling invoice
        "I3,1,SKU,-1,100.00,,,-100.00",                     # line 6: good credit line
        "I3,2,SKU,1,100.00,,,-100.00",                      # line 7: good (credit, sign on amount)
        "I1,1,SKU,2,100.00,10,,180.00",                     # line 8: duplicate key
        "I1,4,SKU,two,100.00,,,200.00",                     # line 9: quantity not a number
    ])
    return tmp_path


EXPECTED = {
    ("customers", 3): "segment: unknown value",
    ("customers", 4): "duplicate key (C1) of line 2",
    ("customers", 5): "created_at: not an ISO 8601 timestamp",
    ("customers", 6): "customer_id: required value missing",
    ("customers", 8): "wrong number of fields: expected 6, got 7",
    ("customers", 9): "created_at: not an ISO 8601 timestamp with offset",
    ("opportunities", 3): "closed_won needs amount",
    ("opportunities", 5): "renewal_of: no opportunities row with opportunity_id = O9",
    ("opportunities", 6): "channel: unknown value",
    ("invoices", 3): "customer_id: no customers row with customer_id = C9",
    ("invoice_lines", 3): "amount: 170.00 is not quantity × unit_price",
    ("invoice_lines", 4): "unit_price: money with more than 4 decimals",
    ("invoice_lines", 5): "invoice_id: no invoices row with invoice_id = I2",
    ("invoice_lines", 8): "duplicate key (I1, 1) of line 2",
    ("invoice_lines", 9): "quantity: not a decimal number",
}


def snapshot(conn):
    return {t: conn.execute(f"select * from revleak.{t} order by 1, 2").fetchall()
            for t in ("customers", "opportunities", "invoices", "invoice_lines")}


def test_bad_rows_are_quarantined_with_line_and_reason(conn, books):
    _, results = loader.load(conn, books)
    rows = conn.execute(
        "select table_name, line_no, reason, source_file from revleak.quarantine").fetchall()
    got = {(t, line): reason for t, line, reason, _ in rows}
    assert set(got) == set(EXPECTED)
    for key, reason in EXPECTED.items():
        assert reason in got[key], (key, got[key])
    assert all(f.endswith(f"{t}.csv") for t, _, _, f in rows)
    by_table = {r.table: r for r in results}
    assert {t: r.quarantined for t, r in by_table.items()} == {
        "customers": 6, "opportunities": 3, "invoices": 1, "invoice_lines": 5}
    # every good row is there, with its values typed
    assert [r[0] for r in conn.execute(
        "select customer_id from revleak.customers order by 1")] == ["C1", "C4"]
    assert conn.execute("select name from revleak.customers where customer_id = 'C1'"
                        ).fetchone()[0] == "Acme"
    assert [r[0] for r in conn.execute(
        "select opportunity_id from revleak.opportunities order by 1")] == ["O1", "O3"]
    assert conn.execute("select kind from revleak.invoices where invoice_id = 'I1'"
                        ).fetchone()[0] == "invoice"
    lines = conn.execute("select invoice_id, line_no, amount from revleak.invoice_lines"
                         " order by 1, 2").fetchall()
    assert [(i, n, str(a)) for i, n, a in lines] == [
        ("I1", 1, "180.0000"), ("I3", 1, "-100.0000"), ("I3", 2, "-100.0000")]
    # the raw row is kept for the fix
    raw = conn.execute("select raw from revleak.quarantine where table_name = 'customers'"
                       " and line_no = 8").fetchone()[0]
    assert raw["extra_1"] == "surplus"


def by_table(results):
    return {r.table: r for r in results}


def load(conn, directory, **kw):
    """Load ``directory``; (results by table, warning lines)."""
    warnings: list[str] = []
    _, results = loader.load(conn, directory, warn=warnings.append, **kw)
    return by_table(results), warnings


def quarantined(conn, table):
    return dict(conn.execute("select line_no, reason from revleak.quarantine"
                             " where table_name = %s", (table,)).fetchall())


def ids(conn, table):
    key = TABLES[table].pk[0]
    return [r[0] for r in conn.execute(f"select {key} from revleak.{table} order by 1")]


def test_reloading_the_same_files_changes_nothing(conn, books):
    loader.load(conn, books)
    before = snapshot(conn)
    bad = conn.execute("select source_file, line_no, reason from revleak.quarantine"
                       " order by 1, 2").fetchall()
    first = conn.execute("select table_name, checksum, rows_read from revleak.source_loads"
                         " order by 1").fetchall()
    load_id, results = loader.load(conn, books)
    assert all(r.unchanged and r.inserted == 0 and r.updated == 0 for r in results)
    assert "unchanged" in loader.format_summary(results)
    # unchanged files are not staged again, yet count as delivered again by this load
    assert conn.execute("select count(*) from revleak.source_loads where load_id = %s",
                        (load_id,)).fetchone()[0] == len(results)
    assert conn.execute("select count(*) from revleak.quarantine where load_id <> %s",
                        (load_id,)).fetchone()[0] == 0
    _, forced = loader.load(conn, books, force=True)  # staged and checked all over again
    assert not any(r.unchanged for r in forced)
    assert all(r.inserted == 0 and r.updated == 0 for r in forced)
    for again in (results, forced):
        assert [(r.table, r.rows, r.loaded, r.quarantined) for r in again] == [
            (r.table, r.rows, r.loaded, r.quarantined) for r in results]
    assert snapshot(conn) == before
    assert conn.execute("select source_file, line_no, reason from revleak.quarantine"
                        " order by 1, 2").fetchall() == bad
    assert conn.execute("select table_name, checksum, rows_read from revleak.source_loads"
                        " order by 1").fetchall() == first


def test_a_changed_row_updates_in_place(conn, books):
    loader.load(conn, books)
    write(books, "customers", [f"C1,Acme Renamed,smb,EU,EUR,{TS}"])
    _, results = loader.load(conn, books)
    customers = next(r for r in results if r.table == "customers")
    assert (customers.inserted, customers.updated) == (0, 1)
    assert conn.execute("select name from revleak.customers where customer_id = 'C1'"
                        ).fetchone()[0] == "Acme Renamed"


def test_each_load_records_when_what_and_how_many_rows_per_table(conn, books):
    load_id, results = loader.load(conn, books)
    rows = {r[0]: r[1:] for r in conn.execute(
        "select table_name, load_id, source_file, checksum, rows_read, rows_loaded,"
        " rows_quarantined, loaded_at from revleak.source_loads")}
    assert set(rows) == {"customers", "opportunities", "invoices", "invoice_lines"}
    for table, (load, file, checksum, read, loaded, bad, _) in rows.items():
        path = books / f"{table}.csv"
        assert (load, file) == (load_id, str(path.resolve()))
        assert checksum == hashlib.sha256(path.read_bytes()).hexdigest()
        stored = conn.execute(f"select count(*) from revleak.{table}").fetchone()[0]
        in_quarantine = len(quarantined(conn, table))
        assert (read, loaded, bad) == (stored + in_quarantine, stored, in_quarantine)
    # delivered again: loaded_at moves on, nothing else does
    time.sleep(0.01)
    loader.load(conn, books)
    again = {r[0]: r[1:] for r in conn.execute(
        "select table_name, load_id, source_file, checksum, rows_read, rows_loaded,"
        " rows_quarantined, loaded_at from revleak.source_loads")}
    for table, row in rows.items():
        assert again[table][2:6] == row[2:6] and again[table][6] > row[6]


def test_an_unchanged_file_is_staged_again_when_what_it_was_checked_against_changed(
        conn, tmp_path):
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    write(tmp_path, "invoices", ["I1,C1,,2025-01-01,2025-01-31,EUR,open,,,"])
    write(tmp_path, "invoice_lines", ["I1,1,SKU,1,100.00,,,-100.00",   # mirrored on an invoice
                                      "I2,1,SKU,1,50.00,,,50.00"])     # no such invoice yet
    results, _ = load(conn, tmp_path)
    assert results["invoice_lines"].quarantined == 2
    # the invoice turns out to be a credit note, and I2 arrives: same invoice_lines.csv
    write(tmp_path, "invoices", ["I1,C1,,2025-01-01,2025-01-31,EUR,open,,,credit_note",
                                 "I2,C1,,2025-01-01,2025-01-31,EUR,open,,,"])
    results, _ = load(conn, tmp_path)
    assert results["customers"].unchanged
    assert not results["invoice_lines"].unchanged
    assert (results["invoice_lines"].loaded, results["invoice_lines"].quarantined) == (2, 0)
    assert quarantined(conn, "invoice_lines") == {}
    # a table emptied by another tool is loaded again from the same file
    conn.execute("truncate revleak.invoice_lines")
    conn.commit()
    results, _ = load(conn, tmp_path)
    assert not results["invoice_lines"].unchanged and results["invoice_lines"].inserted == 2
    assert results["invoices"].unchanged and results["customers"].unchanged


def test_every_contract_table_notices_writes_by_other_tools(conn):
    triggered = {r[0] for r in conn.execute(
        "select event_object_table from information_schema.triggers"
        " where trigger_schema = 'revleak' and trigger_name = 'source_changed'")}
    assert triggered == set(TABLES)


def test_a_file_the_database_still_refuses_fails_alone_and_the_load_finishes(conn, tmp_path):
    """A rule the loader cannot know (a constraint a DBA added) fails that file only."""
    conn.execute("alter table revleak.invoices add constraint no_drafts check (status <> 'draft')")
    conn.commit()
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    write(tmp_path, "invoices", ["I1,C1,,2025-01-01,2025-01-31,EUR,draft,,,"])
    write(tmp_path, "invoice_lines", ["I1,1,SKU,1,10.00,,,10.00"])
    load_id, results = loader.load(conn, tmp_path)
    results = by_table(results)
    assert results["invoices"].error.endswith(
        'invoices.csv: not loaded, database error: new row for relation "invoices" violates'
        ' check constraint "no_drafts"')
    assert results["customers"].loaded == 1
    assert results["invoice_lines"].quarantined == 1  # its invoice did not load
    summary = conn.execute("select summary from revleak.loads where load_id = %s"
                           " and finished_at is not null", (load_id,)).fetchone()[0]
    assert summary["customers"]["loaded"] == 1 and "no_drafts" in summary["invoices"]["error"]
    assert conn.execute("select count(*) from revleak.source_loads where table_name = 'invoices'"
                        ).fetchone()[0] == 0


# --- values PostgreSQL would refuse: caught per row, never aborting the load ------------------

MB_KEY = "K" * 1_000_000
REFUSED = [  # (table, row, reason fragment); each row is its own line after a good one
    ("customers", f"{MB_KEY},Huge key,smb,EU,EUR,{TS}",
     "customer_id: longer than 2,000 bytes; an identifier must fit an index: " + "K" * 200
     + "… (1,000,000 characters)"),
    ("customers", "C3,Zed,smb,EU,EUR,0000-01-01T00:00:00+00:00", "created_at: not an ISO 8601"),
    ("invoices", "I2,C1,,2025-02-30,2025-03-31,EUR,open,,,", "issue_date: not a date"),
    ("invoices", "I3,C1,,10000-01-01,2025-03-31,EUR,open,,,", "issue_date: not a date"),
    ("invoice_lines", "I1,2,SKU,1e20,1.00,,,1.00", "quantity: not a decimal number: 1e20"),
    ("invoice_lines", "I1,3,SKU,100000000000000000000,0,,,0",
     "quantity: more than 12 digits before the decimal point (numeric(18,6))"),
    ("invoice_lines", "I1,4,SKU,1,123456789012345678901234,,,123456789012345678901234",
     "unit_price: more than 14 digits before the decimal point"),
    ("invoice_lines", "I1,5,SKU,1.1234567,0,,,0",
     "quantity: more than 6 decimals; the books keep 6, a value is never rounded: 1.1234567"),
    ("invoice_lines", "I1,2147483648,SKU,1,1.00,,,1.00", "line_no: whole number out of range"),
    ("invoice_lines", "I1,-99999999999999999999999,SKU,1,1.00,,,1.00",
     "line_no: whole number out of range"),
    ("invoice_lines", "I1,6,SKU,1,1.00,100.0001,,0", "discount_pct: not a percentage"),
    ("invoice_lines", "I1,7,SKU,1,1.00,12.34567,,0.88", "discount_pct: more than 4 decimals"),
    ("invoice_lines", "I1,8,SKU,2,10.00,,,-20.00", "amount: -20.00 has the opposite sign of"),
    ("invoice_lines", "I1,9,SKU,-1,10.00,,,10.00", "amount: 10.00 has the opposite sign of"),
    ("invoice_lines", "I1,10,SKU,1,10.00,,,10.01", "amount: 10.01 is not quantity × unit_price"),
    ("invoice_lines", "I1,11," + "S" * 3000 + ",1,1.00,,,1.00", "sku: longer than 2,000 bytes"),
    ("bank_transactions", f"T2,2025-01-01,10.00,EUR,{'R' * 5000},", "reference: longer than"),
    ("bank_transactions", "T3,2025-01-01,12345678901234567890.00,EUR,,",
     "amount: more than 14 digits before the decimal point"),
    ("fx_rates", "EUR,2025-01-02,0", "rate_to_base: must be above 0"),
    ("fx_rates", "EUR,2025-01-03,1.12345678901", "rate_to_base: more than 10 decimals"),
]
GOOD = {"customers": f"C1,Acme,smb,EU,EUR,{TS}",
        "invoices": "I1,C1,,2025-01-01,2025-01-31,EUR,open,,,",
        "invoice_lines": "I1,1,SKU,3,10.00,10,,27.00",
        "bank_transactions": "T1,2025-01-01,10.00,EUR,I1,Acme",
        "fx_rates": "EUR,2025-01-01,1.0850000000"}
MORE_HEADERS = {"bank_transactions": "txn_id,booked_date,amount,currency,reference,counterparty",
                "fx_rates": "currency,rate_date,rate_to_base"}


def test_values_postgresql_would_refuse_are_quarantined_row_by_row(conn, tmp_path):
    expected: dict[str, dict[int, str]] = {t: {} for t in GOOD}
    for table, good in GOOD.items():
        rows = [good]
        for t, row, reason in REFUSED:
            if t == table:
                rows.append(row)
                expected[table][len(rows) + 1] = reason
        rows.append(good.replace("1", "9", 1))  # a good row after the bad ones
        body = "\n".join([{**HEADERS, **MORE_HEADERS}[table], *rows]) + "\n"
        (tmp_path / f"{table}.csv").write_text(body, encoding="utf-8")
    results, _ = load(conn, tmp_path)
    for table, lines in expected.items():
        got = quarantined(conn, table)
        assert set(got) == set(lines), (table, got)
        for line, fragment in lines.items():
            assert fragment in got[line], (table, line, got[line][:300])
            assert len(got[line]) < 400  # the reason quotes at most 200 characters of a value
        assert results[table].error is None
        assert results[table].loaded == 2  # the good rows before and after
    assert conn.execute("select quantity, amount from revleak.invoice_lines where line_no = 1"
                        ).fetchone() == (Decimal("3"), Decimal("27.00"))


def _schema_numerics(conn):
    return conn.execute(
        "select table_name, column_name, data_type, numeric_precision, numeric_scale"
        " from information_schema.columns where table_schema = 'revleak'"
        " and table_name = any(%s) and data_type in ('numeric', 'integer')",
        (list(TABLES),)).fetchall()


def test_the_loaders_precision_is_the_schemas(conn):
    columns = {(t.name, c.name): c for t in TABLES.values() for c in t.columns}
    numerics = _schema_numerics(conn)
    assert numerics
    for table, column, data_type, precision, scale in numerics:
        col = columns[(table, column)]
        if data_type == "integer":
            assert col.type == "int", (table, column)
        else:
            assert col.precision == (precision, scale), (table, column)


# a valid row per table with numbers; {v} marks the column under test and its partners
TEMPLATES = {
    "opportunities": {"opportunity_id": "O{n}", "created_at": TS, "channel": "phone",
                      "intent": "high", "stage": "new", "amount": "{v}"},
    "invoice_lines": {"invoice_id": "I1", "line_no": "{n}", "sku": "S", "quantity": "0",
                      "unit_price": "0", "amount": "0"},
    "payments": {"payment_id": "P{n}", "customer_id": "C1", "amount": "{v}", "currency": "EUR",
                 "attempted_at": TS, "status": "succeeded"},
    "bank_transactions": {"txn_id": "T{n}", "booked_date": "2025-01-01", "amount": "{v}",
                          "currency": "EUR"},
    "gl_entries": {"entry_id": "G{n}", "posted_date": "2025-01-01", "account": "revenue",
                   "amount": "{v}", "currency": "EUR"},
    "rate_cards": {"sku": "S{n}", "currency": "EUR", "list_price": "{v}",
                   "effective_from": "2025-01-01"},
    "promotions": {"promo_code": "P{n}", "discount_pct": "{v}", "valid_from": "2025-01-01",
                   "valid_to": "2025-12-31", "stackable": "true"},
    "discount_approvals": {"approval_id": "A{n}", "customer_id": "C1", "max_discount_pct": "{v}",
                           "approved_by": "CFO", "valid_from": "2025-01-01"},
    "fx_rates": {"currency": "EUR", "rate_date": "{date}", "rate_to_base": "{v}"},
}
PARTNERS = {("invoice_lines", "unit_price"): {"quantity": "1", "amount": "{v}"},
            ("invoice_lines", "amount"): {"quantity": "1", "unit_price": "{v}"}}
RULES = {"discount_pct": lambda v: 0 <= v <= 100, "max_discount_pct": lambda v: 0 <= v <= 100,
         "rate_to_base": lambda v: v > 0}


def test_numbers_load_exactly_or_are_quarantined_never_rounded_or_overflowing(conn, tmp_path):
    """Boundary values from each column's type in the schema; PostgreSQL itself says which
    ones its column takes without rounding (the oracle), the loader must agree row by row."""
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    write(tmp_path, "invoices", ["I1,C1,,2025-01-01,2025-01-31,EUR,open,,,"])
    loader.load(conn, tmp_path)
    variants: dict[str, list[tuple[dict, bool]]] = {t: [] for t in TEMPLATES}
    n = 0
    for table, column, data_type, p, s in _schema_numerics(conn):
        if table not in TEMPLATES:
            continue
        if data_type == "integer":
            cast, values = "integer", ["2147483647", "2147483648", "-2147483648", "-2147483649",
                                       "0" * 30 + "99999"]
        else:
            cast = f"numeric({p},{s})"
            top = "9" * (p - s) + ("." + "9" * s if s else "")
            values = [top, "1" + "0" * (p - s), "0." + "0" * s + "1", "-" + top, "1." + "5" * s,
                      "100", "0"]
        for value in values:
            try:
                with conn.transaction():
                    typed = conn.execute(f"select %s::{cast}", (value,)).fetchone()[0]
                fits = Decimal(typed) == Decimal(value) and RULES.get(
                    column, lambda v: True)(Decimal(value))
            except psycopg.errors.NumericValueOutOfRange:
                fits = False
            n += 1
            row = {**TEMPLATES[table], **PARTNERS.get((table, column), {}), column: "{v}"}
            row = {k: v.format(v=value, n=n, date=f"2025-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}")
                   for k, v in row.items()}
            variants[table].append((row, fits))
    for table, rows in variants.items():
        with open(tmp_path / f"{table}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=TABLES[table].column_names)
            w.writeheader()
            w.writerows(row for row, _ in rows)
    results, _ = load(conn, tmp_path)
    for table, rows in variants.items():
        bad = quarantined(conn, table)
        assert results[table].error is None
        for line, (row, fits) in enumerate(rows, 2):
            assert (line not in bad) == fits, (table, row, bad.get(line))


# --- unreadable bytes quarantine only the lines they touch ------------------------------------

def test_invalid_utf8_and_nul_bytes_quarantine_only_their_lines(conn, tmp_path):
    header = HEADERS["customers"].encode()
    body = b"\r\n".join([
        b"\xef\xbb\xbf" + header,
        f"C1,Acme,smb,EU,EUR,{TS}".encode(),                       # 2
        f"C2,B\xffeta,smb,EU,EUR,{TS}".encode("latin-1"),          # 3: not UTF-8
        f'C3,"Multi, line\nname",smb,EU,EUR,{TS}'.encode(),        # 4-5: one quoted record
        f"C4,Ga\x00mma,smb,EU,EUR,{TS}".encode(),                  # 6: NUL byte
        f"C5,Delta,smb,EU,EUR,{TS}".encode(),                      # 7
        b"C6,\xe2\x82,smb,EU,EUR," + TS.encode(),                  # 8: cut-off UTF-8
        f"  C7 , Zoë ,smb,EU,EUR,{TS}".encode(),                   # 9: blanks trimmed
        b"",                                                       # 10: blank, skipped
        f'C8,"Say ""hi""",smb,,EUR,{TS}'.encode(),                 # 11
        b'C9,"never closed,smb,EU,EUR,' + TS.encode(),             # 12: unbalanced quote
        f"C10,Last,smb,EU,EUR,{TS}".encode(),                      # 13, no newline at the end
    ])
    (tmp_path / "customers.csv").write_bytes(body)
    results, _ = load(conn, tmp_path)
    assert results["customers"].error is None
    bad = quarantined(conn, "customers")
    assert set(bad) == {3, 6, 8, 12}, bad
    assert bad[3].startswith("not UTF-8: byte 0xff at position 5 of the line")
    assert bad[6].startswith("NUL byte at position 6 of the line")
    assert bad[8].startswith("not UTF-8: byte 0xe2 at position 4")
    assert "unbalanced" in bad[12]
    assert (results["customers"].rows, results["customers"].loaded) == (10, 6)
    names = dict(conn.execute("select customer_id, name from revleak.customers").fetchall())
    assert names == {"C1": "Acme", "C3": "Multi, line\nname", "C5": "Delta", "C7": "Zoë",
                     "C8": 'Say "hi"', "C10": "Last"}
    raw = conn.execute("select raw from revleak.quarantine where line_no = 6").fetchone()[0]
    assert raw["line"].startswith("C4,Ga\\x00mma")


def test_a_quoted_record_across_read_blocks_and_a_lone_end_marker(conn, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "CHUNK", 64)  # many small blocks: records straddle them
    rows = [f'C{i},"Name {i}\nsecond line, with comma",smb,EU,EUR,{TS}' for i in range(1, 30)]
    rows.insert(5, "\\.")  # COPY's end-of-data marker as a line of its own: a bad line
    write(tmp_path, "customers", rows)
    results, _ = load(conn, tmp_path)
    assert results["customers"].loaded == 29
    assert quarantined(conn, "customers") == {12: "wrong number of fields: expected 6, got 1"}
    assert conn.execute("select name from revleak.customers where customer_id = 'C29'"
                        ).fetchone()[0] == "Name 29\nsecond line, with comma"


# --- headers first ------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "message"), [
    ("invoice_id,customer_id,issue_date,currency,status",
     "invoices.csv: missing required column due_date (header found: invoice_id,customer_id,"
     "issue_date,currency,status)"),
    ("invoice_id,customer_id,issue_date,duedate,currency,status",
     "missing required column due_date (found 'duedate'?)"),
    ("invoice_id,customer_id,issue_date,due_date,currency,status,Status",
     "invoices.csv: duplicated column status; each column once (header found:"),
    ("invoice_id;customer_id;issue_date;due_date;currency;status",
     "invoices.csv: the file looks ';'-delimited; revleak reads comma-separated files"),
    ("invoice_id\tcustomer_id\tissue_date\tdue_date\tcurrency\tstatus",
     "invoices.csv: the file looks tab-delimited"),
    ("invoice_id|customer_id|issue_date|due_date|currency|status",
     "invoices.csv: the file looks '|'-delimited"),
    ("", "invoices.csv: the file is empty; it needs a header row"),
])
def test_a_bad_header_refuses_the_file_in_one_line_and_the_rest_loads(
        conn, tmp_path, header, message):
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    write(tmp_path, "invoices", ["I1,C1,,2025-01-01,2025-01-31,EUR,open,,,"])
    loader.load(conn, tmp_path)
    before = conn.execute("select loaded_at, load_id, checksum from revleak.source_loads"
                          " where table_name = 'invoices'").fetchone()
    (tmp_path / "invoices.csv").write_text(header + "\nI2,C1,2025-01-01\n" if header else "")
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}", f"C2,Beta,smb,EU,EUR,{TS}"])
    load_id, results = loader.load(conn, tmp_path)
    results = by_table(results)
    assert message in results["invoices"].error
    assert "\n" not in results["invoices"].error
    assert results["customers"].loaded == 2
    # refused as a whole: the table was not delivered, its load record stays as it was
    assert conn.execute("select loaded_at, load_id, checksum from revleak.source_loads"
                        " where table_name = 'invoices'").fetchone() == before
    finished, summary = conn.execute("select finished_at, summary from revleak.loads"
                                     " where load_id = %s", (load_id,)).fetchone()
    assert finished is not None
    assert summary["customers"]["loaded"] == 2 and message in summary["invoices"]["error"]


def test_a_missing_optional_column_keeps_stored_values_and_says_so(conn, tmp_path):
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}", f"C2,Beta,mid,US,USD,{TS}"])
    write(tmp_path, "invoices", ["I1,C1,,2025-01-01,2025-01-31,EUR,open,,,credit_note"])
    loader.load(conn, tmp_path)
    (tmp_path / "customers.csv").write_text(
        f"customer_id,name,currency,created_at\nC1,Acme Renamed,EUR,{TS}\nC3,Gamma,GBP,{TS}\n")
    (tmp_path / "invoices.csv").write_text(
        "invoice_id,customer_id,issue_date,due_date,currency,status\n"
        "I1,C1,2025-01-01,2025-01-31,EUR,paid\nI2,C1,2025-02-01,2025-02-28,EUR,open\n")
    results, warnings = load(conn, tmp_path)
    assert warnings == [
        "customers.csv has no column segment, region: stored values are kept; new rows get none",
        "invoices.csv has no column opportunity_id, period_start, period_end, kind: stored "
        "values are kept; new rows get kind = invoice and none for the rest"]
    assert conn.execute("select customer_id, name, segment, region from revleak.customers"
                        " order by 1").fetchall() == [
        ("C1", "Acme Renamed", "smb", "EU"), ("C2", "Beta", "mid", "US"),
        ("C3", "Gamma", None, None)]
    assert conn.execute("select invoice_id, status, kind from revleak.invoices order by 1"
                        ).fetchall() == [("I1", "paid", "credit_note"), ("I2", "open", "invoice")]
    assert (results["invoices"].inserted, results["invoices"].updated) == (1, 1)


def test_files_named_almost_like_a_table_get_a_warning_each(conn, tmp_path):
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    for name in ("Customers.CSV", "invoice.csv", "widgets.csv"):
        (tmp_path / name).write_text(HEADERS["customers"] + "\n")
    (tmp_path / "manifest.json").write_text("{}")
    results, warnings = load(conn, tmp_path)
    assert set(results) == {"customers"}
    assert warnings == [
        "Customers.CSV was not loaded: it looks like customers.csv; rename it to customers.csv"
        " (names are lower case)",
        "invoice.csv was not loaded: it looks like invoices.csv; rename it to invoices.csv"
        " (names are lower case)",
        "widgets.csv was not loaded: not a contract table (" + ", ".join(TABLES) + ")"]


def test_the_load_command_exits_2_after_loading_the_rest_and_reloads_with_force(
        tmp_path, warehouse_uri, capsys):
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    (tmp_path / "invoices.csv").write_text("invoice_id;customer_id\nI1;C1\n")
    (tmp_path / "Invoice_Lines.csv").write_text("")
    assert cli.main(["load", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "warning: Invoice_Lines.csv was not loaded: it looks like invoice_lines.csv; rename it"
        " to invoice_lines.csv (names are lower case)",
        f"error: {tmp_path / 'invoices.csv'}: the file looks ';'-delimited; revleak reads"
        " comma-separated files, re-export with commas (missing invoice_id, customer_id,"
        " issue_date, due_date, currency, status; header found: invoice_id;customer_id)"]
    assert "customers" in out and "refused" in out
    (tmp_path / "invoices.csv").unlink()
    (tmp_path / "Invoice_Lines.csv").unlink()
    assert cli.main(["load", str(tmp_path)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert cli.main(["load", "--force", str(tmp_path)]) == 0
    assert "unchanged" not in capsys.readouterr().out


def test_migrations_twice_are_a_no_op(conn):
    assert warehouse.migrate(conn) == []  # the template is migrated already
    tables = conn.execute("select count(*) from information_schema.tables"
                          " where table_schema = 'revleak'").fetchone()[0]
    assert warehouse.migrate(conn) == []
    assert conn.execute("select count(*) from information_schema.tables"
                        " where table_schema = 'revleak'").fetchone()[0] == tables
    applied = [r[0] for r in conn.execute(
        "select version from revleak_meta.schema_migrations order by 1")]
    assert applied == sorted(p.name for p in warehouse.SCHEMA_DIR.glob("*.sql"))


def test_fresh_database_migrates_every_canonical_table(pg_server):
    import psycopg

    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute("drop database if exists fresh_migrate")
        admin.execute("create database fresh_migrate")
    with psycopg.connect(pg_server.get_uri("fresh_migrate")) as c:
        assert len(warehouse.migrate(c)) == len(list(warehouse.SCHEMA_DIR.glob("*.sql")))
        names = {r[0] for r in c.execute("select table_name from information_schema.tables"
                                          " where table_schema = 'revleak'")}
    from revleak.tables import TABLES

    assert set(TABLES) <= names
    assert {"quarantine", "check_runs", "findings", "finding_history", "ticket_outbox"} <= names


# --- the date and timestamp tests keep the meaning 0003 gave them -------------------------------

DATE_0003 = r"v ~ '^\d{4}-\d{2}-\d{2}$' and pg_input_is_valid(v, 'date')"
TS_0003 = (r"v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$'"
           r" and pg_input_is_valid(v, 'timestamptz')")
STAMPS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                      timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                                                 timezone(timedelta(hours=5, minutes=30))]))
SHAPES = st.one_of(
    st.text(alphabet="0123456789-T :+Z.x\u0660", max_size=30),
    STAMPS.map(lambda d: d.isoformat()), STAMPS.map(lambda d: d.isoformat(" ", "minutes")),
    STAMPS.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    STAMPS.map(lambda d: d.date().isoformat()),
    STAMPS.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S%z")),
    st.sampled_from(["2024-02-29", "2023-02-29", "0000-01-01", "2024-13-01", "2024-1-01",
                     "20240101", "2024-01-01T24:00:00Z", "2024-01-01T10:00:00+25:00",
                     "2024-01-01T10:00", "2024-01-01 10:00:00.123456-05", "infinity"]))


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(SHAPES, min_size=1, max_size=40))
def test_date_and_timestamp_tests_mean_what_0003_defined(conn, values):
    rows = conn.execute(f"select v, revleak.is_date(v), {DATE_0003}, revleak.is_ts(v), {TS_0003}"
                        " from unnest(%s::text[]) v", (values,)).fetchall()
    for v, is_date, date_0003, is_ts, ts_0003 in rows:
        assert (is_date, is_ts) == (date_0003, ts_0003), v
