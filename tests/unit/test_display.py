"""Figures on a terminal: every amount with its currency and cents, counts and losses in whole
units with thousands separators, a dash for nothing, and tables that fit their width."""

from __future__ import annotations

from decimal import Decimal

from revleak import display


def test_money_has_its_currency_separators_and_cents():
    assert display.money(Decimal("27456"), "GBP") == "GBP 27,456.00"
    assert display.money(Decimal("1234567.891"), "EUR") == "EUR 1,234,567.89"
    assert display.money(Decimal("-1500.5"), "USD") == "USD -1,500.50"
    assert display.money(Decimal("0.004"), "USD") == "USD 0.00"
    assert display.money(Decimal("12.5"), None) == "12.50"


def test_a_float_is_read_as_its_shortest_decimal():
    assert display.money(0.1 + 0.2, "USD") == "USD 0.30"  # 0.30000000000000004
    assert display.whole(1e6) == "1,000,000"


def test_nothing_is_a_dash():
    assert display.money(None, "USD") == display.whole(None) == display.NONE == "–"


def test_whole_units():
    assert display.whole(Decimal("2496259.4")) == "2,496,259"
    assert display.whole(Decimal("999.6")) == "1,000"
    assert display.whole(0) == "0"
    assert display.whole(-12345) == "-12,345"


def test_a_gap_is_money_or_a_funnel_zones_rate():
    assert display.gap({"gap_amount": Decimal("3000"), "currency": "EUR"}) == "EUR 3,000.00"
    assert display.gap({"gap_amount": None, "gap_pct": Decimal("35.456")}) == "rate 35.46%"
    assert display.gap({"gap_amount": None, "gap_pct": None}) == "–"
    assert display.gap({}) == "–"


def test_loss_unit_names_the_base_currency():
    assert display.loss_unit("EUR") == "EUR·days"


HEADER = ["customer", "gap"]
ROWS = [["Acme Ltd", "USD 1.00"], ["Globex Corporation", "EUR 12,345.00"]]


def test_columns_are_aligned_two_spaces_apart():
    # customer column 18 wide (the longest name), gap column 13 wide, right-aligned
    assert display.table(HEADER, ROWS, right={1}) == [
        "  customer" + " " * 22 + "gap",
        "  Acme Ltd" + " " * 17 + "USD 1.00",
        "  Globex Corporation  EUR 12,345.00",
    ]


def test_the_flex_column_is_shortened_to_fit_the_width():
    # 2 + 18 + 2 + 13 = 35 columns; 5 too many for 30, so the names get 13
    lines = display.table(HEADER, ROWS, right={1}, flex=0, width=30)
    assert lines == [
        "  customer" + " " * 17 + "gap",
        "  Acme Ltd" + " " * 12 + "USD 1.00",
        "  Globex Corpo…  EUR 12,345.00",
    ]
    assert max(len(line) for line in lines) == 30


def test_the_flex_column_never_gets_narrower_than_its_header():
    lines = display.table(HEADER, ROWS, right={1}, flex=0, width=10)
    assert lines[2] == "  Globex …  EUR 12,345.00"


def test_no_trailing_blanks_and_a_chosen_indent():
    assert display.table(["id", "name"], [["1", "a"]], indent=0) == ["id  name", "1   a"]
