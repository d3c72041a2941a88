"""What a ticket says, without a ticket system: the body rendered from one template (figures
with currency and cents, the owner, the evidence, the event's marker), its plain-text and ADF
forms, the redacted event that names no customer and no money, the small helpers providers
share, and the webhook's signature (contract §5)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from revleak.tickets import text
from revleak.tickets.base import Destination
from revleak.tickets.providers import provider_for
from revleak.tickets.webhook import FIELDS, WebhookProvider

KEY = "a1b2c3d4e5f6a7b8c9d0" + "e" * 44  # the event's idempotency key; its first 20: the ref
REF = "a1b2c3d4e5f6a7b8c9d0"
FP = "0123456789abcdef0123456789abcdef"
REPORT = "https://reports.example.com/billed_vs_collected_weekly_2026-10-04.html#f-0123"
SPECS = Path(__file__).resolve().parents[1] / "specs"


def invoice(**over):
    """A short-paid invoice finding as the outbox holds it."""
    return {
        "action": "open", "fingerprint": FP, "check": "billed_vs_collected_weekly",
        "category": "short_paid", "entity_type": "invoice", "entity_id": "INV-1001",
        "customer_id": "C-ACME", "as_of": "2026-10-04", "currency": "EUR",
        "expected_amount": Decimal("12000.00"), "actual_amount": Decimal("10765.50"),
        "gap_amount": Decimal("1234.50"), "gap_pct": Decimal("10.29"),
        "gap_amount_base": Decimal("1333.26"), "days_outstanding": 12,
        "first_seen_as_of": "2026-09-22", "time_weighted_loss": Decimal("15999.12"),
        "owner": {"team": "Finance", "name": "Finance on call", "email": "finance@example.com"},
        "escalation_owner": {"team": "Finance", "name": "Controller",
                             "email": "controller@example.com"},
        "routed": True, "due_date": "2026-10-09", "report_url": REPORT,
        "evidence": {"invoice_ids": ["INV-1001"], "tolerance": "1.00", "rule_version": "bvc-1"},
        "title": "[revleak] short_paid: invoice INV-1001 —  gap 1234.50\n  EUR", **over}


def lines(event):
    return event["body"].splitlines()


def test_an_open_ticket_carries_the_figures_owner_evidence_and_marker():
    sent = text.render(invoice(), KEY)
    assert (sent["idempotency_key"], sent["ref"]) == (KEY, REF)
    body = lines(sent)
    assert body[0] == ("Short paid on invoice `INV-1001` (customer `C-ACME`), found by "
                       "`billed_vs_collected_weekly` as of 2026-10-04.")
    for line in ("| Expected | EUR 12,000.00 |", "| Actual | EUR 10,765.50 |",
                 "| Gap | EUR 1,234.50 (10.29%) |", "| Gap in base currency | 1,333.26 |",
                 "| Days outstanding | 12 (since 2026-09-22) |",
                 "| Time-weighted loss | 15,999.12 |",
                 "| Owner | Finance on call (Finance, finance@example.com) |",
                 "| Due | 2026-10-09 |", "Invoices: INV-1001.",
                 "Tolerance used: 1.00; rule version bvc-1.",
                 f"Report with this finding: {REPORT}"):
        assert line in body, line
    assert body[-1] == f"Fingerprint: `{FP}` · revleak-event-{REF}"


@pytest.mark.parametrize(("over", "first"), [
    ({"action": "update"}, "**Update as of 2026-10-04:** the gap is now EUR 1,234.50."),
    ({"action": "escalate"}, "**Escalated as of 2026-10-04:** the deadline 2026-10-09 passed "
                             "and the gap is still open."),
    ({"action": "resolve", "resolved_as_of": "2026-10-11"},
     "**Resolved as of 2026-10-11:** the gap is back within tolerance."),
])
def test_each_action_says_what_happened_first(over, first):
    body = lines(text.render(invoice(**over), KEY))
    assert body[0] == first
    if over["action"] == "escalate":
        assert body[1] == "Escalation owner: Controller (Finance, controller@example.com)."
    if over["action"] == "resolve":
        assert body[1] == "It was EUR 1,234.50 (10.29% of expected) when last seen open."


def test_an_unrouted_finding_says_so_and_a_missing_fx_rate_is_named():
    body = lines(text.render(invoice(routed=False, gap_amount_base=None), KEY))
    assert ("| Owner | Finance on call (Finance, finance@example.com) — unrouted: no routing "
            "rule matched |") in body
    assert "| Gap in base currency | no fx rate |" in body


def test_a_redacted_event_names_no_customer_no_entity_and_no_money():
    sent = text.render(invoice(), KEY, redact=True)
    assert sent["redacted"] is True
    assert (sent["customer_id"], sent["entity_id"], sent["gap_pct"], sent["evidence"]) == (
        None, "withheld", None, {})
    assert all(sent[k] is None for k in text.MONEY)
    assert sent["title"] == "[revleak] short_paid: invoice finding 0123456789ab"
    assert (sent["fingerprint"], sent["owner"], sent["due_date"]) == (
        FP, invoice()["owner"], "2026-10-09")
    body = sent["body"]
    for gone in ("C-ACME", "INV-1001", "1,234.50", "1234.5", "12,000", "10,765", "1,333",
                 "15,999", "10.29"):
        assert gone not in body + json.dumps(sent, default=str), gone
    assert lines(sent)[0] == ("Short paid on invoice (withheld), found by "
                              "`billed_vs_collected_weekly` as of 2026-10-04.")
    assert "| Days outstanding | 12 (since 2026-09-22) |" in lines(sent)
    assert ("Customers, amounts and evidence are not sent to this ticket system; the report "
            f"has them: {REPORT}") in lines(sent)
    update = lines(text.render(invoice(action="update"), KEY, redact=True))
    assert update[0] == "**Update as of 2026-10-04:** the gap moved."


def test_the_marker_is_found_in_text_and_in_json():
    body = text.render(invoice(), KEY)["body"]
    assert text.marker(REF) == f"revleak-event-{REF}"
    assert text.carries(body, REF) and text.carries(text.adf(text.plain(body)), REF)
    assert not text.carries(body, "b" * 20)


def test_plain_lines_turn_table_rows_into_label_value():
    markdown = ("**Update:** the gap is `open`.\n\n| | |\n|---|---|\n| Gap | EUR 1.00 (5%) |\n"
                "| Lost | USD 2 | since May |\n| single |\n")
    assert text.plain(markdown) == ["Update: the gap is open.", "", "Gap: EUR 1.00 (5%)",
                                    "Lost: USD 2 | since May", "single"]


def test_adf_is_one_paragraph_per_non_blank_line():
    assert text.adf(["first", "  ", "", "second"]) == {
        "type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "first"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "second"}]}]}


def test_title_is_one_line():
    assert text.title(invoice()) == "[revleak] short_paid: invoice INV-1001 — gap 1234.50 EUR"


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-02", "2026-03-02"), ("2026-03-02T23:15:00-05:00", "2026-03-02"),
    (datetime(2026, 3, 2, 23, 59), "2026-03-02"), (date(2026, 2, 28), "2026-02-28"),
    ("2026-02-30", None), ("soon", None), ("", None), (None, None),
])
def test_day(value, expected):
    assert text.day(value) == expected


def test_labels_are_distinct_non_blank_and_without_spaces():
    assert text.labels("revleak", "Sales Ops", "", None, " Sales  Ops ", "short_paid",
                       "revleak") == ["revleak", "Sales_Ops", "short_paid"]


def test_identity_prefers_the_systems_own_id_then_the_generic_one():
    person = {"jira_account_id": "5b10a2844c20165700ede21g", "account_id": "acc-dana"}
    assert text.identity(person, "jira_account_id") == "5b10a2844c20165700ede21g"
    assert text.identity(person, "github_login") == "acc-dana"
    assert text.identity({"name": "Dana"}, "github_login") is None
    assert text.identity(None, "github_login") is None


def test_who_and_the_notice_for_an_owner_a_system_cannot_assign():
    dana = {"name": "Dana Reyes", "email": "dana@example.com"}
    assert text.who(dana) == "Dana Reyes <dana@example.com>"
    assert text.who({"email": "dana@example.com"}) == "dana@example.com"
    assert text.who(None) == "the owner"
    assert text.unmapped("Jira", "jira_account_id", dana, "acc-dana", "left unassigned") == (
        "Jira refused 'acc-dana' for Dana Reyes <dana@example.com>: set jira_account_id on "
        "this owner in config routing (left unassigned)")
    assert text.unmapped("GitHub", "github_login", dana, None, "no assignee") == (
        "GitHub has no user for Dana Reyes <dana@example.com>: set github_login on this owner "
        "in config routing (no assignee)")


def test_webhook_signature_is_hmac_sha256_of_the_raw_body():
    """RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"."""
    hook = WebhookProvider(Destination("webhook", "https://receiver.example.com/h",
                                       password="Jefe"))
    try:
        assert hook.sign(b"what do ya want for nothing?") == (
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    finally:
        hook.close()


def test_webhook_payload_has_exactly_the_contracts_fields():
    spec = json.loads((SPECS / "revleak-webhook.json").read_text(encoding="utf-8"))
    post = spec["paths"]["/hooks/revleak"]["post"]
    required = post["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert set(FIELDS) == set(required)
    hook = WebhookProvider(Destination("webhook", "https://receiver.example.com/h",
                                       password="s"))
    try:
        payload = hook.payload("open", text.render(invoice(customer_id=None), KEY))
    finally:
        hook.close()
    assert set(payload) == set(required)
    assert payload["customer_id"] is None
    assert payload["title"] == "[revleak] short_paid: invoice INV-1001 — gap 1234.50 EUR"


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), ("true", True), ("YES", True), ("1", True),
    (False, False), ("no", False), ("0", False), ("", False), (None, False)])
def test_a_yes_no_extra(value, expected):
    extra = {} if value is None else {"redact": value}
    assert Destination("webhook", "https://h", extra=extra).flag("redact") is expected


def test_an_unclear_yes_no_extra_or_provider_is_one_line_naming_what_to_set():
    with pytest.raises(ValueError, match=r"^extra.redact must be true or false \(got 'maybe'\)$"):
        provider_for(Destination("webhook", "https://h", extra={"redact": "maybe"}))
    with pytest.raises(ValueError, match="extra.provider must be one of github, jira, "
                                         "servicenow, webhook$"):
        provider_for(Destination("zendesk", "https://h"))
