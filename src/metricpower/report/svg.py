"""Small charts written directly as SVG: sharp at any zoom, text as text, a few
kilobytes each, and drawn in about a millisecond (Matplotlib's layout engine took most of
the report's time). Each function returns an `SVG`, which a report embeds as a data: URI
and a notebook shows as it is.

Charts: horizontal bars, vertical grouped or stacked bars, lines and stacked areas, steps,
a scatter, a heatmap and a dot plot; linear or log value axes with round ticks.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

from metricpower.report.html import esc

W = 760                     # drawing width in SVG units (the image scales to its column)
FONT = 12
MUTED = "#555"
GRID = "#e3e3e3"


@dataclass(frozen=True)
class SVG:
    """An SVG document; `uri` for an <img>, `_repr_svg_` for Jupyter."""

    text: str

    @property
    def uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.text.encode()).decode()

    def _repr_svg_(self) -> str:
        return self.text

    def save(self, path) -> None:
        from pathlib import Path

        Path(path).write_text(self.text, encoding="utf-8")


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1:
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out, v = [], start
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


class Axis:
    """A value axis: linear from a round floor to a round ceiling, or log10 over whole
    decades; `pos(v)` maps a value into [0, 1]."""

    def __init__(self, values, log: bool = False, zero: bool = True,
                 bounds: tuple[float, float] | None = None):
        vals = [v for v in values if v is not None and math.isfinite(v)]
        self.log = log
        if log:
            pos = [v for v in vals if v > 0] or [1.0]
            self.lo = 10 ** math.floor(math.log10(min(pos)))
            self.hi = 10 ** math.ceil(math.log10(max(pos)))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
            self.ticks = [10 ** e for e in range(round(math.log10(self.lo)),
                                                 round(math.log10(self.hi)) + 1)]
            return
        if bounds is not None:
            lo, hi = bounds
        else:
            lo = min(vals + ([0.0] if zero else [])) if vals else 0.0
            hi = max(vals + ([0.0] if zero else [])) if vals else 1.0
        if hi == lo:
            lo, hi = (lo - 1, hi + 1) if lo else (0.0, 1.0)
        self.ticks = nice_ticks(lo, hi)
        self.lo = min(self.ticks[0], lo) if bounds is None else lo
        self.hi = max(self.ticks[-1], hi) if bounds is None else hi
        self.ticks = [t for t in self.ticks if self.lo - 1e-9 <= t <= self.hi + 1e-9]

    def pos(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            return (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) -
                                                            math.log10(self.lo))
        return (v - self.lo) / (self.hi - self.lo)


def _doc(width: int, height: int, body: list[str], title: str) -> SVG:
    return SVG(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="system-ui, -apple-system, '
               f'Segoe UI, Roboto, sans-serif" font-size="{FONT}" role="img">'
               f"<title>{esc(title)}</title>"
               f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) +
               "</svg>")


def _text(x, y, s, anchor="start", size=FONT, colour="#222", weight="normal", rotate=None,
          baseline="middle") -> str:
    rot = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{colour}" font-weight="{weight}" dominant-baseline="{baseline}"{rot}>'
            f"{esc(s)}</text>")


def _legend(items: list[tuple[str, str]], x: float, y: float, width: float) -> tuple[list, float]:
    """Swatches in rows from (x, y); returns the elements and the height used."""
    out, cx, cy = [], x, y
    for name, colour in items:
        w = 18 + 6.6 * len(name) + 14
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 18
        out.append(f'<rect x="{cx:.1f}" y="{cy - 5:.1f}" width="12" height="10" '
                   f'fill="{colour}"/>')
        out.append(_text(cx + 16, cy, name, size=11))
        cx += w
    return out, (cy - y + 18) if items else 0


class Frame:
    """The plot area of one chart: margins, a title, a legend, then the data area."""

    def __init__(self, height: int, title: str = "", legend=None, left: int = 64,
                 right: int = 20, bottom: int = 44, width: int = W):
        self.width, self.height = width, height
        self.body: list[str] = []
        top = 10
        if title:
            self.body.append(_text(left, 16, title, weight="bold", size=13))
            top = 30
        if legend:
            items, used = _legend(legend, left, top + 4, width - left - right)
            self.body += items
            top += used + 4
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = top + 6, height - bottom

    def px(self, t: float) -> float:
        return self.x0 + t * (self.x1 - self.x0)

    def py(self, t: float) -> float:
        return self.y1 - t * (self.y1 - self.y0)

    def y_axis(self, axis: Axis, label: str = "", fmt=fmt_tick) -> None:
        for t in axis.ticks:
            y = self.py(axis.pos(t))
            self.body.append(f'<line x1="{self.x0}" x2="{self.x1}" y1="{y:.1f}" '
                             f'y2="{y:.1f}" stroke="{GRID}"/>')
            self.body.append(_text(self.x0 - 6, y, fmt(t), anchor="end", size=11,
                                   colour=MUTED))
        if label:
            mid = (self.y0 + self.y1) / 2
            self.body.append(_text(14, mid, label, anchor="middle", size=11, colour=MUTED,
                                   rotate=-90))

    def x_axis(self, axis: Axis, label: str = "", fmt=fmt_tick) -> None:
        for t in axis.ticks:
            x = self.px(axis.pos(t))
            self.body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.y0}" '
                             f'y2="{self.y1}" stroke="{GRID}"/>')
            self.body.append(_text(x, self.y1 + 12, fmt(t), anchor="middle", size=11,
                                   colour=MUTED))
        if label:
            self.body.append(_text((self.x0 + self.x1) / 2, self.height - 10, label,
                                   anchor="middle", size=11, colour=MUTED))

    def baseline(self) -> None:
        self.body.append(f'<line x1="{self.x0}" x2="{self.x1}" y1="{self.y1}" '
                         f'y2="{self.y1}" stroke="#888"/>')

    def svg(self, title: str) -> SVG:
        return _doc(self.width, self.height, self.body, title)


def hbars(labels: list[str], series: list[tuple[str, list[float], object]], xlabel: str,
          title: str = "", log: bool = False, overlay: bool = True,
          signed: bool = False) -> SVG:
    """Horizontal bars, one row per label. `series`: (name, values, colour or a colour per
    row); overlaid (later series drawn over earlier, narrower) or side by side."""
    n = len(labels)
    left = min(300, 16 + int(6.4 * max((len(s) for s in labels), default=4)))
    legend = [(name, c) for name, _, c in series if name and isinstance(c, str)]
    row = 22 if len(series) == 1 or overlay else 12 * len(series) + 8
    top = 30 + (22 if legend else 0)
    f = Frame(top + row * max(n, 1) + 50, title, legend, left=left)
    values = [v for _, vals, _ in series for v in vals]
    axis = Axis(values, log=log)
    f.x_axis(axis, xlabel)
    zero = f.px(axis.pos(axis.lo if log else 0.0))
    step = (f.y1 - f.y0) / max(n, 1)
    for i, lab in enumerate(labels):
        cy = f.y0 + step * (i + 0.5)
        f.body.append(_text(f.x0 - 6, cy, lab, anchor="end", size=11))
        for k, (name, vals, colour) in enumerate(series):
            v = vals[i]
            if v is None or (log and v <= 0):
                continue
            c = colour[i] if isinstance(colour, list) else colour
            if overlay:
                h = step * (0.7 if k == 0 else 0.36)
                y = cy - h / 2
            else:
                h = step * 0.8 / len(series)
                y = cy - step * 0.4 + k * h
            x = f.px(axis.pos(v))
            x0, x1 = sorted((zero, x))
            f.body.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 0.8):.1f}" '
                          f'height="{h:.1f}" fill="{c}"><title>{esc(lab)} — {esc(name)}: '
                          f"{esc(fmt_value(v))}</title></rect>")
    if signed or not log:
        f.body.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{f.y0}" y2="{f.y1}" '
                      'stroke="#333"/>')
    return f.svg(title or xlabel)


def fmt_value(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,.0f}"


def vbars(categories: list[str], series: list[tuple[str, list[float], str]], ylabel: str,
          title: str = "", stacked: bool = False, log: bool = False, height: int = 300,
          fmt=fmt_tick, labels: bool = False, ref: float | None = None,
          bounds: tuple[float, float] | None = None) -> SVG:
    """Vertical bars by category, grouped or stacked, with an optional reference line;
    `labels` writes each bar's value above it with `fmt`."""
    legend = [(name, c) for name, _, c in series if name] if len(series) > 1 else []
    longest = max((len(c) for c in categories), default=4)
    slanted = longest * 6.4 > (W - 100) / max(len(categories), 1)
    bottom = 44 + (int(longest * 3.3) if slanted else 0)
    f = Frame(height + (bottom - 44), title, legend, bottom=bottom)
    if stacked:
        totals = [sum((s[1][i] or 0) for s in series) for i in range(len(categories))]
        axis = Axis(totals + ([ref] if ref is not None else []), log=log, bounds=bounds)
    else:
        axis = Axis([v for s in series for v in s[1]] + ([ref] if ref is not None else []),
                    log=log, bounds=bounds)
    f.y_axis(axis, ylabel)
    step = (f.x1 - f.x0) / max(len(categories), 1)
    for i, cat in enumerate(categories):
        cx = f.x0 + step * (i + 0.5)
        if slanted:
            f.body.append(_text(cx, f.y1 + 10, cat, anchor="end", size=11, rotate=-30))
        else:
            f.body.append(_text(cx, f.y1 + 14, cat, anchor="middle", size=11))
        below = axis.lo if log else 0.0
        for k, (name, vals, colour) in enumerate(series):
            v = vals[i]
            if v is None or (log and v <= 0):
                continue
            if stacked:
                w, x = step * 0.7, cx - step * 0.35
                lo, hi = below, below + v
                below = hi
            else:
                w = step * 0.8 / len(series)
                x = cx - step * 0.4 + k * w
                lo, hi = (axis.lo if log else 0.0), v
            y_hi, y_lo = f.py(axis.pos(hi)), f.py(axis.pos(lo))
            y, h = min(y_hi, y_lo), abs(y_lo - y_hi)
            f.body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                          f'height="{max(h, 0.8):.1f}" fill="{colour}"><title>{esc(cat)} — '
                          f"{esc(name)}: {esc(fmt_value(v))}</title></rect>")
            if labels:
                f.body.append(_text(x + w / 2, y - 7, fmt(v), anchor="middle", size=10,
                                    colour=MUTED))
    if ref is not None:
        y = f.py(axis.pos(ref))
        f.body.append(f'<line x1="{f.x0}" x2="{f.x1}" y1="{y:.1f}" y2="{y:.1f}" '
                      'stroke="#222" stroke-dasharray="5 4"/>')
    f.baseline()
    return f.svg(title or ylabel)


def lines(x: list[float], series: list[tuple[str, list[float], str]], xlabel: str,
          ylabel: str, title: str = "", stacked: bool = False, log: bool = False,
          height: int = 300, markers: bool = False, step: bool = False,
          bounds: tuple[float, float] | None = None, fmt=fmt_tick,
          hline: float | None = None) -> SVG:
    """Lines (or stacked areas) over a shared x; None or NaN breaks a line."""
    legend = [(name, c) for name, _, c in series if name]
    f = Frame(height, title, legend)
    xs = Axis(x, zero=False)
    if stacked:
        tops, acc = [], [0.0] * len(x)
        for _, ys, _ in series:
            acc = [a + (y or 0) for a, y in zip(acc, ys, strict=True)]
            tops.append(acc)
        ax = Axis([v for t in tops for v in t], log=log, bounds=bounds)
    else:
        ax = Axis([v for _, ys, _ in series for v in ys if v is not None], log=log,
                  bounds=bounds)
    f.y_axis(ax, ylabel, fmt)
    f.x_axis(xs, xlabel)

    def pt(xv, yv):
        return f"{f.px(xs.pos(xv)):.1f},{f.py(ax.pos(yv)):.1f}"

    if stacked:
        below = [ax.lo if log else 0.0] * len(x)
        for (name, _, colour), top in zip(series, tops, strict=True):
            path = " ".join(pt(a, b) for a, b in zip(x, top, strict=True))
            back = " ".join(pt(a, b) for a, b in zip(reversed(x), reversed(below),
                                                     strict=True))
            f.body.append(f'<polygon points="{path} {back}" fill="{colour}" '
                          f'stroke="{colour}" stroke-width="0.5"><title>{esc(name)}</title>'
                          "</polygon>")
            below = top
    else:
        for name, ys, colour in series:
            runs, cur = [], []
            for a, b in zip(x, ys, strict=True):
                ok = b is not None and math.isfinite(b) and (not log or b > 0)
                if ok:
                    cur.append((a, b))
                elif cur:
                    runs.append(cur)
                    cur = []
            if cur:
                runs.append(cur)
            for r in runs:
                if step:
                    pts = []
                    for j, (a, b) in enumerate(r):
                        nxt = r[j + 1][0] if j + 1 < len(r) else a
                        pts += [pt(a, b), pt(nxt, b)]
                else:
                    pts = [pt(a, b) for a, b in r]
                f.body.append(f'<polyline points="{" ".join(pts)}" fill="none" '
                              f'stroke="{colour}" stroke-width="1.8"><title>{esc(name)}'
                              "</title></polyline>")
                if markers:
                    f.body += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.6" '
                               f'fill="{colour}"/>' for p in (pt(a, b) for a, b in r)]
    if hline is not None and ax.lo <= hline <= ax.hi:
        y = f.py(ax.pos(hline))
        f.body.append(f'<line x1="{f.x0}" x2="{f.x1}" y1="{y:.1f}" y2="{y:.1f}" '
                      'stroke="#222" stroke-dasharray="5 4"/>')
    f.baseline()
    return f.svg(title or ylabel)


def scatter(x: list[float], y: list[float], colour: str, xlabel: str, ylabel: str,
            title: str = "", line: tuple[list[float], list[float], str, str] | None = None,
            legend=None, height: int = 320) -> SVG:
    f = Frame(height, title, legend)
    xs, ys = Axis(list(x) + (line[0] if line else []), zero=False), \
        Axis(list(y) + (line[1] if line else []), zero=False)
    f.y_axis(ys, ylabel)
    f.x_axis(xs, xlabel)
    f.body.append(f'<g fill="{colour}" fill-opacity="0.35">' + "".join(
        f'<circle cx="{f.px(xs.pos(a)):.1f}" cy="{f.py(ys.pos(b)):.1f}" r="1.8"/>'
        for a, b in zip(x, y, strict=True)) + "</g>")
    if line:
        lx, ly, lc, name = line
        pts = " ".join(f"{f.px(xs.pos(a)):.1f},{f.py(ys.pos(b)):.1f}"
                       for a, b in zip(lx, ly, strict=True) if b is not None and b == b)
        f.body.append(f'<polyline points="{pts}" fill="none" stroke="{lc}" '
                      f'stroke-width="2.2"><title>{esc(name)}</title></polyline>')
    return f.svg(title or ylabel)


def heatmaps(panels: list[tuple[str, list[list[float | None]]]], labels: list[str],
             xlabel: str, ylabel: str) -> SVG:
    """Row-share matrices side by side (white 0 to dark blue 1), values written in."""
    k = len(labels)
    cell = 30 if k <= 7 else 22
    size = cell * k
    width = max(W, len(panels) * (size + 70) + 40)
    height = size + 90
    body = []
    for p, (title, mat) in enumerate(panels):
        ox, oy = 60 + p * (size + 70), 34
        body.append(_text(ox, 16, title, weight="bold", size=13))
        for i in range(k):
            body.append(_text(ox - 6, oy + cell * (i + 0.5), labels[i], anchor="end",
                              size=10))
            body.append(_text(ox + cell * (i + 0.5), oy + size + 12, labels[i],
                              anchor="middle", size=10))
            for j in range(k):
                v = mat[i][j]
                shade = 0.0 if v is None else max(0.0, min(1.0, v))
                r, g, b = (int(247 - shade * (247 - 8)), int(251 - shade * (251 - 48)),
                           int(255 - shade * (255 - 107)))
                body.append(f'<rect x="{ox + cell * j}" y="{oy + cell * i}" width="{cell}" '
                            f'height="{cell}" fill="rgb({r},{g},{b})" stroke="white"/>')
                if v:
                    txt = f"{v:.0%}" if v >= 0.01 else "<1%"
                    body.append(_text(ox + cell * (j + 0.5), oy + cell * (i + 0.5), txt,
                                      anchor="middle", size=9,
                                      colour="white" if shade > 0.6 else "#222"))
        body.append(_text(ox + size / 2, oy + size + 30, xlabel, anchor="middle", size=11,
                          colour=MUTED))
    body.append(_text(14, 34 + size / 2, ylabel, anchor="middle", size=11, colour=MUTED,
                      rotate=-90))
    return _doc(width, height, body, "mobility")


def dots(rows: list[str], points: list[tuple[str, list[float | None], str]],
         flagged: list[tuple[int, float]], xlabel: str, ref: float, title: str = "") -> SVG:
    """A dot plot: one row per rate, one dot per group; flagged dots circled."""
    legend = [(name, c) for name, _, c in points] + [("flagged", "#b00020")]
    left = min(320, 16 + int(6.2 * max((len(r) for r in rows), default=4)))
    f = Frame(70 + 20 * max(len(rows), 1) + 44, title, legend, left=left)
    axis = Axis([0.0, 1.0], bounds=(0.0, 1.05))
    f.x_axis(axis, xlabel)
    step = (f.y1 - f.y0) / max(len(rows), 1)
    for i, r in enumerate(rows):
        f.body.append(_text(f.x0 - 6, f.y0 + step * (i + 0.5), r, anchor="end", size=11))
    for k, (name, vals, colour) in enumerate(points):
        off = (k - (len(points) - 1) / 2) * min(3.0, step / (len(points) + 1))
        for i, v in enumerate(vals):
            if v is None:
                continue
            f.body.append(f'<circle cx="{f.px(axis.pos(min(v, 1.05))):.1f}" '
                          f'cy="{f.y0 + step * (i + 0.5) + off:.1f}" r="3.6" fill="{colour}">'
                          f"<title>{esc(r_name(rows, i))} — {esc(name)}: {v:.2f}</title>"
                          "</circle>")
    for i, v in flagged:
        f.body.append(f'<circle cx="{f.px(axis.pos(min(v, 1.05))):.1f}" '
                      f'cy="{f.y0 + step * (i + 0.5):.1f}" r="8" fill="none" stroke="#b00020" '
                      'stroke-width="1.6"/>')
    x = f.px(axis.pos(ref))
    f.body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.y0}" y2="{f.y1}" stroke="#222" '
                  'stroke-dasharray="5 4"/>')
    return f.svg(title or xlabel)


def stack(*charts: SVG) -> SVG:
    """Charts one above the other, as one SVG."""
    import re

    sizes = [tuple(int(v) for v in re.search(r'width="(\d+)" height="(\d+)"',
                                             c.text).groups()) for c in charts]
    width = max(w for w, _ in sizes)
    parts, y = [], 0
    for c, (_, h) in zip(charts, sizes, strict=True):
        parts.append(c.text.replace("<svg ", f'<svg y="{y}" ', 1))
        y += h
    return SVG(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
               f'viewBox="0 0 {width} {y}">' + "".join(parts) + "</svg>")


def r_name(rows: list[str], i: int) -> str:
    return rows[i] if 0 <= i < len(rows) else ""


__all__ = ["SVG", "Axis", "dots", "heatmaps", "hbars", "lines", "nice_ticks", "scatter",
           "stack", "vbars"]
