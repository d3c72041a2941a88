"""revleak.demo: deterministic, valid books whose manifest states exactly what a correct check
finds. What a correct check finds comes from the independent oracle (tests/oracle, shared with
the property suite) run over the CSV files the generator wrote; decoys sit just inside a rule.
The checked quarter has a price rise a few contracts miss, seen by the change check's run a few
days later and by the quarterly audit.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from revleak import demo, periods
from revleak.demo import company, manifest
from revleak.registry import CHECKS
from revleak.tables import TABLES
from tests import demo_books
from tests.demo_books import CATEGORIES

DECOY_KINDS = {"inside_billing_lag", "within_tolerance", "overbill_credited", "paid_in_two_parts",
               "deposit_in_transit", "approved_discount", "promo_in_validity", "renewal_grace"}
CENT = Decimal("0.01")
FORMATS = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "ts": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$"),
    "money": re.compile(r"^-?\d+\.\d{2}$"),
    "decimal": re.compile(r"^-?\d+(\.\d+)?$"),
    "pct": re.compile(r"^\d+(\.\d+)?$"),
    "int": re.compile(r"^-?\d+$"),
    "bool": re.compile(r"^(true|false)$"),
    "ccy": re.compile(r"^[A-Z]{3}$"),
}


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    manifest = demo.generate(out, seed=7, scale="small")
    return out, manifest, demo_books.read(out)


def _bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes_other_seed_other_books(books, tmp_path):
    out, manifest, _ = books
    again = demo.generate(tmp_path / "again", seed=7, scale="small")
    assert again == manifest
    assert _bytes(tmp_path / "again") == _bytes(out)
    demo.generate(tmp_path / "other", seed=8, scale="small")
    other = _bytes(tmp_path / "other")
    assert other.keys() == _bytes(out).keys()
    assert other["invoice_lines.csv"] != _bytes(out)["invoice_lines.csv"]
    assert other["manifest.json"] != _bytes(out)["manifest.json"]


def test_files_carry_the_contract_headers_and_the_manifest_counts_rows(books):
    out, manifest, _ = books
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert {p.name for p in out.iterdir()} == {f"{t}.csv" for t in TABLES} | {"manifest.json"}
    for table, spec in TABLES.items():
        with open(out / f"{table}.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == spec.column_names, table
        assert manifest["rows"][table] == len(rows) - 1 > 0, table


def test_every_row_is_valid_for_the_loader(books):
    """Types, required values, enums, primary keys and references (contract §2)."""
    _, _, tables = books
    keys = {t: {tuple(r[c] for c in spec.pk) for r in tables[t]} for t, spec in TABLES.items()}
    for table, spec in TABLES.items():
        rows = tables[table]
        assert len(keys[table]) == len(rows), f"duplicate primary key in {table}"
        for col in spec.columns:
            for row in rows:
                value = row[col.name]
                if value == "":
                    assert not col.required, (table, col.name, row)
                elif col.type == "enum":
                    assert value in col.values, (table, col.name, value)
                elif col.type in FORMATS:
                    assert FORMATS[col.type].match(value), (table, col.name, value)
        for col, (parent, _) in spec.references.items():
            missing = {r[col] for r in rows if r[col]} - {k[0] for k in keys[parent]}
            assert not missing, (table, col, sorted(missing)[:5])
    for row in tables["opportunities"]:
        if row["stage"] == "closed_won":
            assert all(row[c] for c in ("amount", "currency", "contract_start", "contract_end",
                                        "billing_frequency")), row


def test_invoice_line_arithmetic(books):
    _, _, tables = books
    kinds = {r["invoice_id"]: r["kind"] for r in tables["invoices"]}
    for line in tables["invoice_lines"]:
        discount = Decimal(line["discount_pct"] or 0)
        expected = (Decimal(line["quantity"]) * Decimal(line["unit_price"])
                    * (1 - discount / 100)).quantize(CENT)
        assert Decimal(line["amount"]) == expected, line
        if kinds[line["invoice_id"]] == "credit_note":
            assert Decimal(line["amount"]) < 0, line


def test_runs_are_the_contract_windows(books):
    _, manifest, _ = books
    assert manifest["as_of"] == "2026-09-30"
    assert manifest["runs"]["booked_vs_billed_daily"]["logical_date"] == "2026-10-01"
    assert manifest["runs"]["billed_vs_collected_weekly"]["logical_date"] == "2026-10-05"
    assert manifest["runs"]["pricing_drift_quarterly"]["logical_date"] == "2026-10-01"
    assert manifest["runs"]["pricing_drift_on_change"]["logical_date"] == "2026-08-17"
    assert manifest["price_rise"]["effective_from"] == "2026-08-12"
    assert set(manifest["runs"]) == set(CATEGORIES)
    for check, run in manifest["runs"].items():
        window = periods.window(check, date.fromisoformat(run["logical_date"]))
        assert run["as_of"] == window.as_of.isoformat(), check
    for leak in manifest["leaks"]:
        assert leak["as_of"] == manifest["runs"][leak["check"]]["as_of"], leak


def test_every_category_is_seeded_and_every_decoy_kind_is_present(books):
    _, manifest, _ = books
    seeded = defaultdict(list)
    for leak in manifest["leaks"]:
        assert leak["category"] in CATEGORIES[leak["check"]], leak
        seeded[leak["category"]].append(leak)
    assert set(seeded) == set().union(*CATEGORIES.values())
    for category in CATEGORIES["booked_vs_billed_daily"]:
        assert len(seeded[category]) >= 3, category
        assert len({leak["currency"] for leak in seeded[category]}) >= 2, category
    for category in set(seeded) - CATEGORIES["booked_vs_billed_daily"] - set(demo.ZONES):
        assert len(seeded[category]) >= 2, category
    assert {d["kind"] for d in manifest["decoys"]} == DECOY_KINDS
    decoys = {(d["entity_type"], d["entity_id"]) for d in manifest["decoys"]}
    assert len(decoys) == len(manifest["decoys"])
    assert not decoys & {(x["entity_type"], x["entity_id"]) for x in manifest["leaks"]}


def test_leak_and_decoy_entities_exist_and_name_their_customer(books):
    _, manifest, tables = books
    customer_of = {"zone": dict.fromkeys(demo.ZONES)}
    for entity_type, table, key in (("opportunity", "opportunities", "opportunity_id"),
                                    ("invoice", "invoices", "invoice_id"),
                                    ("payment", "payments", "payment_id")):
        customer_of[entity_type] = {r[key]: r["customer_id"] or None for r in tables[table]}
    invoiced = customer_of["invoice"]
    customer_of["customer_sku"] = {f"{invoiced[r['invoice_id']]}:{r['sku']}":
                                   invoiced[r["invoice_id"]] for r in tables["invoice_lines"]}
    contract_of = {r["invoice_id"]: r["opportunity_id"] for r in tables["invoices"]}
    customer_of["contract_sku"] = {f"{contract_of[r['invoice_id']]}:{r['sku']}":
                                   invoiced[r["invoice_id"]] for r in tables["invoice_lines"]}
    for entry in manifest["leaks"] + manifest["decoys"]:
        entities = customer_of[entry["entity_type"]]
        assert entry["entity_id"] in entities, entry
        assert entry["customer_id"] == entities[entry["entity_id"]], entry
    for leak in manifest["leaks"]:
        if "expected_amount" in leak:
            gap = Decimal(leak["expected_amount"]) - Decimal(leak["actual_amount"])
            assert Decimal(leak["gap_amount"]) == gap, leak


def test_a_price_rise_mid_quarter_that_a_few_contracts_miss(books):
    """One sku's list price rises at least 8% in every currency on a day of the checked
    quarter's second month. After it, every line of the sku bills the new price except on at
    least 3 recurring contracts (the audit's subscription drifts); the change check, a few days
    after the rise, sees the first of them."""
    _, manifest, tables = books
    sku, rise = manifest["price_rise"]["sku"], manifest["price_rise"]["effective_from"]
    quarter = date.fromisoformat(manifest["runs"]["pricing_drift_quarterly"]["window_start"])
    day = date.fromisoformat(rise)
    assert (day.year, day.month) == (quarter.year, quarter.month + 1)
    assert date.fromisoformat(manifest["runs"]["pricing_drift_on_change"]["logical_date"]) \
        - day == timedelta(days=5)
    new = {}
    for ccy in demo.CURRENCIES:
        card = {c["effective_from"]: c for c in tables["rate_cards"]
                if (c["sku"], c["currency"]) == (sku, ccy)}
        before = next(c for c in card.values() if c["effective_to"] == str(day - timedelta(1)))
        new[ccy] = Decimal(card[rise]["list_price"])
        assert new[ccy] >= Decimal("1.08") * Decimal(before["list_price"]), ccy
    invoices = {i["invoice_id"]: i for i in tables["invoices"]}
    stale = {f"{inv['opportunity_id']}:{sku}" for line in tables["invoice_lines"]
             if line["sku"] == sku and (inv := invoices[line["invoice_id"]])["issue_date"] >= rise
             and Decimal(line["unit_price"]) != new[inv["currency"]]}
    drifts = {check: {x["entity_id"] for x in manifest["leaks"]
                      if (x["check"], x["category"]) == (check, "subscription_drift")}
              for check in ("pricing_drift_quarterly", "pricing_drift_on_change")}
    assert stale == drifts["pricing_drift_quarterly"] and len(stale) >= 3
    assert drifts["pricing_drift_on_change"] and drifts["pricing_drift_on_change"] <= stale


# --- what a correct check finds: the oracle over the files -------------------------------------


@pytest.mark.parametrize("check", sorted(CATEGORIES))
def test_the_oracle_finds_exactly_what_was_planted(books, check):
    """Every planted leak and nothing else, with every figure the manifest states; no decoy."""
    _, manifest, tables = books
    found = demo_books.judged(tables, manifest, check)
    assert not demo_books.disagreements(found, demo_books.planted(manifest, check))
    looks_like = CHECKS[check].same_as or check  # the change check spares the audit's decoys
    decoys = {d["entity_id"] for d in manifest["decoys"] if d["check"] == looks_like}
    assert bool(decoys) == (check != "funnel_leak_weekly")
    assert not decoys & {f.entity_id for f in found}


@pytest.mark.parametrize("check", sorted(CATEGORIES))
def test_the_normal_company_without_its_roles_is_clean(tmp_path, check):
    """The books before any leak or decoy is planted: no check finds anything."""
    normal = company.Company(tmp_path, 7, "small", demo.DEFAULT_AS_OF, None)
    normal.run()
    runs = {"runs": manifest.runs(normal)}
    assert demo_books.judged(demo_books.read(tmp_path), runs, check) == []


def test_early_in_a_quarter_uncollected_invoices_are_the_quarterly_checks_too(tmp_path):
    """Checked in the quarter's first week, the collection leaks' invoices are already more
    than 90 days old at its end: the manifest plants them for the quarterly check too."""
    manifest = demo.generate(tmp_path, seed=11, scale="small", as_of=date(2026, 7, 5))
    tables = demo_books.read(tmp_path)
    check = "recognized_vs_collected_quarterly"
    leaks = demo_books.planted(manifest, check)
    weekly = {x["entity_id"] for x in manifest["leaks"]
              if x["category"] in ("unpaid", "payment_failed", "short_paid", "disputed")}
    assert weekly <= {entity for _, _, _, entity in leaks}
    for check in CATEGORIES:
        found = demo_books.judged(tables, manifest, check)
        assert not demo_books.disagreements(found, demo_books.planted(manifest, check)), check


# decoy kind: a rule tightened so far that the decoy becomes the leak it looks like
TIGHTENED = {
    "inside_billing_lag": ("unbilled", {"billing_lag_days": 0}),
    "within_tolerance": ("under_billed", {"tolerance_pct": 0, "tolerance_min": "0.01"}),
    "renewal_grace": ("renewal_miss", {"renewal_grace_days": 0}),
    "deposit_in_transit": ("payment_not_deposited", {"deposit_lag_days": 0}),
}


@pytest.mark.parametrize("kind", sorted(TIGHTENED))
def test_decoys_sit_just_inside_a_rule(books, kind):
    _, manifest, tables = books
    category, rules = TIGHTENED[kind]
    decoys = [d for d in manifest["decoys"] if d["kind"] == kind]
    found = {(f.category, f.entity_id)
             for f in demo_books.judged(tables, manifest, decoys[0]["check"], **rules)}
    assert decoys and all((category, d["entity_id"]) in found for d in decoys), kind


def test_other_decoys_look_like_leaks(books):
    """An over-billing cancelled by a credit note; an invoice paid in two parts; a discount
    above the free limit with an approval; a promotion used while it runs."""
    _, manifest, tables = books
    kinds = defaultdict(set)
    for inv in tables["invoices"]:
        kinds[inv["opportunity_id"]].add(inv["kind"])
    paid = defaultdict(int)
    for pay in tables["payments"]:
        paid[pay["invoice_id"]] += pay["status"] == "succeeded"
    approved = {a["customer_id"] for a in tables["discount_approvals"]}
    lines = defaultdict(list)
    invoiced = {r["invoice_id"]: r["customer_id"] for r in tables["invoices"]}
    for line in tables["invoice_lines"]:
        lines[f"{invoiced[line['invoice_id']]}:{line['sku']}"].append(line)
    for decoy in manifest["decoys"]:
        entity = decoy["entity_id"]
        if decoy["kind"] == "overbill_credited":
            assert kinds[entity] == {"invoice", "credit_note"}, decoy
        elif decoy["kind"] == "paid_in_two_parts":
            assert paid[entity] == 2, decoy
        elif decoy["kind"] == "approved_discount":
            assert decoy["customer_id"] in approved, decoy
            assert all(Decimal(x["discount_pct"]) > 15 for x in lines[entity]), decoy
        elif decoy["kind"] == "promo_in_validity":
            assert all(x["promo_code"] for x in lines[entity]), decoy
