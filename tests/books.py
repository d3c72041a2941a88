"""Hand-built books for rule-boundary tests: write contract CSVs, load them, check them."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from revleak import loader
from revleak.tables import TABLES

TS = "2024-01-01T00:00:00+00:00"


@dataclass
class Books:
    rows: dict[str, list[dict]] = field(default_factory=lambda: {t: [] for t in TABLES})

    def customer(self, customer_id: str, currency: str = "USD") -> Books:
        self.rows["customers"].append({"customer_id": customer_id, "name": customer_id,
                                       "currency": currency, "created_at": TS})
        return self

    def contract(self, opportunity_id: str, amount: str, start: str, end: str,
                 frequency: str = "monthly", currency: str = "USD", auto_renew: bool = False,
                 customer_id: str | None = None, renewal_of: str = "",
                 stage: str = "closed_won", created_at: str = TS) -> Books:
        customer_id = customer_id or f"C-{opportunity_id}"
        if not any(c["customer_id"] == customer_id for c in self.rows["customers"]):
            self.customer(customer_id, currency)
        self.rows["opportunities"].append({
            "opportunity_id": opportunity_id, "customer_id": customer_id, "created_at": created_at,
            "channel": "referral", "intent": "high", "stage": stage,
            "amount": amount if stage == "closed_won" else "", "currency": currency,
            "closed_at": TS if stage == "closed_won" else "",
            "contract_start": start if stage == "closed_won" else "",
            "contract_end": end if stage == "closed_won" else "",
            "billing_frequency": frequency if stage == "closed_won" else "",
            "auto_renew": str(auto_renew).lower(), "renewal_of": renewal_of})
        return self

    def invoice(self, invoice_id: str, opportunity_id: str, issue_date: str, *amounts: str,
                status: str = "paid", kind: str = "invoice", currency: str | None = None) -> Books:
        opp = next(o for o in self.rows["opportunities"] if o["opportunity_id"] == opportunity_id)
        self.rows["invoices"].append({
            "invoice_id": invoice_id, "customer_id": opp["customer_id"],
            "opportunity_id": opportunity_id, "issue_date": issue_date, "due_date": issue_date,
            "currency": currency or opp["currency"], "status": status, "kind": kind})
        for n, amount in enumerate(amounts, 1):
            self.rows["invoice_lines"].append({
                "invoice_id": invoice_id, "line_no": n, "sku": "PLAN", "quantity": "1",
                "unit_price": amount.lstrip("-"), "amount": amount})
        return self

    def bill(self, invoice_id: str, customer_id: str, issue_date: str, due_date: str,
             amount: str, currency: str = "USD", status: str = "open") -> Books:
        """A stand-alone invoice of one line (no contract), for collection checks."""
        if not any(c["customer_id"] == customer_id for c in self.rows["customers"]):
            self.customer(customer_id, currency)
        self.rows["invoices"].append({
            "invoice_id": invoice_id, "customer_id": customer_id, "issue_date": issue_date,
            "due_date": due_date, "currency": currency, "status": status, "kind": "invoice"})
        self.rows["invoice_lines"].append({
            "invoice_id": invoice_id, "line_no": 1, "sku": "PLAN", "quantity": "1",
            "unit_price": amount, "amount": amount})
        return self

    def payment(self, payment_id: str, invoice_id: str | None, amount: str, attempted_at: str,
                status: str = "succeeded", customer_id: str | None = None,
                currency: str = "USD") -> Books:
        if customer_id is None:
            customer_id = next(i["customer_id"] for i in self.rows["invoices"]
                               if i["invoice_id"] == invoice_id)
        self.rows["payments"].append({
            "payment_id": payment_id, "invoice_id": invoice_id or "", "customer_id": customer_id,
            "amount": amount, "currency": currency, "attempted_at": attempted_at,
            "status": status, "method": "card"})
        return self

    def heartbeat(self, issue_date: str) -> Books:
        """A contract billed in full on ``issue_date``: proof the billing export is live."""
        self.contract("HEARTBEAT", "10.00", "2024-01-01", "2030-12-31", "one_time")
        return self.invoice("HB1", "HEARTBEAT", issue_date, "10.00")

    def fx(self, currency: str, rate_date: str, rate: str) -> Books:
        self.rows["fx_rates"].append({"currency": currency, "rate_date": rate_date,
                                      "rate_to_base": rate})
        return self

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for table, rows in self.rows.items():
            if not rows:
                continue
            with open(directory / f"{table}.csv", "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=TABLES[table].column_names)
                w.writeheader()
                w.writerows(rows)
        return directory

    def load(self, conn, directory: Path) -> None:
        _, results = loader.load(conn, self.write(directory))
        bad = [(r.table, r.quarantined, r.error) for r in results if r.quarantined or r.error]
        assert not bad, bad
