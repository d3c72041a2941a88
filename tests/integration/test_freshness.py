"""Data missing means the books were not delivered (contract §3 Clarifications): freshness is
judged from loads, never from business activity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from revleak import config, pipeline
from revleak.checks import DataMissing
from tests.books import Books

CHECK = "booked_vs_billed_daily"


def monthly_biller(b: Books) -> Books:
    """Five contracts billed in full on the 1st of every month, January to June 2026."""
    for n in range(5):
        opp = f"M{n}"
        b.contract(opp, "12000.00", "2026-01-01", "2026-12-31", "monthly")
        for month in range(1, 7):
            b.invoice(f"{opp}-{month}", opp, f"2026-{month:02}-01", "1000.00")
    return b


def status(conn, check, as_of):
    return conn.execute("select status from revleak.check_runs where check_id = %s and as_of = %s",
                        (check, as_of)).fetchone()[0]


def test_a_monthly_biller_is_judged_on_every_day_of_the_month(conn, tmp_path):
    monthly_biller(Books()).load(conn, tmp_path)
    for day in range(2, 31):  # weeks without an invoice: a quiet month, not missing data
        pipeline.run_check(CHECK, date(2026, 6, day))
    conn.commit()
    statuses = conn.execute("select status, count(*) from revleak.check_runs group by 1").fetchall()
    assert statuses == [("succeeded", 29)]
    assert conn.execute("select count(*) from revleak.findings where status = 'open'"
                        ).fetchone()[0] == 0  # billed in full: nothing to find


def test_a_run_dated_after_the_latest_load_refuses_and_writes_no_finding(conn, tmp_path):
    b = monthly_biller(Books())
    b.contract("LEAK", "12000.00", "2026-01-01", "2026-12-31", "monthly")  # never billed
    b.load(conn, tmp_path)
    today = datetime.now(UTC).date()
    with pytest.raises(DataMissing) as refused:
        pipeline.run_check(CHECK, today)
    message = str(refused.value)
    for source in ("opportunities", "invoices", "invoice_lines"):
        assert f"{source} was last loaded {today:%Y-%m-%d}" in message
    assert "before the end of the as-of date" in message and "revleak load" in message
    conn.commit()
    assert status(conn, CHECK, today) == "data_missing"
    assert conn.execute("select count(*) from revleak.finding_history").fetchone()[0] == 0
    assert conn.execute("select count(*) from revleak.findings").fetchone()[0] == 0
    # the same books judge an older date normally (a backfill with books loaded today)
    pipeline.run_check(CHECK, date(2026, 6, 15))
    conn.commit()
    assert status(conn, CHECK, date(2026, 6, 15)) == "succeeded"
    assert conn.execute("select count(*) from revleak.findings where entity_id = 'LEAK'"
                        ).fetchone()[0] == 1


def test_an_empty_source_is_data_missing_and_names_what_to_load(conn, tmp_path):
    Books().contract("A", "1200.00", "2026-01-01", "2026-12-31", "monthly").load(conn, tmp_path)
    with pytest.raises(DataMissing, match=r"invoices is empty: load invoices.csv"):
        pipeline.run_check(CHECK, date(2026, 6, 1))


def test_reference_tables_may_be_empty(conn, tmp_path):
    b = Books()
    b.contract("A", "100.00", "2026-01-01", "2026-12-31", "one_time") \
        .invoice("A1", "A", "2026-02-01", "100.00")
    b.rows["rate_cards"].append({"sku": "PLAN", "currency": "USD", "list_price": "100.00",
                                 "effective_from": "2025-01-01", "effective_to": ""})
    b.load(conn, tmp_path)  # no promotions, no discount approvals: rightly empty
    pipeline.run_check("pricing_drift_quarterly", date(2026, 3, 31))
    conn.commit()
    assert status(conn, "pricing_drift_quarterly", date(2026, 3, 31)) == "succeeded"


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    def write(text: str):  # a new file each time: configurations are cached by path
        path = tmp_path / f"revleak{len(list(tmp_path.glob('revleak*.yaml')))}.yaml"
        path.write_text(text)
        monkeypatch.setenv("REVLEAK_CONFIG", str(path))
        return config.load_config()
    return write


def test_max_age_days_lets_a_source_lag_its_as_of_date(conn, tmp_path, config_file):
    monthly_biller(Books()).load(conn, tmp_path)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    config_file("sources: {invoices: {max_age_days: 1}}")  # loaded today: 1 day before the end
    with pytest.raises(DataMissing, match=r"less 1 day\(s\)"):  # of tomorrow is too old
        pipeline.run_check(CHECK, tomorrow)
    config_file("sources: {invoices: {max_age_days: 2}, opportunities: {max_age_days: 2},"
                " invoice_lines: {max_age_days: 2}}")
    pipeline.run_check(CHECK, tomorrow)
    conn.commit()
    assert status(conn, CHECK, tomorrow) == "succeeded"


def test_a_table_another_tool_fills_names_its_loaded_at_column(conn, tmp_path, config_file):
    monthly_biller(Books()).load(conn, tmp_path)
    conn.execute("alter table revleak.invoices add column etl_loaded_at timestamptz")
    conn.execute("update revleak.invoices set etl_loaded_at = '2026-06-10T08:00:00+00:00'")
    conn.execute("delete from revleak.source_loads where table_name = 'invoices'")
    conn.commit()
    config_file("sources: {invoices: {loaded_at_column: etl_loaded_at}}")
    pipeline.run_check(CHECK, date(2026, 6, 9))  # loaded on the 10th: the 9th is complete
    with pytest.raises(DataMissing, match=r"invoices was last loaded 2026-06-10 08:00 UTC"):
        pipeline.run_check(CHECK, date(2026, 6, 10))
    config_file("sources: {invoices: {loaded_at_column: no_such_column}}")
    with pytest.raises(Exception, match=r"loaded_at_column is not a column"):
        pipeline.run_check(CHECK, date(2026, 6, 9))
