"""revleak.demo: deterministic, valid books whose manifest is exactly what a correct check finds.

The booked-vs-billed rules are re-implemented here from the contract (§3) and the generator's
brief, independently of the generator, and run over the CSV files it wrote.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta

from revleak import demo, periods
from revleak.tables import TABLES
from tests.contract import CATEGORIES

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
    tables = {}
    for table in TABLES:
        with open(out / f"{table}.csv", newline="", encoding="utf-8") as handle:
            tables[table] = list(csv.DictReader(handle))
    return out, manifest, tables


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
    assert set(manifest["rules"]) == set(seeded)
    for category in CATEGORIES["booked_vs_billed_daily"]:
        assert len(seeded[category]) >= 3, category
        assert len({leak["currency"] for leak in seeded[category]}) >= 2, category
    for category in set(seeded) - CATEGORIES["booked_vs_billed_daily"] - set(demo.ZONES):
        assert len(seeded[category]) >= 2, category
    assert {d["kind"] for d in manifest["decoys"]} == DECOY_KINDS
    decoys = {(d["entity_type"], d["entity_id"]) for d in manifest["decoys"]}
    assert len(decoys) == len(manifest["decoys"])
    assert not decoys & {(x["entity_type"], x["entity_id"]) for x in manifest["leaks"]}


def test_leak_and_decoy_entities_exist(books):
    _, manifest, tables = books
    ids = {
        "opportunity": {r["opportunity_id"] for r in tables["opportunities"]},
        "invoice": {r["invoice_id"] for r in tables["invoices"]},
        "payment": {r["payment_id"] for r in tables["payments"]},
        "zone": set(demo.ZONES),
    }
    customer_of = {r["invoice_id"]: r["customer_id"] for r in tables["invoices"]}
    ids["customer_sku"] = {f"{customer_of[r['invoice_id']]}:{r['sku']}"
                           for r in tables["invoice_lines"]}
    customers = {r["customer_id"] for r in tables["customers"]}
    for entry in manifest["leaks"] + manifest["decoys"]:
        assert entry["entity_id"] in ids[entry["entity_type"]], entry
        assert entry.get("customer_id") in customers | {None}, entry
    for leak in manifest["leaks"]:
        if leak["expected_amount"] is not None:
            gap = Decimal(leak["expected_amount"]) - Decimal(leak["actual_amount"])
            assert Decimal(leak["gap_amount"]) == gap, leak


# --- booked vs billed, recomputed from the CSV files ---------------------------------------


def _tolerance(expected: Decimal) -> Decimal:
    return max(expected * Decimal("0.005"), Decimal(1))


def _periods(row: dict, as_of: date) -> tuple[list[date], int]:
    """Period starts (original term, then auto-renew terms started by as_of) and n."""
    start = date.fromisoformat(row["contract_start"])
    end = date.fromisoformat(row["contract_end"])
    step = {"monthly": 1, "quarterly": 3, "annual": 12}.get(row["billing_frequency"])
    offsets = [0]
    if step:
        while start + relativedelta(months=offsets[-1] + step) <= end:
            offsets.append(offsets[-1] + step)
    starts = [start + relativedelta(months=m) for m in offsets]
    if row["auto_renew"] == "true":
        after = end + timedelta(days=1)
        term = next(m for m in range(1, 121) if start + relativedelta(months=m) == after)
        j = 1
        while start + relativedelta(months=j * term) <= as_of:
            starts += [start + relativedelta(months=j * term + m) for m in offsets]
            j += 1
    return starts, len(offsets)


def _booked_vs_billed(tables: dict, as_of: date) -> tuple[dict, dict, dict]:
    """Every closed-won contract above tolerance: {opportunity_id: (category, gap, days)}."""
    lines = defaultdict(Decimal)
    for line in tables["invoice_lines"]:
        lines[line["invoice_id"]] += Decimal(line["amount"])
    invoices = defaultdict(list)
    for inv in tables["invoices"]:
        if (inv["opportunity_id"] and inv["status"] not in ("draft", "void")
                and date.fromisoformat(inv["issue_date"]) <= as_of):
            invoices[inv["opportunity_id"]].append(
                (inv["issue_date"], inv["invoice_id"], lines[inv["invoice_id"]]))
    renewed = {r["renewal_of"] for r in tables["opportunities"] if r["renewal_of"]}
    found, totals = {}, {"due": defaultdict(Decimal), "billed": defaultdict(Decimal)}
    lag = timedelta(days=31)
    for opp in tables["opportunities"]:
        if opp["stage"] != "closed_won":
            continue
        oid, amount = opp["opportunity_id"], Decimal(opp["amount"])
        starts, n = _periods(opp, as_of)
        per = amount / n
        assert per == per.quantize(CENT), opp
        started = [s for s in starts if s <= as_of]
        due = [s for s in started if s + lag <= as_of]
        due_total, started_total = per * len(due), per * len(started)
        billed = sum((x[2] for x in invoices[oid]), Decimal(0))
        totals["due"][opp["currency"]] += due_total
        totals["billed"][opp["currency"]] += billed
        if due_total - billed > _tolerance(due_total):
            gap = due_total - billed
            oldest = next(s for i, s in enumerate(due) if per * (i + 1) > billed)
            category = "unbilled" if gap >= per else "under_billed"
            found[oid] = (category, gap, (as_of - oldest - lag).days)
        elif billed - started_total > _tolerance(started_total):
            limit, running = started_total + _tolerance(started_total), Decimal(0)
            since = None
            for issued, _, net in sorted(invoices[oid]):
                running += net
                if running > limit:
                    since = date.fromisoformat(issued)
                    break
            found[oid] = ("over_billed", started_total - billed, (as_of - since).days)
        end = date.fromisoformat(opp["contract_end"])
        if (opp["auto_renew"] != "true" and end < as_of - timedelta(days=30)
                and oid not in renewed):
            assert oid not in found, oid  # a renewal miss is otherwise fully billed
            found[oid] = ("renewal_miss", amount, (as_of - end - lag).days)
    return found, totals["due"], totals["billed"]


def test_booked_vs_billed_recomputed_from_the_files(books):
    _, manifest, tables = books
    as_of = date.fromisoformat(manifest["runs"]["booked_vs_billed_daily"]["as_of"])
    found, due, billed = _booked_vs_billed(tables, as_of)
    seeded = {leak["entity_id"]: (leak["category"], Decimal(leak["gap_amount"]),
                                  leak["days_outstanding"])
              for leak in manifest["leaks"] if leak["check"] == "booked_vs_billed_daily"}
    assert {k: (c, g.quantize(CENT), d) for k, (c, g, d) in found.items()} == seeded
    decoys = [d for d in manifest["decoys"] if d["check"] == "booked_vs_billed_daily"]
    assert decoys and not {d["entity_id"] for d in decoys} & set(found)
    totals = manifest["totals"]["booked_vs_billed_daily"]
    for ccy in ("USD", "EUR", "GBP"):
        assert Decimal(totals["due"][ccy]) == due[ccy].quantize(CENT) > 0, ccy
        assert Decimal(totals["billed"][ccy]) == billed[ccy].quantize(CENT) > 0, ccy


def test_decoys_look_like_leaks(books):
    """Each booked-vs-billed decoy sits just inside a rule (not merely a clean contract)."""
    _, manifest, tables = books
    as_of = date.fromisoformat(manifest["as_of"])
    opps = {r["opportunity_id"]: r for r in tables["opportunities"]}
    renewed = {r["renewal_of"] for r in tables["opportunities"] if r["renewal_of"]}
    issued = defaultdict(list)
    for inv in tables["invoices"]:
        issued[inv["opportunity_id"]].append(inv)
    for decoy in manifest["decoys"]:
        opp = opps.get(decoy["entity_id"])
        if decoy["kind"] == "renewal_grace":
            end = date.fromisoformat(opp["contract_end"])
            assert as_of - timedelta(30) <= end <= as_of - timedelta(10)
            assert decoy["entity_id"] not in renewed and opp["auto_renew"] == "false"
        elif decoy["kind"] == "overbill_credited":
            assert {i["kind"] for i in issued[decoy["entity_id"]]} == {"invoice", "credit_note"}
        elif decoy["kind"] == "inside_billing_lag":
            starts, _ = _periods(opp, as_of)
            latest = max(s for s in starts if s <= as_of)
            assert as_of - latest < timedelta(31)
            billed_periods = {i["period_start"] for i in issued[opp["opportunity_id"]]}
            assert latest.isoformat() not in billed_periods


def test_funnel_zones_recomputed_from_the_files(books):
    """The checked week's zones (population, problems, leak states) and its stale deals,
    recomputed from signals, opportunities and events as docs/funnel.md says (UTC)."""
    _, manifest, tables = books
    run = manifest["runs"]["funnel_leak_weekly"]
    first, last = date.fromisoformat(run["window_start"]), date.fromisoformat(run["as_of"])
    start = datetime.fromisoformat(f"{first}T00:00:00+00:00")
    end = datetime.fromisoformat(f"{last + timedelta(days=1)}T00:00:00+00:00")

    def moment(text):
        return datetime.fromisoformat(text)

    events = defaultdict(list)
    for e in tables["opportunity_events"]:
        events[e["opportunity_id"]].append((moment(e["occurred_at"]), e))
    for history in events.values():
        history.sort(key=lambda x: (x[0], x[1]["event_id"]))
    opps = tables["opportunities"]
    contact = {s["signal_id"]: s["contact_key"] for s in tables["inbound_signals"]}
    of_contact, of_signal = defaultdict(list), defaultdict(list)
    for o in opps:
        if o["signal_id"]:
            of_contact[contact[o["signal_id"]]].append(o)
            of_signal[o["signal_id"]].append(o)

    def closed_by(o, at):
        return o["stage"] in ("closed_won", "closed_lost") and (
            not o["closed_at"] or moment(o["closed_at"]) <= at)

    def open_at_end(o):
        return moment(o["created_at"]) < end and not (
            o["stage"] in ("closed_won", "closed_lost")
            and (not o["closed_at"] or moment(o["closed_at"]) < end))

    def within(o, kinds, after, until):
        return [at for at, e in events[o["opportunity_id"]]
                if e["event_type"] in kinds and after <= at <= until]

    zones = {zone: [] for zone in demo.ZONES}  # the leak states of each item
    for s in tables["inbound_signals"]:
        received = moment(s["received_at"])
        if not start <= received < end:
            continue
        captured = [moment(o["created_at"]) for o in of_signal[s["signal_id"]]
                    if moment(o["created_at"]) < end]
        got = []
        if not captured:
            got.append("never_captured")
        elif received.date() not in {c.date() for c in captured}:
            day = received.date()
            late = sum(1 for n in range(1, (min(captured).date() - day).days + 1)
                       if (day + timedelta(days=n)).weekday() < 5)
            got.append("captured_within_a_business_day" if late <= 1
                       else "captured_over_a_business_day_late")
        if s["answered"] == "false" and not any(
                within(o, ("first_response", "touch"), received, received + timedelta(hours=1))
                for o in of_signal[s["signal_id"]] if moment(o["created_at"]) < end):
            got.append("missed_call_no_callback")
        zones["intake"].append(got)
    for o in opps:
        created, history = moment(o["created_at"]), events[o["opportunity_id"]]
        assigned = min((at for at, e in history if e["event_type"] == "assigned"), default=None)
        if start <= created < end:
            got = []
            if assigned is None or assigned > created + timedelta(hours=4):
                got.append("unassigned_past_limit")
            if any(e["event_type"] == "reassigned" and at < end and e["has_note"] != "true"
                   for at, e in history):
                got.append("reassigned_without_note")
            if o["signal_id"] and any(
                    created - timedelta(days=14) <= moment(p["created_at"])
                    and (moment(p["created_at"]), p["opportunity_id"])
                    < (created, o["opportunity_id"])
                    for p in of_contact[contact[o["signal_id"]]]):
                got.append("duplicate")
            if not o["owner"] and open_at_end(o) and not any(
                    e["event_type"] in ("assigned", "reassigned") and at < end
                    for at, e in history):
                got.append("ownerless")
            zones["routing"].append(got)
            if o["intent"] == "high":
                target = created + timedelta(hours=1)
                late = not within(o, ("first_response",), datetime.min.replace(tzinfo=UTC),
                                  target)
                acked = within(o, ("auto_ack",), datetime.min.replace(tzinfo=UTC), target)
                zones["response"].append(["response_past_target", "auto_ack_only"][
                    :int(late) + int(late and bool(acked))])
        if assigned and start <= assigned + timedelta(hours=48) < end:
            deadline, got = assigned + timedelta(hours=48), []
            if not closed_by(o, deadline):
                if len(within(o, ("first_response", "touch"), assigned, deadline)) < 2:
                    got.append("no_second_touch")
                if not within(o, ("next_step_set",), assigned, deadline):
                    got.append("no_next_step")
            steps = [e for at, e in history if e["event_type"] == "next_step_set" and at < end]
            if steps and open_at_end(o):
                due = moment(steps[-1]["next_step_due"])
                if due < end and not [at for at, e in history if due <= at < end and
                                      e["event_type"] in ("first_response", "touch")]:
                    got.append("next_step_overdue")
            zones["follow_up"].append(got)
    stale = {}
    for o in opps:
        if not open_at_end(o):
            continue
        history = events[o["opportunity_id"]]
        active = max([moment(o["created_at"])] + [at for at, e in history
                                                  if e["event_type"] != "auto_ack" and at < end])
        ahead = any(e["event_type"] == "next_step_set" and at < end
                    and moment(e["next_step_due"]).date() >= last for at, e in history)
        got = []
        if o["expected_close_date"] and date.fromisoformat(o["expected_close_date"]) < last \
                and not ahead:
            got.append("past_expected_close")
        if active.date() <= last - timedelta(days=30):
            got.append("silent_drop_off")
            stale[o["opportunity_id"]] = (last - active.date()).days - 30
        zones["close"].append(got)
    seeded = {leak["category"]: leak for leak in manifest["leaks"] if leak["entity_type"] == "zone"}
    assert set(seeded) == set(zones)
    for zone, items in zones.items():
        leak = seeded[zone]
        problems = sum(1 for got in items if got)
        counts = {s: sum(s in got for got in items) for s in leak["states"]}
        assert (leak["population"], leak["problems"], leak["states"]) == (
            len(items), problems, counts), zone
        assert all(counts.values()), f"{zone}: a state never seeded"
        assert {s for got in items for s in got} <= set(leak["states"]), zone
        share = Decimal(100 * (len(items) - problems if zone == "intake" else problems)) / len(
            items)
        assert Decimal(leak["value_pct"]) == share.quantize(CENT), zone
        limit = Decimal(leak["limit_pct"])
        assert share < limit if zone == "intake" else share > limit, zone
    assert {x["entity_id"]: x["days_outstanding"] for x in manifest["leaks"]
            if x["category"] == "stale_deal"} == stale


def _money_findings(tables: dict, runs: dict) -> dict:
    """Collections, recognition and pricing findings: {(check, category, entity): (gap, days)}."""
    net = defaultdict(Decimal)
    for line in tables["invoice_lines"]:
        net[line["invoice_id"]] += Decimal(line["amount"])
    invoices = [i for i in tables["invoices"]
                if i["kind"] in ("", "invoice") and i["status"] not in ("draft", "void")]
    found = {}
    # billed vs collected, as of the checked week's Sunday
    check = "billed_vs_collected_weekly"
    as_of = date.fromisoformat(runs[check]["as_of"])
    tried = defaultdict(list)
    for pay in tables["payments"]:
        if datetime.fromisoformat(pay["attempted_at"]).date() <= as_of:
            tried[pay["invoice_id"]].append(pay)
    for inv in invoices:
        if date.fromisoformat(inv["issue_date"]) > as_of:
            continue
        due = date.fromisoformat(inv["due_date"])
        pays = tried[inv["invoice_id"]]
        paid = sum((Decimal(p["amount"]) for p in pays if p["status"] == "succeeded"), Decimal(0))
        gap = net[inv["invoice_id"]] - paid
        if due < as_of and gap > _tolerance(net[inv["invoice_id"]]):
            statuses = {p["status"] for p in pays}
            category = ("disputed" if "disputed" in statuses else "payment_failed"
                        if "failed" in statuses and not paid else "short_paid" if paid
                        else "unpaid")
            found[(check, category, inv["invoice_id"])] = (gap, (as_of - due).days)
    for pay in tried[""]:
        if pay["status"] == "succeeded":
            day = datetime.fromisoformat(pay["attempted_at"]).date()
            found[(check, "unapplied_cash", pay["payment_id"])] = (Decimal(pay["amount"]),
                                                                   (as_of - day).days)
    # recognized vs collected, as of the quarter's last day
    check = "recognized_vs_collected_quarterly"
    as_of = date.fromisoformat(runs[check]["as_of"])
    old = defaultdict(list)
    for entry in tables["gl_entries"]:
        posted = date.fromisoformat(entry["posted_date"])
        if entry["account"] == "revenue" and posted < as_of - timedelta(days=90):
            old[entry["invoice_id"]].append((posted, Decimal(entry["amount"])))
    collected = defaultdict(Decimal)
    for pay in tables["payments"]:
        day = datetime.fromisoformat(pay["attempted_at"]).date()
        if pay["status"] == "succeeded" and day <= as_of:
            collected[pay["invoice_id"]] += Decimal(pay["amount"])
    for inv in invoices:
        if old[inv["invoice_id"]]:
            recognized = sum(amount for _, amount in old[inv["invoice_id"]])
            gap = recognized - collected[inv["invoice_id"]]
            if gap > _tolerance(recognized):
                first = min(posted for posted, _ in old[inv["invoice_id"]])
                found[(check, "recognized_not_collected", inv["invoice_id"])] = (
                    gap, (as_of - first - timedelta(days=91)).days)
    deposits = defaultdict(list)
    for txn in tables["bank_transactions"]:
        deposits[txn["reference"]].append(date.fromisoformat(txn["booked_date"]))
    for pay in tables["payments"]:
        day = datetime.fromisoformat(pay["attempted_at"]).date()
        if pay["status"] == "succeeded" and day <= as_of - timedelta(days=5) and not any(
                day <= booked <= day + timedelta(days=5) for booked in deposits[pay["payment_id"]]):
            found[(check, "payment_not_deposited", pay["payment_id"])] = (
                Decimal(pay["amount"]), (as_of - day - timedelta(days=5)).days)
    # pricing drift: lines issued in the quarter
    check = "pricing_drift_quarterly"
    as_of, start = date.fromisoformat(runs[check]["as_of"]), date.fromisoformat(
        runs[check]["window_start"])
    cards = defaultdict(list)
    for card in tables["rate_cards"]:
        cards[(card["sku"], card["currency"])].append(card)
    promos = {p["promo_code"]: p for p in tables["promotions"]}
    approvals = defaultdict(list)
    for approval in tables["discount_approvals"]:
        approvals[approval["customer_id"]].append(approval)
    header = {i["invoice_id"]: i for i in invoices}
    sums = defaultdict(lambda: [Decimal(0), Decimal(0), None])
    for line in tables["invoice_lines"]:
        inv = header.get(line["invoice_id"])
        if not inv or not start <= date.fromisoformat(inv["issue_date"]) <= as_of:
            continue
        issued, ccy = inv["issue_date"], inv["currency"]
        qty, price = Decimal(line["quantity"]), Decimal(line["unit_price"])
        disc = Decimal(line["discount_pct"] or 0)
        rows = cards[(line["sku"], ccy)]
        current = next(Decimal(c["list_price"]) for c in rows if c["effective_from"] <= issued
                       and (not c["effective_to"] or issued <= c["effective_to"]))
        promo = promos.get(line["promo_code"])
        if price != current:
            ended = {Decimal(c["list_price"]) for c in rows
                     if c["effective_to"] and c["effective_to"] < issued}
            category = "grandfathered_rate" if price in ended else "price_mismatch"
            expected = qty * current * (1 - disc / 100)
        elif promo and not promo["valid_from"] <= issued <= promo["valid_to"]:
            category = "expired_promo"
            expected = qty * price * (1 - (disc - Decimal(promo["discount_pct"])) / 100)
        elif promo and promo["stackable"] == "false" and disc > Decimal(promo["discount_pct"]):
            category = "stacked_discount"
            expected = qty * price * (1 - Decimal(promo["discount_pct"]) / 100)
        elif disc > 15 and not any(
                a["sku"] in ("", line["sku"]) and a["valid_from"] <= issued
                and (not a["valid_to"] or issued <= a["valid_to"])
                and Decimal(a["max_discount_pct"]) >= disc for a in approvals[inv["customer_id"]]):
            category, expected = "unapproved_discount", qty * price * Decimal("0.85")
        else:
            continue
        agg = sums[(check, category, f"{inv['customer_id']}:{line['sku']}")]
        agg[0] += expected
        agg[1] += Decimal(line["amount"])
        agg[2] = min(agg[2] or issued, issued)
    for key, (expected, actual, first) in sums.items():
        found[key] = (expected - actual, (as_of - date.fromisoformat(first)).days)
    return found


def test_collections_recognition_and_pricing_recomputed_from_the_files(books):
    _, manifest, tables = books
    found = _money_findings(tables, manifest["runs"])
    seeded = {(leak["check"], leak["category"], leak["entity_id"]):
              (Decimal(leak["gap_amount"]), leak["days_outstanding"])
              for leak in manifest["leaks"]
              if leak["check"] not in ("booked_vs_billed_daily", "funnel_leak_weekly")}
    assert {k: (gap.quantize(CENT), days) for k, (gap, days) in found.items()} == seeded
    decoys = {d["entity_id"] for d in manifest["decoys"]}
    assert not decoys & {entity for _, _, entity in found}
