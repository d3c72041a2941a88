"""Charts as inline SVG: well-formed, ids of their own, the same bytes for the same figures,
and every point, bar and limit line where its figure puts it on the axes (coordinates computed
here from the axes' box, the dates and the values)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from revleak.registry import CHECK_IDS
from revleak.reports import charts
from tests.contract import CATEGORIES

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
START, END = date(2026, 9, 7), date(2026, 9, 28)
POINTS = ((date(2026, 9, 7), Decimal("97")), (date(2026, 9, 14), Decimal("93")),
          (date(2026, 9, 21), Decimal("95")), (date(2026, 9, 28), Decimal("99")))
GREEN = "#009e73"


def groups(svg: str) -> dict[str, ET.Element]:
    return {g.get("id"): g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("id")}


def coords(path: ET.Element) -> list[tuple[float, float]]:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d"))]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def near(points: list[tuple[float, float]]):
    """The points, to the SVG's precision (coordinates are written to 6 digits)."""
    return pytest.approx([c for point in points for c in point], abs=0.01)


def flat(points: list[tuple[float, float]]) -> list[float]:
    return [c for point in points for c in point]


def box(g: ET.Element) -> tuple[float, float, float, float]:
    xs, ys = zip(*coords(g.find(f"{SVG}path")), strict=True)
    return min(xs), max(xs), min(ys), max(ys)


def texts(svg: str) -> list[str]:
    """Text drawn as paths keeps its words in a comment."""
    return re.findall(r"<!-- (.*?) -->", svg)


def rate(above_is_bad: bool) -> str:
    return charts.rate_trend.__wrapped__("realization", "Realization", POINTS, Decimal("95"),
                                         "alarm 95%", START, END, "#009E73", above_is_bad)


@pytest.mark.parametrize(("above_is_bad", "bad"), [(False, [93]), (True, [97, 99])])
def test_rate_points_limit_and_alarms_sit_at_their_figures(above_is_bad, bad):
    svg = rate(above_is_bad)
    g = groups(svg)
    left, right, top, bottom = box(g["realization-patch_2"])  # the axes' background
    # x: the period one day either side, Sep 6 to Sep 29 (23 days); y: 93 to 99 padded by
    # 1 point (15% of the range is less), so 92 at the bottom, 100 at the top
    def x(day):
        return left + (day - (START - timedelta(days=1))).days / 23 * (right - left)

    def y(value):
        return bottom - (float(value) - 92) / 8 * (bottom - top)

    lines = [p for grp in g.values() for p in grp.findall(f"{SVG}path")
             if f"stroke: {GREEN}" in (p.get("style") or "")
             and "stroke-width: 1.6" in p.get("style")]
    assert len(lines) == 1
    assert flat(coords(lines[0])) == near([(x(d), y(v)) for d, v in POINTS])

    limit = [flat(coords(p)) for grp in g.values() for p in grp.findall(f"{SVG}path")
             if "stroke-dasharray" in (p.get("style") or "") and "#d55e00" in p.get("style")
             and coords(p)[0][0] == pytest.approx(left, abs=0.01)]
    assert limit == [near([(left, y(95)), (right, y(95))])]

    alarms = [(float(u.get("x")), float(u.get("y")))
              for u in g["realization-PathCollection_1"].iter(f"{SVG}use")]
    expected = [(x(d), y(v)) for d, v in POINTS if v in bad]
    assert flat(alarms) == near(expected)
    assert {"alarm 95%", "beyond the limit", "Realization", "%"} <= set(texts(svg))


def test_bars_are_as_long_as_their_amounts_in_their_categorys_colour():
    bars = (("unbilled", Decimal("300")), ("under_billed", Decimal("150")),
            ("renewal_miss", Decimal("75")))
    svg = charts.category_bars.__wrapped__("bars", "Open", bars, "USD")
    g = groups(svg)
    left, right, _, _ = box(g["bars-patch_2"])
    scale = (right - left) / (300 * 1.18)  # the axis ends 18% past the longest bar
    drawn = [g[f"bars-patch_{n}"] for n in (3, 4, 5)]
    spans = [box(d) for d in drawn]
    assert [s[1] - s[0] for s in spans] == pytest.approx([300 * scale, 150 * scale,
                                                          75 * scale], abs=0.01)
    assert all(s[0] == pytest.approx(left) for s in spans)
    assert spans[0][2] < spans[1][2] < spans[2][2], "listed top to bottom"
    fills = [d.find(f"{SVG}path").get("style") for d in drawn]
    assert "fill: #0072b2" in fills[0]  # the first category: solid
    root = ET.fromstring(svg)
    for style, colour in zip(fills[1:], ("#e69f00", "#cc79a7"), strict=True):
        pattern = re.search(r"fill: url\(#([^)]+)\)", style)[1]  # hatched over the colour
        rect = root.find(f".//{SVG}pattern[@id='{pattern}']/{SVG}rect")
        assert rect.get("fill") == colour
    words = texts(svg)  # the category labels, then each bar's amount at its end
    start = words.index("unbilled")
    assert words[start:start + 6] == ["unbilled", "under billed", "renewal miss", "300", "150",
                                      "75"]


def test_money_axes_read_in_short_form_with_the_currency():
    points = ((date(2026, 7, 6), Decimal("12000")), (date(2026, 8, 3), Decimal("1500000")),
              (date(2026, 9, 7), Decimal("800000")))
    svg = charts.money_trend.__wrapped__("open", "Open leakage", points, "USD",
                                         date(2026, 7, 6), date(2026, 9, 7), "#0072B2")
    assert {"0", "500k", "1m", "1.5m", "USD", "Open leakage"} <= set(texts(svg))


def test_zone_panels_are_titled_with_their_limits():
    zones = [("intake", POINTS, Decimal("95"), True), ("routing", POINTS, Decimal("10"), False)]
    svg = charts.zone_trends("zones", zones, START, END)
    assert {"intake (min 95%)", "routing (max 10%)"} <= set(texts(svg))


def test_same_figures_same_bytes_and_each_charts_ids_its_own():
    first, again = rate(False), rate(False)
    assert first == again
    other = charts.category_bars.__wrapped__("bars", "Open", (("unpaid", Decimal(1)),), "USD")
    for svg, name in ((first, "realization"), (other, "bars")):
        root = ET.fromstring(svg)
        assert (root.tag, root.get("role"), root.get("aria-label")) == (f"{SVG}svg", "img", name)
        assert "<metadata>" not in svg
        ids = [e.get("id") for e in root.iter() if e.get("id")]
        assert len(ids) == len(set(ids)) and all(i.startswith(f"{name}-") for i in ids)
        refs = {e.get(XLINK)[1:] for e in root.iter() if e.get(XLINK)}
        refs |= set(re.findall(r"url\(#([^)]+)\)", svg))
        assert refs and refs <= set(ids)


@pytest.mark.parametrize(("category", "style"), [
    ("unbilled", ("#0072B2", "")), ("under_billed", ("#E69F00", "//")),
    ("payment_failed", ("#009E73", "..")), ("subscription_drift", ("#56B4E9", "++")),
    ("stale_deal", ("#56B4E9", "++")), ("no_such_category", ("#999999", "")),
])
def test_a_categorys_colour_and_hatch_follow_its_place_in_its_check(category, style):
    assert charts.category_style(category) == style


def test_every_check_has_a_colour_a_title_and_the_contracts_categories():
    assert set(charts.CHECK_COLOURS) == set(charts.CHECK_TITLES) == set(CHECK_IDS)
    assert len(set(charts.CHECK_COLOURS.values())) == len(CHECK_IDS)
    for check, categories in CATEGORIES.items():
        assert categories <= set(charts.CATEGORIES[check]), check
