"""The contract's input tables (CANONICAL_MODEL.md §2): columns, types, keys, in load order.

A column spec reads ``type`` or ``type?`` (may be empty), then ``=default`` when the table
fills an empty value; enum types list their values, decimals their numeric(precision, scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHANNELS = "phone|web_form|chat|whatsapp|email|marketplace|referral|walk_in|outbound"
STAGES = "new|qualified|meeting|proposal|negotiation|closed_won|closed_lost"
INTENTS = "high|medium|low"
# numeric(precision, scale) of the canonical columns (sql/schema/0001_canonical_model.sql)
PRECISION = {"money": (18, 4), "pct": (7, 4)}
# Identifiers are indexed (keys, references, lookups), so they must fit an index entry.
KEY_NAMES = {"reference", "sku", "promo_code", "contact_key", "renewal_of"}
MAX_KEY_BYTES = 2000


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # text | date | ts | money | decimal | int | pct | bool | ccy | enum
    required: bool
    values: tuple[str, ...] = ()
    precision: tuple[int, int] | None = None  # numeric(precision, scale)
    default: str | None = None  # what an empty value becomes
    key: bool = False  # an identifier: at most MAX_KEY_BYTES


@dataclass(frozen=True)
class Table:
    name: str
    pk: tuple[str, ...]
    columns: tuple[Column, ...]
    # column → (parent table, parent key column)
    references: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _table(name: str, pk: str, spec: str, references: dict | None = None) -> Table:
    keys, references = pk.split(","), references or {}
    cols = []
    for item in spec.split():
        col, _, typ = item.partition(":")
        typ, _, default = typ.partition("=")
        required = not typ.endswith("?")
        typ = typ.rstrip("?")
        values: tuple[str, ...] = ()
        precision = PRECISION.get(typ)
        if typ.startswith("enum("):
            values = tuple(typ[5:-1].split("|"))
            typ = "enum"
        elif typ.startswith("decimal("):
            precision = tuple(int(n) for n in typ[8:-1].split(","))
            typ = "decimal"
        key = typ == "text" and (col in keys or col in references or col.endswith("_id")
                                 or col in KEY_NAMES)
        cols.append(Column(col, typ, required, values, precision, default or None, key))
    return Table(name, tuple(keys), tuple(cols), references)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        _table(
            "customers", "customer_id",
            "customer_id:text name:text segment:enum(smb|mid|enterprise)? region:text? "
            "currency:ccy created_at:ts",
        ),
        _table(
            "inbound_signals", "signal_id",
            f"signal_id:text received_at:ts channel:enum({CHANNELS}) intent:enum({INTENTS}) "
            "contact_key:text source:text? answered:bool?",
        ),
        _table(
            "opportunities", "opportunity_id",
            f"opportunity_id:text customer_id:text? signal_id:text? created_at:ts "
            f"channel:enum({CHANNELS}) intent:enum({INTENTS}) team:text? owner:text? "
            f"stage:enum({STAGES}) amount:money? currency:ccy? expected_close_date:date? "
            "closed_at:ts? "
            "close_reason:enum(won|lost_to_competitor|no_decision|no_budget|unresponsive|other)? "
            "contract_start:date? contract_end:date? "
            "billing_frequency:enum(one_time|monthly|quarterly|annual)? auto_renew:bool? "
            "renewal_of:text? source:text?",
            {"customer_id": ("customers", "customer_id"),
             "signal_id": ("inbound_signals", "signal_id"),
             "renewal_of": ("opportunities", "opportunity_id")},
        ),
        _table(
            "invoices", "invoice_id",
            "invoice_id:text customer_id:text opportunity_id:text? issue_date:date due_date:date "
            "currency:ccy status:enum(draft|open|paid|void|uncollectible) period_start:date? "
            "period_end:date? kind:enum(invoice|credit_note)?=invoice",
            {"customer_id": ("customers", "customer_id"),
             "opportunity_id": ("opportunities", "opportunity_id")},
        ),
        _table(
            "invoice_lines", "invoice_id,line_no",
            "invoice_id:text line_no:int sku:text quantity:decimal(18,6) unit_price:money "
            "discount_pct:pct? promo_code:text? amount:money",
            {"invoice_id": ("invoices", "invoice_id")},
        ),
        _table(
            "payments", "payment_id",
            "payment_id:text invoice_id:text? customer_id:text amount:money currency:ccy "
            "attempted_at:ts status:enum(succeeded|failed|pending|refunded|disputed) "
            "failure_code:text? method:enum(card|ach|wire|other)?",
            {"invoice_id": ("invoices", "invoice_id"),
             "customer_id": ("customers", "customer_id")},
        ),
        _table(
            "bank_transactions", "txn_id",
            "txn_id:text booked_date:date amount:money currency:ccy reference:text? "
            "counterparty:text?",
        ),
        _table(
            "gl_entries", "entry_id",
            "entry_id:text posted_date:date "
            "account:enum(revenue|deferred_revenue|accounts_receivable|cash|other) "
            "customer_id:text? invoice_id:text? amount:money currency:ccy",
            {"customer_id": ("customers", "customer_id"),
             "invoice_id": ("invoices", "invoice_id")},
        ),
        _table(
            "rate_cards", "sku,currency,effective_from",
            "sku:text currency:ccy list_price:money effective_from:date effective_to:date?",
        ),
        _table(
            "promotions", "promo_code",
            "promo_code:text discount_pct:pct valid_from:date valid_to:date stackable:bool",
        ),
        _table(
            "discount_approvals", "approval_id",
            "approval_id:text customer_id:text sku:text? max_discount_pct:pct approved_by:text "
            "valid_from:date valid_to:date?",
            {"customer_id": ("customers", "customer_id")},
        ),
        _table(
            "fx_rates", "currency,rate_date",
            "currency:ccy rate_date:date rate_to_base:decimal(24,10)",
        ),
        _table(
            "opportunity_events", "event_id",
            "event_id:text opportunity_id:text occurred_at:ts "
            "event_type:enum(assigned|reassigned|auto_ack|first_response|touch|next_step_set|"
            f"stage_changed|note) actor:text? team:text? next_step_due:ts? "
            f"stage_to:enum({STAGES})? has_note:bool?",
            {"opportunity_id": ("opportunities", "opportunity_id")},
        ),
    )
}
