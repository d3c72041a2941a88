"""pricing_drift_quarterly by hand (contract §3): every line of an invoice (not a credit note,
draft or void) issued in the quarter, against the rate card in force on its issue date for its
SKU and currency (a line with no rate card is not judged). The first rule a line breaks:

- unit price ≠ list price: ``grandfathered_rate`` when an earlier rate-card period listed that
  price, else ``price_mismatch``; it should have come to quantity × list × (1 − discount);
- a promo code not valid on the issue date (or unknown): ``expired_promo``; it should have come
  to the line without the promotion's share of the discount (all of it if the code is unknown);
- a non-stackable promotion with a larger discount: ``stacked_discount``, at the promotion;
- a discount above the unapproved maximum with no discount approval covering it (customer,
  SKU or all SKUs, valid on the issue date, max ≥ the discount): ``unapproved_discount``, at
  the maximum.

Lines add up per customer, SKU and category (lines in another currency than the customer's
apart, as customer:sku:currency); |expected − actual| above max(pct × |expected|, min) is a
finding, days from the first such line's issue date.

Subscription drift (docs/pricing.md): for each contract closed won by the as-of date, not
one_time, the as-of date inside its term or auto-renewing, and each SKU of its invoices in the
quarter: per invoice, billed = Σ quantity × unit price, rate card = Σ quantity × list price
(an invoice with a line the rate card lacks, or a rate card of 0, is not judged). The latest
judged invoice (issue date, then id) drifts when |billed − rate card| > limit% × rate card:
expected = rate card, actual = billed, days from the first judged invoice that drifted.
"""

from __future__ import annotations

from fractions import Fraction

from tests.oracle.common import Finding, Fx, Rows, Run, day, flag, moment, money


def rate_card_price(cards: list[dict], sku: str, currency: str, on) -> Fraction | None:
    prices = [c for c in cards if c["sku"] == sku and c["currency"] == currency
              and day(c["effective_from"]) <= on
              and (not c.get("effective_to") or on <= day(c["effective_to"]))]
    return money(max(prices, key=lambda c: c["effective_from"])["list_price"]) if prices else None


def findings(rows: Rows, run: Run) -> list[Finding]:
    as_of = run.as_of
    start = as_of.replace(month=3 * ((as_of.month - 1) // 3) + 1, day=1)
    cap = run.rule("max_unapproved_discount_pct")
    fx = Fx(rows["fx_rates"], run.base_currency)
    invoices = {i["invoice_id"]: i for i in rows["invoices"]
                if (i.get("kind") or "invoice") == "invoice"
                and i["status"] not in ("draft", "void")
                and start <= day(i["issue_date"]) <= as_of}
    promotions = {p["promo_code"]: p for p in rows["promotions"]}
    cards = rows["rate_cards"]
    home = {c["customer_id"]: c["currency"] for c in rows["customers"]}
    drift: dict[tuple[str, str, str, str], list] = {}
    for line in rows["invoice_lines"]:
        inv = invoices.get(line["invoice_id"])
        if inv is None:
            continue
        issued, sku, ccy = day(inv["issue_date"]), line["sku"], inv["currency"]
        listed = rate_card_price(cards, sku, ccy, issued)
        if listed is None:
            continue
        qty, unit = money(line["quantity"]), money(line["unit_price"])
        discount = money(line.get("discount_pct")) or Fraction(0)
        code = line.get("promo_code") or None
        promo = promotions.get(code) if code else None
        promo_pct = money(promo["discount_pct"]) if promo else None
        if unit != listed:
            earlier = any(c["sku"] == sku and c["currency"] == ccy and c.get("effective_to")
                          and day(c["effective_to"]) < issued and money(c["list_price"]) == unit
                          for c in cards)
            category = "grandfathered_rate" if earlier else "price_mismatch"
            should_be = qty * listed * (1 - discount / 100)
        elif code and not (promo and day(promo["valid_from"]) <= issued
                           <= day(promo["valid_to"])):
            category = "expired_promo"
            promo_share = promo_pct if promo_pct is not None else discount
            should_be = qty * unit * (1 - (discount - promo_share) / 100)
        elif code and not flag(promo["stackable"]) and discount > promo_pct:
            category = "stacked_discount"
            should_be = qty * unit * (1 - promo_pct / 100)
        elif discount > cap and not approved(rows, inv["customer_id"], sku, issued, discount):
            category = "unapproved_discount"
            should_be = qty * unit * (1 - cap / 100)
        else:
            continue
        key = (inv["customer_id"], sku, category, ccy)
        drift.setdefault(key, []).append((issued, should_be, money(line["amount"])))
    out = []
    pct, minimum = run.rule("tolerance_pct") / 100, run.rule("tolerance_min")
    for (customer, sku, category, ccy), lines in sorted(drift.items()):
        expected = sum((s for _, s, _ in lines), Fraction(0))
        actual = sum((a for _, _, a in lines), Fraction(0))
        if abs(expected - actual) <= max(abs(expected) * pct, minimum):
            continue
        since = min(issued for issued, _, _ in lines)
        entity = f"{customer}:{sku}" + (f":{ccy}" if ccy != home[customer] else "")
        out.append(run.finding(category, "customer_sku", entity, ccy, expected,
                               actual, expected - actual, fx.rate(ccy, as_of),
                               (as_of - since).days))
    return out + subscription_drift(rows, run, invoices, fx)


def subscription_drift(rows: Rows, run: Run, invoices: dict[str, dict], fx: Fx
                       ) -> list[Finding]:
    as_of, limit = run.as_of, run.rule("subscription_drift_pct")
    contracts = {o["opportunity_id"] for o in rows["opportunities"]
                 if o["stage"] == "closed_won" and o["billing_frequency"] != "one_time"
                 and day(o["contract_start"]) <= as_of
                 and (as_of <= day(o["contract_end"]) or flag(o.get("auto_renew")))
                 and not (o.get("closed_at") and moment(o["closed_at"]) >= run.as_of_end)}
    billed: dict[tuple[str, str], dict[str, list]] = {}
    for line in rows["invoice_lines"]:
        inv = invoices.get(line["invoice_id"])
        if inv is None or inv.get("opportunity_id") not in contracts:
            continue
        issued, ccy = day(inv["issue_date"]), inv["currency"]
        listed = rate_card_price(rows["rate_cards"], line["sku"], ccy, issued)
        qty = money(line["quantity"])
        entry = billed.setdefault((inv["opportunity_id"], line["sku"]), {}).setdefault(
            inv["invoice_id"], [issued, ccy, Fraction(0), Fraction(0), True])
        entry[2] += qty * money(line["unit_price"])
        entry[3] += qty * (listed or 0)
        entry[4] = entry[4] and listed is not None
    out = []
    for (opp, sku), by_invoice in sorted(billed.items()):
        judged = {i: e for i, e in by_invoice.items() if e[4] and e[3] != 0}
        if not judged:
            continue
        drifted = [e for e in judged.values() if abs(e[2] - e[3]) > limit / 100 * abs(e[3])]
        issued, ccy, price, card, _ = judged[max(judged, key=lambda i: (judged[i][0], i))]
        if abs(price - card) <= limit / 100 * abs(card):
            continue
        out.append(run.finding("subscription_drift", "contract_sku", f"{opp}:{sku}", ccy, card,
                               price, card - price, fx.rate(ccy, as_of),
                               (as_of - min(e[0] for e in drifted)).days))
    return out


def approved(rows: Rows, customer: str, sku: str, on, discount: Fraction) -> bool:
    return any(a["customer_id"] == customer and (not a.get("sku") or a["sku"] == sku)
               and day(a["valid_from"]) <= on
               and (not a.get("valid_to") or on <= day(a["valid_to"]))
               and money(a["max_discount_pct"]) >= discount
               for a in rows["discount_approvals"])
