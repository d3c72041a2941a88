"""How figures read on a terminal: every amount with its currency, time-weighted loss in
base-currency·days, and tables that fit 100 columns (only names are shortened, never ids)."""

from __future__ import annotations

from decimal import Decimal

WIDTH = 100
NONE = "–"


def money(amount: Decimal | float | None, currency: str | None) -> str:
    """``GBP 27,456.00``; a dash when there is no amount."""
    if amount is None:
        return NONE
    return f"{currency or ''} {Decimal(str(amount)):,.2f}".strip()


def whole(value: Decimal | float | int | None) -> str:
    """A count or a loss in whole units (``2,496,259``); a dash when there is none."""
    return NONE if value is None else f"{Decimal(str(value)):,.0f}"


def gap(finding: dict) -> str:
    """The gap in the finding's currency, or the measured rate of a funnel zone."""
    if finding.get("gap_amount") is None:
        rate = finding.get("gap_pct")
        return NONE if rate is None else f"rate {Decimal(str(rate)):.2f}%"
    return money(finding["gap_amount"], finding.get("currency"))


def loss_unit(base_currency: str) -> str:
    return f"{base_currency}·days"


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset(),
          flex: int | None = None, indent: int = 2, width: int = WIDTH) -> list[str]:
    """Aligned lines, columns two spaces apart; the ``flex`` column (a name) is shortened
    with … so the table fits ``width``."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    if flex is not None:
        over = indent + sum(widths) + 2 * (len(widths) - 1) - width
        widths[flex] = max(len(header[flex]), widths[flex] - max(over, 0))

    def line(cells: list[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            cell = str(cell)
            if len(cell) > w:
                cell = cell[:w - 1] + "…"
            out.append(cell.rjust(w) if i in right else cell.ljust(w))
        return (" " * indent + "  ".join(out)).rstrip()

    return [line(header), *(line(r) for r in rows)]
