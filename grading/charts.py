"""Small server-rendered SVG charts for the instructor's analytics pages.

Every chart is built as an `xml.etree` tree and serialised by it, so text and
attribute values are always escaped (a check named `<script>` is shown as text, never
run) and the markup is always well-formed. Only the elements made here exist: no
script, no event handler, no `<style>` element, no external reference; colours are
presentation attributes, which the site's CSP (`style-src 'self'`) allows. Each
chart is an `<svg role="img">` labelled by its own `<title>` and `<desc>`; the pages
show the same numbers as a table beside it, for screen readers and for copying.

Why not pygal: it has no heatmap, its tooltips load JavaScript from a CDN unless
turned off, and it writes an inline `<style>` element that the CSP would block.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

INK = "#1b2430"
MUTED = "#5b6573"
GRID = "#dde3ea"
BRAND = "#0b5cad"
BAD = "#b42318"
OK = "#17803d"
SERIES_COLOURS = (BRAND, "#c2410c", OK, "#7c3aed")

WIDTH = 640
FONT = "system-ui, sans-serif"
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _svg(title: str, desc: str, width: int, height: int) -> ET.Element:
    n = next(_ids)
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height}",
            "width": "100%",
            "role": "img",
            "aria-labelledby": f"chart-{n}-title chart-{n}-desc",
            "class": "chart",
            "font-family": FONT,
            "font-size": "12",
        },
    )
    ET.SubElement(svg, "title", {"id": f"chart-{n}-title"}).text = title
    ET.SubElement(svg, "desc", {"id": f"chart-{n}-desc"}).text = desc
    return svg


def _text(parent: ET.Element, x: float, y: float, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", "fill": INK, **attrs})
    element.text = text
    return element


def _rect(parent: ET.Element, x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> ET.Element:
    rect = ET.SubElement(
        parent,
        "rect",
        {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{max(w, 0):.1f}", "height": f"{max(h, 0):.1f}", "fill": fill},
    )
    if tip:  # a native tooltip: no script needed
        ET.SubElement(rect, "title").text = tip
    return rect


def _line(parent: ET.Element, x1: float, y1: float, x2: float, y2: float, stroke: str = GRID) -> None:
    ET.SubElement(
        parent, "line", {"x1": f"{x1:.1f}", "y1": f"{y1:.1f}", "x2": f"{x2:.1f}", "y2": f"{y2:.1f}", "stroke": stroke}
    )


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^n at or above `value` (an axis's top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10**exponent
        if top >= value - 1e-12:
            return float(top)
    return float(10 ** (exponent + 1))


def count_axis_top(value: float) -> float:
    """An axis top whose four gridlines fall on whole numbers (bars that count people)."""
    return 4 * max(1.0, nice_max(value / 4))


def _render(svg: ET.Element) -> SafeString:
    return mark_safe(ET.tostring(svg, encoding="unicode"))  # noqa: S308 (built and escaped by ElementTree)


def _y_axis(svg: ET.Element, *, left: float, right: float, top: float, bottom: float, y_max: float, unit: str) -> None:
    for i in range(5):
        value = y_max * i / 4
        y = bottom - (bottom - top) * i / 4
        _line(svg, left, y, right, y)
        _text(svg, left - 6, y + 4, f"{value:g}{unit}", **{"text-anchor": "end", "fill": MUTED})


def bar_chart(
    *,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[float],
    y_max: float | None = None,
    unit: str = "",
    x_title: str = "",
    colour: str = BRAND,
    value_labels: Sequence[str] | None = None,
) -> SafeString:
    """Vertical bars, one per label (a histogram when the labels are bins). Without
    `y_max` the values are counts and the axis is whole numbers."""
    height = 300
    left, right, top, bottom = 56.0, WIDTH - 16.0, 16.0, height - 56.0
    svg = _svg(title, desc, WIDTH, height)
    top_value = y_max if y_max is not None else count_axis_top(max(values, default=0))
    _y_axis(svg, left=left, right=right, top=top, bottom=bottom, y_max=top_value, unit=unit)
    slot = (right - left) / max(len(labels), 1)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = (bottom - top) * (value / top_value if top_value else 0)
        x = left + i * slot
        shown = value_labels[i] if value_labels else f"{value:g}{unit}"
        _rect(svg, x + slot * 0.15, bottom - h, slot * 0.7, h, colour, f"{label}: {shown}")
        if value:
            _text(svg, x + slot / 2, bottom - h - 4, shown, **{"text-anchor": "middle", "font-size": "11"})
        _text(svg, x + slot / 2, bottom + 16, _short(label, 14), **{"text-anchor": "middle", "fill": MUTED})
    _line(svg, left, bottom, right, bottom, MUTED)
    if x_title:
        _text(svg, (left + right) / 2, height - 12, x_title, **{"text-anchor": "middle"})
    return _render(svg)


def hbar_chart(
    *, title: str, desc: str, labels: Sequence[str], values: Sequence[float], of: float | None = None
) -> SafeString:
    """Horizontal bars, longest first as given (a funnel when `of` is the first step):
    each bar is labelled with its count and, with `of`, its share of `of`."""
    row = 28
    label_w = 230.0
    height = 24 + row * max(len(labels), 1)
    svg = _svg(title, desc, WIDTH, height)
    top_value = max([*values, of or 0, 1])
    width = WIDTH - label_w - 90
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 12 + i * row
        share = f" ({100 * value / of:.0f}%)" if of else ""
        shown = f"{value:g}{share}"
        _text(svg, label_w - 8, y + 17, _short(label, 34), **{"text-anchor": "end"})
        _rect(svg, label_w, y + 4, width * value / top_value, row - 8, BRAND, f"{label}: {shown}")
        _text(svg, label_w + width * value / top_value + 6, y + 17, shown, fill=MUTED)
    return _render(svg)


def _heat(value: float) -> str:
    """White (0) to the site's red (1)."""
    v = min(max(value, 0.0), 1.0)
    r, g, b = (int(round(255 + (c - 255) * v)) for c in (0xB4, 0x23, 0x18))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    *,
    title: str,
    desc: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    x_title: str = "",
) -> SafeString:
    """A grid of shares (0..1): one row per `rows` label, one column per `columns`
    label; None is an empty cell (nothing to measure)."""
    label_w = 230.0
    cell_h = 26
    cell_w = min(60.0, (WIDTH - label_w - 16) / max(len(columns), 1))
    height = 60 + cell_h * max(len(rows), 1)
    svg = _svg(title, desc, WIDTH, height)
    for j, column in enumerate(columns):
        _text(svg, label_w + j * cell_w + cell_w / 2, 16, column, **{"text-anchor": "middle", "fill": MUTED})
    for i, (label, cells) in enumerate(zip(rows, values, strict=True)):
        y = 24 + i * cell_h
        _text(svg, label_w - 8, y + cell_h / 2 + 4, _short(label, 34), **{"text-anchor": "end"})
        for j, value in enumerate(cells):
            x = label_w + j * cell_w
            if value is None:
                _rect(svg, x + 1, y + 1, cell_w - 2, cell_h - 2, "#f7f9fb", f"{label}, {columns[j]}: no attempts")
                continue
            _rect(svg, x + 1, y + 1, cell_w - 2, cell_h - 2, _heat(value), f"{label}, {columns[j]}: {100 * value:.0f}%")
            _text(
                svg,
                x + cell_w / 2,
                y + cell_h / 2 + 4,
                f"{100 * value:.0f}",
                **{"text-anchor": "middle", "font-size": "11", "fill": "#fff" if value > 0.55 else INK},
            )
    if x_title:
        _text(svg, label_w + cell_w * len(columns) / 2, height - 10, x_title, **{"text-anchor": "middle"})
    return _render(svg)


def line_chart(
    *, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", x_title: str = ""
) -> SafeString:
    """One line per series over the labels (days); a None value breaks the line."""
    height = 300
    left, right, top, bottom = 56.0, WIDTH - 16.0, 30.0, height - 56.0
    svg = _svg(title, desc, WIDTH, height)
    known = [v for s in series for v in s.values if v is not None]
    top_value = nice_max(max(known, default=0))
    _y_axis(svg, left=left, right=right, top=top, bottom=bottom, y_max=top_value, unit=unit)
    n = len(labels)

    def x_at(i: int) -> float:
        return left + (right - left) * (i + 0.5) / max(n, 1)

    def y_at(v: float) -> float:
        return bottom - (bottom - top) * v / top_value

    every = max(1, math.ceil(n / 8))
    for i, label in enumerate(labels):
        if i % every == 0:
            _text(svg, x_at(i), bottom + 16, label, **{"text-anchor": "middle", "fill": MUTED})
    for k, s in enumerate(series):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x_at(i):.1f},{y_at(v):.1f}")
            dot = ET.SubElement(
                svg, "circle", {"cx": f"{x_at(i):.1f}", "cy": f"{y_at(v):.1f}", "r": "3", "fill": colour}
            )
            ET.SubElement(dot, "title").text = f"{s.name}, {labels[i]}: {v:g}{unit}"
        for run in runs:
            if len(run) > 1:
                ET.SubElement(
                    svg, "polyline", {"points": " ".join(run), "fill": "none", "stroke": colour, "stroke-width": "2"}
                )
        # Legend, top left.
        _rect(svg, left + k * 170, 8, 12, 12, colour)
        _text(svg, left + k * 170 + 18, 18, _short(s.name, 24))
    _line(svg, left, bottom, right, bottom, MUTED)
    if x_title:
        _text(svg, (left + right) / 2, height - 12, x_title, **{"text-anchor": "middle"})
    return _render(svg)
