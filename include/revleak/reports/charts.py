"""Charts for reports and the page, drawn by matplotlib as inline SVG.

One colour per check and per category everywhere (Okabe-Ito, safe for colour-blind readers),
hatches where categories share a chart so they read in black-and-white print too. The SVG
is byte-identical for the same figures: fixed hash salt, no date, ids prefixed per chart.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442",
             "#000000")
CHECK_COLOURS = {
    "booked_vs_billed_daily": "#0072B2",
    "billed_vs_collected_weekly": "#009E73",
    "funnel_leak_weekly": "#E69F00",
    "recognized_vs_collected_quarterly": "#CC79A7",
    "pricing_drift_quarterly": "#D55E00",
    "pricing_drift_on_change": "#56B4E9",
}
CHECK_TITLES = {
    "booked_vs_billed_daily": "Booked vs billed",
    "billed_vs_collected_weekly": "Billed vs collected",
    "funnel_leak_weekly": "Funnel leaks",
    "recognized_vs_collected_quarterly": "Recognized vs collected",
    "pricing_drift_quarterly": "Pricing drift",
    "pricing_drift_on_change": "Pricing drift on change",
}
CATEGORIES = {  # each check's categories (contract §4), in the order reports list them
    "booked_vs_billed_daily": ("unbilled", "under_billed", "over_billed", "renewal_miss"),
    "billed_vs_collected_weekly": ("unpaid", "short_paid", "payment_failed", "disputed",
                                   "unapplied_cash"),
    "funnel_leak_weekly": ("intake", "routing", "response", "follow_up", "close",
                           "stale_deal"),
    "recognized_vs_collected_quarterly": ("recognized_not_collected", "payment_not_deposited"),
    "pricing_drift_quarterly": ("price_mismatch", "grandfathered_rate", "expired_promo",
                                "stacked_discount", "unapproved_discount", "subscription_drift"),
}
HATCHES = ("", "//", "..", "xx", "\\\\", "++")
ALARM = "#D55E00"
INK = "#1d2733"


def category_style(category: str) -> tuple[str, str]:
    """The colour and hatch of a category: its place among its check's categories."""
    for names in CATEGORIES.values():
        if category in names:
            i = names.index(category)
            return OKABE_ITO[i], HATCHES[i]
    return "#999999", ""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


STYLE = {"svg.hashsalt": "revleak", "svg.fonttype": "path", "font.size": 8,
         "axes.edgecolor": "#8a96a3", "axes.labelcolor": INK, "xtick.color": INK,
         "ytick.color": INK, "axes.spines.top": False, "axes.spines.right": False,
         "axes.titlesize": 9, "axes.titleweight": "bold", "legend.fontsize": 7,
         "legend.frameon": False}


def _svg(fig, name: str) -> str:
    """The figure as an inline <svg> element whose ids cannot clash with another chart's."""
    plt = _plt()
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = out.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    svg = re.sub(r'id="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{name}" class="chart" ', 1)


def _date_axis(ax, start: date, end: date, max_ticks: int = 7) -> None:
    """A real time axis over the period shown, also when there is a single point."""
    import matplotlib.dates as mdates

    lo, hi = (start, end) if start < end else (start - timedelta(days=3), end + timedelta(days=3))
    ax.set_xlim(lo - timedelta(days=1), hi + timedelta(days=1))
    locator = mdates.AutoDateLocator(minticks=2, maxticks=max_ticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _money_axis(axis, currency: str) -> None:
    """Amounts on an axis in short form (12k, 1.5m) with the currency as its label."""
    from matplotlib.ticker import FuncFormatter

    def fmt(v, _):
        for size, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
            if abs(v) >= size:
                return f"{v / size:,.4g}{suffix}"
        return f"{v:,.0f}"

    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_label_text(currency)


@lru_cache(maxsize=256)
def rate_trend(name: str, title: str, points: tuple[tuple[date, Decimal], ...], limit: Decimal,
               limit_label: str, start: date, end: date, colour: str,
               above_is_bad: bool = False) -> str:
    """A rate in % over time against its limit line (realization, a funnel zone)."""
    import matplotlib

    plt = _plt()
    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 2.2))
        xs, ys = [p[0] for p in points], [float(p[1]) for p in points]
        ax.axhline(float(limit), color=ALARM, linewidth=1, linestyle="--", label=limit_label)
        if xs:
            ax.plot(xs, ys, color=colour, marker="o", markersize=3.5, linewidth=1.6)
            bad = [(x, y) for x, y in zip(xs, ys, strict=True)
                   if (y > float(limit)) == above_is_bad and y != float(limit)]
            if bad:
                ax.scatter(*zip(*bad, strict=True), marker="X", s=36, color=ALARM, zorder=3,
                           label="beyond the limit")
        lo = min([*ys, float(limit)], default=float(limit))
        hi = max([*ys, float(limit)], default=float(limit))
        pad = max((hi - lo) * 0.15, 1.0)
        ax.set_ylim(max(lo - pad, 0), min(hi + pad, 100) if hi <= 100 else hi + pad)
        ax.set_ylabel("%")
        ax.set_title(title, loc="left")
        _date_axis(ax, start, end)
        ax.legend(loc="lower left")
        ax.grid(axis="y", color="#e3e8ee", linewidth=0.6)
        fig.tight_layout()
        return _svg(fig, name)


@lru_cache(maxsize=256)
def money_trend(name: str, title: str, points: tuple[tuple[date, Decimal], ...],
                currency: str, start: date, end: date, colour: str) -> str:
    """Open leakage in base currency over time (one check)."""
    import matplotlib

    plt = _plt()
    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 1.9))
        xs, ys = [p[0] for p in points], [float(p[1]) for p in points]
        if xs:
            ax.fill_between(xs, ys, step="post", color=colour, alpha=0.18, linewidth=0)
            ax.step(xs, ys, where="post", color=colour, linewidth=1.6)
            ax.plot(xs, ys, linestyle="none", marker="o", markersize=3, color=colour)
        ax.set_ylim(bottom=0, top=max([*ys, 1.0]) * 1.15)
        _money_axis(ax.yaxis, currency)
        ax.set_title(title, loc="left", color=colour)
        _date_axis(ax, start, end)
        ax.grid(axis="y", color="#e3e8ee", linewidth=0.6)
        fig.tight_layout()
        return _svg(fig, name)


@lru_cache(maxsize=256)
def category_bars(name: str, title: str, bars: tuple[tuple[str, Decimal], ...],
                  unit: str) -> str:
    """One horizontal bar per category (or bucket), in the category's colour and hatch."""
    import matplotlib

    plt = _plt()
    with matplotlib.rc_context({**STYLE, "hatch.color": "#ffffff", "hatch.linewidth": 0.8}):
        fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.32 * max(len(bars), 1)))
        labels = [b[0].replace("_", " ") for b in bars]
        values = [float(b[1]) for b in bars]
        styles = [category_style(b[0]) for b in bars]
        ax.barh(range(len(bars)), values, color=[s[0] for s in styles],
                hatch=[s[1] for s in styles] if bars else None, edgecolor="white")
        ax.set_yticks(range(len(bars)), labels)
        ax.invert_yaxis()
        for i, v in enumerate(values):
            ax.annotate(f"{v:,.0f}", (v, i), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7, color=INK)
        ax.set_xlim(0, max([*values, 1.0]) * 1.18)
        _money_axis(ax.xaxis, unit)
        ax.set_title(title, loc="left")
        fig.tight_layout()
        return _svg(fig, name)


@lru_cache(maxsize=64)
def aging_bars(name: str, title: str, buckets: tuple[tuple[str, Decimal, int], ...],
               currency: str, colour: str) -> str:
    """Amount per aging bucket with the number of items above each bar; darker as it ages."""
    import matplotlib
    from matplotlib.colors import to_rgb

    plt = _plt()
    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.4, 2.3))
        base = to_rgb(colour)
        n = max(len(buckets) - 1, 1)
        shades = [tuple(1 - (1 - c) * (0.35 + 0.65 * i / n) for c in base)
                  for i in range(len(buckets))]
        values = [float(b[1]) for b in buckets]
        ax.bar([b[0] for b in buckets], values, color=shades, edgecolor=colour)
        for i, b in enumerate(buckets):
            ax.annotate(f"{b[2]:,}", (i, values[i]), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=7, color=INK)
        ax.set_ylim(0, max([*values, 1.0]) * 1.2)
        _money_axis(ax.yaxis, currency)
        ax.set_xlabel("days past due")
        ax.set_title(title, loc="left")
        fig.tight_layout()
        return _svg(fig, name)


def zone_trends(name: str, zones: Sequence[tuple[str, tuple[tuple[date, Decimal], ...],
                                                  Decimal, bool]],
                start: date, end: date) -> str:
    """The funnel's zones side by side: each zone's rate over the weeks against its limit."""
    return _zone_trends(name, tuple(zones), start, end)


@lru_cache(maxsize=64)
def _zone_trends(name, zones, start, end) -> str:
    import matplotlib

    plt = _plt()
    with matplotlib.rc_context({**STYLE, "font.size": 7}):
        fig, axes = plt.subplots(1, max(len(zones), 1), figsize=(7.0, 1.9), sharey=False,
                                 squeeze=False)
        for ax, (zone, points, limit, floor) in zip(axes[0], zones, strict=False):
            colour = category_style(zone)[0]
            xs, ys = [p[0] for p in points], [float(p[1]) for p in points]
            ax.axhline(float(limit), color=ALARM, linewidth=1, linestyle="--")
            if xs:
                ax.plot(xs, ys, color=colour, marker="o", markersize=2.5, linewidth=1.4)
            values = [*ys, float(limit)]
            pad = max((max(values) - min(values)) * 0.2, 2.0)
            ax.set_ylim(max(min(values) - pad, 0), min(max(values) + pad, 100))
            ax.set_title(f"{zone.replace('_', ' ')} ({'min' if floor else 'max'} "
                         f"{float(limit):g}%)", loc="left", fontsize=7, color=INK)
            _date_axis(ax, start, end, max_ticks=3)
            ax.tick_params(axis="x", labelsize=6)
        fig.tight_layout()
        return _svg(fig, name)
