"""Price signals (docs/pricing.md): one event per subscription drift and price — across a
rerun, a backfill, a dry run and both pricing checks — and a new one when the price changes;
delivered signed to a receiver on 127.0.0.1, a 500 retried with the same Idempotency-Key, a
wrong secret refused at once, and without a connection one line saying what waits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from revleak import findings, pipeline, price_signals
from revleak.price_signals import SignalsFailed, SignalsRefused
from tests.books import Books
from tests.integration.test_subscription_drift import billed, card
from tests.ticket_fakes.price_signals import PriceSignalReceiver

QUARTERLY, ON_CHANGE = "pricing_drift_quarterly", "pricing_drift_on_change"
Q3, Q2 = date(2026, 9, 30), date(2026, 6, 30)
YEAR = ("2026-01-01", "2026-12-31")


@pytest.fixture
def books(conn, tmp_path):
    """K51 bills PLAN at 105.10 against a rate card of 100.00 every month from April (5.1%,
    a drift in Q2 and Q3); KQ bills 3 SUITE at 110.00 against 100.00 for its July quarter
    (10%); K49 bills 104.90 (4.9%, no drift)."""
    b = Books()
    card(b, "PLAN", "100.00")
    card(b, "SUITE", "100.00")
    b.contract("K51", "1200.00", *YEAR)
    for month in (4, 7, 8, 9):
        billed(b, f"K51-{month}", "K51", f"2026-{month:02d}-01", ("PLAN", "1", "105.10", ""))
    b.contract("KQ", "1200.00", *YEAR, frequency="quarterly")
    billed(b, "KQ-7", "KQ", "2026-07-01", ("SUITE", "3", "110.00", ""))
    b.contract("K49", "1200.00", *YEAR)
    billed(b, "K49-7", "K49", "2026-07-01", ("PLAN", "1", "104.90", ""))
    b.load(conn, tmp_path / "books")
    return b


def signals(conn) -> list[tuple]:
    return conn.execute(
        "select payload ->> 'opportunity_id', payload ->> 'sku',"
        " (payload ->> 'billed_price')::numeric, check_id, as_of, status"
        " from revleak.price_signals order by signal_id").fetchall()


def test_one_signal_per_drift_across_reruns_backfills_and_both_checks(conn, books, tmp_path):
    pipeline.run_check(QUARTERLY, Q3)
    conn.commit()
    first = [("K51", "PLAN", Decimal("105.10"), QUARTERLY, Q3, "pending"),
             ("KQ", "SUITE", Decimal("330.00"), QUARTERLY, Q3, "pending")]
    assert signals(conn) == first
    payload = conn.execute("select payload from revleak.price_signals"
                           " where payload ->> 'sku' = 'PLAN'").fetchone()[0]
    finding = next(f for f in findings.query(conn, QUARTERLY, Q3)
                   if f["entity_id"] == "K51:PLAN")
    assert {k: payload[k] for k in (
        "kind", "customer_id", "customer_name", "opportunity_id", "sku", "currency",
        "billing_frequency", "contract_price", "billed_price", "rate_card_price", "drift_pct",
        "limit_pct", "annualized_impact", "check", "as_of", "fingerprint")} == {
        "kind": "subscription_drift", "customer_id": "C-K51", "customer_name": "C-K51",
        "opportunity_id": "K51", "sku": "PLAN", "currency": "USD",
        "billing_frequency": "monthly", "contract_price": 100.0, "billed_price": 105.1,
        "rate_card_price": 100.0, "drift_pct": 5.1, "limit_pct": 5,
        "annualized_impact": -61.2, "check": QUARTERLY, "as_of": "2026-09-30",
        "fingerprint": finding["fingerprint"]}

    pipeline.run_check(QUARTERLY, Q3)  # a rerun
    pipeline.run_check(QUARTERLY, Q2)  # a backfill: K51's same drift in the quarter before
    pipeline.run_check(ON_CHANGE, Q3)  # the other pricing check, on the same and an
    pipeline.run_check(ON_CHANGE, date(2026, 9, 15))  # earlier day
    conn.commit()
    assert any(f["entity_id"] == "K51:PLAN" for f in findings.query(conn, QUARTERLY, Q2))
    assert any(f["category"] == "subscription_drift"
               for f in findings.query(conn, ON_CHANGE, Q3))
    assert signals(conn) == first

    # the price changes: September's invoice bills 106.00 — a new drift price, a new signal
    books.rows["invoice_lines"] = [
        {**line, "unit_price": "106.00", "amount": "106.00"} if line["invoice_id"] == "K51-9"
        else line for line in books.rows["invoice_lines"]]
    books.load(conn, tmp_path / "changed")
    pipeline.run_check(ON_CHANGE, Q3)
    pipeline.run_check(QUARTERLY, Q3)
    conn.commit()
    assert signals(conn) == [*first, ("K51", "PLAN", Decimal("106.00"), ON_CHANGE, Q3,
                                      "pending")]


def test_a_dry_run_raises_no_signal(conn, books):
    pipeline.run_check(QUARTERLY, Q3, dry_run=True)
    conn.commit()
    assert signals(conn) == []


def test_delivered_signed_once_and_a_500_retried_with_the_same_key(conn, books, monkeypatch):
    pipeline.run_check(QUARTERLY, Q3)
    conn.commit()
    with PriceSignalReceiver() as receiver:
        monkeypatch.setenv(price_signals.ENV_VAR, receiver.connection_uri())
        receiver.fail_next(1, status=500)
        with pytest.raises(SignalsFailed) as failed:
            price_signals.send()
        assert not isinstance(failed.value, SignalsRefused)
        message = str(failed.value)
        assert "\n" not in message and "HTTP 500" in message and "0 price signals delivered, " \
            "2 pending" in message and receiver.password not in message
        assert conn.execute("select attempts, last_error is not null from revleak.price_signals"
                            " order by signal_id").fetchall() == [(1, True), (0, False)]

        assert price_signals.send() == ("2 price signals delivered, 0 pending "
                                        "(revleak_price_signals)")
        keys = [k for (k,) in conn.execute("select signal_key from revleak.price_signals"
                                           " order by signal_id")]
        assert [s["headers"]["Idempotency-Key"] for s in receiver.signals] == keys
        posted = [r.headers["Idempotency-Key"] for r in receiver.requests_log]
        assert posted == [keys[0], *keys]  # the retry carried the failed attempt's key
        assert [s["payload"]["sku"] for s in receiver.signals] == ["PLAN", "SUITE"]
        assert conn.execute("select status, attempts, last_error from revleak.price_signals"
                            " order by signal_id").fetchall() == [("delivered", 2, None),
                                                                  ("delivered", 1, None)]

        pipeline.run_check(ON_CHANGE, Q3)  # the same drifts: nothing new to send
        assert price_signals.send() == ("0 price signals delivered, 0 pending "
                                        "(revleak_price_signals)")
        assert len(receiver.requests_log) == 3


def test_a_wrong_secret_is_refused_at_once_and_the_task_fails_without_retry(conn, books,
                                                                            monkeypatch):
    """The DAG task: a failed delivery is raised for Airflow to retry; a refusal fails the task
    at once (a person must fix the connection). Either way the signals stay pending."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from revleak import airflow_dags

    pipeline.run_check(QUARTERLY, Q3)
    conn.commit()
    task = airflow_dags.check_dag(QUARTERLY, "doc").get_task("send_price_signals")
    monkeypatch.setattr(airflow_dags, "get_current_context",
                        lambda: {"params": {"dry_run": False}})
    with PriceSignalReceiver() as receiver:
        monkeypatch.setenv(price_signals.ENV_VAR, receiver.connection_uri("not-the-secret"))
        with pytest.raises(AirflowFailException, match="HTTP 401") as refused:
            task.python_callable()
        assert "not-the-secret" not in str(refused.value)
        monkeypatch.setenv(price_signals.ENV_VAR, receiver.connection_uri())
        receiver.fail_next(1, status=503)
        with pytest.raises(AirflowException, match="HTTP 503") as failed:
            task.python_callable()
        assert not isinstance(failed.value, AirflowFailException)
        assert receiver.signals == []
        assert task.python_callable() == ("2 price signals delivered, 0 pending "
                                          "(revleak_price_signals)")


def test_without_a_connection_the_signals_wait_and_one_line_says_so(conn, books,
                                                                    monkeypatch):
    monkeypatch.delenv(price_signals.ENV_VAR, raising=False)
    pipeline.run_check(QUARTERLY, Q3)
    conn.commit()
    assert price_signals.send() == (
        "2 price signals wait: no connection revleak_price_signals; set "
        "AIRFLOW_CONN_REVLEAK_PRICE_SIGNALS='https://:<signing secret>@receiver.example.com"
        "/hooks/prices' (a webhook) to send them")
    assert [s[-1] for s in signals(conn)] == ["pending", "pending"]
