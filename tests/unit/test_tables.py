"""The input tables as the loader reads them agree with the contract as docs/contract.md states
it (read here from its table of columns, independently of the code): the same tables, columns,
keys, types, values and which columns may be empty; references point at earlier tables'
keys, and identifiers (kept short enough to index) are told from free text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from revleak.tables import TABLES

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
TYPES = {"date", "ts", "money", "pct", "bool", "ccy", "int", "decimal"}
ITEM = re.compile(r"`(?P<name>\w+)`(?P<q1>\?)?(?: (?P<type>[a-z]+)(?P<q2>\?)?)?"
                  r"(?: \((?P<note>[^)]*)\))?")


def _documented() -> dict[str, dict]:
    """table → {"pk": [...], "columns": {name: (type or None, required, enum values)}}."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = text[text.index("| table | columns (key first) |"):]
    tables = {}
    for row in section.splitlines()[2:]:
        if not row.startswith("| `"):
            break
        name, cells = re.fullmatch(r"\| `(\w+)` \| (.*) \|", row).groups()
        items = cells.split(" · ")
        if items[0].startswith("("):  # a key of several columns: (`a`, `b` type)
            pk_items = items[0][1:-1].split(", ")
            items = pk_items + items[1:]
        else:
            pk_items = items[:1]
        columns = {}
        for item in items:
            m = ITEM.match(item.split(" — ")[0])
            note = (m["note"] or "").split(";")[0]
            values = tuple(note.split(", ")) if re.fullmatch(r"\w+(, \w+)+", note) else ()
            columns[m["name"]] = (m["type"], not (m["q1"] or m["q2"]), values)
        tables[name] = {"pk": [ITEM.match(i)["name"] for i in pk_items], "columns": columns}
    return tables


DOCUMENTED = _documented()


def test_the_same_tables():
    assert len(DOCUMENTED) == 13
    assert set(DOCUMENTED) == set(TABLES)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_columns_keys_types_and_values_are_the_contracts(name):
    table, doc = TABLES[name], DOCUMENTED[name]
    assert list(table.pk) == doc["pk"]
    assert set(table.column_names) == set(doc["columns"])
    for col in table.columns:
        doc_type, required, values = doc["columns"][col.name]
        assert col.required == required, col.name
        if values:
            assert (col.type, col.values) == ("enum", values), col.name
        elif doc_type:
            assert col.type == doc_type, col.name
        else:  # untyped in the docs: text, an enum listed above, or a key's currency
            assert col.type in ("text", "enum") or (col.name, col.type) == ("currency", "ccy"), \
                col.name


def test_enums_listed_once_in_the_docs_have_the_same_values_everywhere():
    signals, opportunities = TABLES["inbound_signals"], TABLES["opportunities"]
    for name in ("channel", "intent"):
        a = next(c for c in signals.columns if c.name == name)
        b = next(c for c in opportunities.columns if c.name == name)
        assert a.type == b.type == "enum" and a.values == b.values


def test_money_has_four_decimals_and_an_empty_kind_is_an_invoice():
    money = [c for t in TABLES.values() for c in t.columns if c.type == "money"]
    assert money and {c.precision for c in money} == {(18, 4)}
    kind = next(c for c in TABLES["invoices"].columns if c.name == "kind")
    assert (kind.required, kind.default) == (False, "invoice")


def test_references_point_at_an_earlier_tables_key():
    order = list(TABLES)
    for name, table in TABLES.items():
        for column, (parent, key) in table.references.items():
            assert column in table.column_names
            assert TABLES[parent].pk == (key,), (name, column)
            assert order.index(parent) <= order.index(name), f"{parent} loads after {name}"


@pytest.mark.parametrize(("table", "column", "key"), [
    ("customers", "customer_id", True), ("customers", "name", False),
    ("invoice_lines", "sku", True), ("invoice_lines", "promo_code", True),
    ("bank_transactions", "reference", True), ("bank_transactions", "counterparty", False),
    ("opportunities", "renewal_of", True), ("opportunities", "owner", False),
    ("inbound_signals", "contact_key", True), ("payments", "failure_code", False),
])
def test_identifiers_are_keys(table, column, key):
    col = next(c for c in TABLES[table].columns if c.name == column)
    assert col.key is key
