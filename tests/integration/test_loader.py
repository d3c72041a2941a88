"""The loader on a real PostgreSQL: every bad-row kind is quarantined with its line and
reason, every good row lands, and loading the same files again changes nothing."""

from __future__ import annotations

import textwrap

import pytest

from revleak import loader, warehouse

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


def test_reloading_the_same_files_changes_nothing(conn, books):
    loader.load(conn, books)
    before = snapshot(conn)
    quarantined = conn.execute("select count(*) from revleak.quarantine").fetchone()[0]
    _, results = loader.load(conn, books)
    assert snapshot(conn) == before
    assert all(r.inserted == 0 and r.updated == 0 for r in results)
    assert conn.execute("select count(*) from revleak.quarantine").fetchone()[0] == quarantined


def test_a_changed_row_updates_in_place(conn, books):
    loader.load(conn, books)
    write(books, "customers", [f"C1,Acme Renamed,smb,EU,EUR,{TS}"])
    _, results = loader.load(conn, books)
    customers = next(r for r in results if r.table == "customers")
    assert (customers.inserted, customers.updated) == (0, 1)
    assert conn.execute("select name from revleak.customers where customer_id = 'C1'"
                        ).fetchone()[0] == "Acme Renamed"


def test_unreadable_file_is_an_error_and_other_files_still_load(conn, tmp_path):
    write(tmp_path, "customers", [f"C1,Acme,smb,EU,EUR,{TS}"])
    (tmp_path / "invoices.csv").write_bytes(HEADERS["invoices"].encode() + b"\nI1,\xff\xfe\n")
    _, results = loader.load(conn, tmp_path)
    by_table = {r.table: r for r in results}
    assert "not UTF-8" in by_table["invoices"].error
    assert by_table["customers"].loaded == 1


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
