"""Charts as inline SVG, rendered on the server: no JavaScript library, no CDN.

Each function returns :class:`markupsafe.Markup` ready to drop into a template.
Every label is escaped here. Every drawn data element carries the class
``mark`` (the browser test counts them: a chart without marks is an error) and a
``<title>`` naming the run and the values, which browsers show on hover.
Non-finite values (NaN, ±Infinity) cannot be placed on an axis; they are left out
and counted in the chart's caption.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

__all__ = [
    "PALETTE",
    "Point",
    "Series",
    "category_labels",
    "format_number",
    "line_chart",
    "nice_ticks",
    "parallel_coordinates",
    "parallel_geometry",
    "scatter",
    "short_label",
]

# Tableau 10: distinguishable, and readable on white.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
WIDTH = 640
HEIGHT = 340
_TOP = 30
_BOTTOM = 52
_LEFT = 72
_RIGHT = 20
_LEGEND = 250  # extra width for a legend on the right
_LEGEND_CHARS = 34  # longer run labels are cut in the legend (the full one on hover)


@dataclass(frozen=True)
class Point:
    """One run in a scatter chart; ``x`` is a number or a category label."""

    x: float | str
    y: float
    label: str  # the run's name, shown on hover
    href: str | None = None  # the run page


@dataclass(frozen=True)
class Series:
    """One run's line: ``points`` are (x, y) for line charts; ``values`` name axes for
    parallel coordinates."""

    name: str
    points: Sequence[tuple[float, float]] = ()
    values: dict[str, float] = field(default_factory=dict)
    href: str | None = None


def _finite(v: float) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def format_number(v: float | str) -> str:
    """Short, exact enough for an axis or a table: 0.912, 1,234, 1.2e-05."""
    if not isinstance(v, int | float) or isinstance(v, bool):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.3g}"
    return f"{v:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten)."""
    if not (_finite(lo) and _finite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 0.5:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


class _Scale:
    def __init__(self, ticks: Sequence[float], a: float, b: float) -> None:
        self.lo, self.hi = ticks[0], ticks[-1]
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (v - self.lo) / span * (self.b - self.a)


def _open(title: str, width: int, kind: str, described: str) -> list[str]:
    return [
        f'<svg class="chart chart-{kind}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" data-kind="{kind}">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(described)}</desc>",
        f'<text class="chart-title" x="{_LEFT}" y="18">{escape(title)}</text>',
    ]


def _y_axis(out: list[str], ticks: Sequence[float], sy: _Scale, x0: float, x1: float) -> None:
    for t in ticks:
        y = sy(t)
        out.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_number(t))}</text>"
        )


def _axis_labels(
    out: list[str], x_label: str, y_label: str, plot_right: float, low: bool = False
) -> None:
    """Axis names; ``low`` moves the x axis name down, below two rows of tick labels."""
    mid_x = (_LEFT + plot_right) / 2
    mid_y = (_TOP + HEIGHT - _BOTTOM) / 2
    out.append(
        f'<text class="axis-label" x="{mid_x:.1f}" y="{HEIGHT - (5 if low else 10)}" '
        'text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text class="axis-label" x="16" y="{mid_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {mid_y:.1f})">{escape(y_label)}</text>'
    )
    out.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{HEIGHT - _BOTTOM}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{plot_right}" y1="{HEIGHT - _BOTTOM}" '
        f'y2="{HEIGHT - _BOTTOM}"/>'
    )


def short_label(name: str, room: int) -> str:
    """``name`` in at most ``room`` characters. A run label ``name · time · id`` keeps what
    tells it apart (after the first `` · ``) and cuts the name instead."""
    if len(name) <= room:
        return name
    head, sep, rest = name.partition(" · ")
    if sep and len(rest) + 4 < room:
        return head[: room - len(rest) - 4] + "…" + sep + rest
    return name[: room - 1] + "…"


def _legend(out: list[str], names: Sequence[str], x: float) -> None:
    for i, name in enumerate(names[:16]):
        y = _TOP + 6 + i * 17
        color = PALETTE[i % len(PALETTE)]
        short = short_label(name, _LEGEND_CHARS)
        out.append(
            f'<g class="legend-item" data-series="{i}" tabindex="0">'
            f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{color}"/>'
            f'<text x="{x + 17}" y="{y + 1}">{escape(short)}</text>'
            f"<title>{escape(name)} (click to show or hide)</title></g>"
        )
    if len(names) > 16:
        y = _TOP + 6 + 16 * 17
        out.append(f'<text class="tick" x="{x}" y="{y}">+{len(names) - 16} more</text>')


def _caption(out: list[str], skipped: int, width: int = WIDTH) -> None:
    if skipped:
        note = f"{skipped} non-finite value{'s' if skipped != 1 else ''} (NaN/Infinity) not drawn"
        out.append(
            f'<text class="note" x="{width - _RIGHT}" y="18" text-anchor="end">{note}</text>'
        )


_CHAR_PX = 6.6  # width of an average character of the 11 px tick font
_NAME_PX = 7.4  # the same for the 12 px axis names


def _tail(values: Sequence[str]) -> dict[str, str]:
    """The shortest unique dotted suffix of each value: class paths such as
    ``pyspark.ml.classification.LogisticRegressionModel`` become their class name."""
    parts = {v: v.split(".") for v in values}
    out = {}
    for v, p in parts.items():
        for n in range(1, len(p) + 1):
            tail = ".".join(p[-n:])
            if all(".".join(q[-n:]) != tail for w, q in parts.items() if w != v):
                out[v] = tail
                break
        else:
            out[v] = v
    return out


def category_labels(values: Sequence[str], band: float) -> tuple[dict[str, str], bool]:
    """Labels of a categorical axis whose categories are ``band`` pixels apart, and whether
    they alternate between two rows: never cut into look-alikes (``pyspark.ml.cl…`` twice).
    Class paths are shortened to their class name; a label still too long keeps its end,
    which tells such names apart; the full value is always the label's tooltip."""
    labels = _tail(values)
    longest = max((len(t) for t in labels.values()), default=0)
    stagger = longest * _CHAR_PX > band * 0.92
    room = max(int((band * (2 if stagger else 1) * 0.92) / _CHAR_PX), 6)
    cut = {v: t if len(t) <= room else "…" + t[-(room - 1) :] for v, t in labels.items()}
    if len(set(cut.values())) < len(cut):  # cutting made two alike: number them
        cut = {v: f"{i + 1}: {t}" for i, (v, t) in enumerate(cut.items())}
    return cut, stagger


def scatter(points: Sequence[Point], x_label: str, y_label: str, title: str) -> Markup:
    """One dot per run: a metric (y) against a hyperparameter (x, numeric or categorical)."""
    drawn = [p for p in points if _finite(p.y) and (isinstance(p.x, str) or _finite(p.x))]
    skipped = len(points) - len(drawn)
    out = _open(title, WIDTH, "scatter", f"{len(drawn)} runs: {y_label} against {x_label}")
    right = WIDTH - _RIGHT
    bottom = HEIGHT - _BOTTOM
    ys = [p.y for p in drawn] or [0.0, 1.0]
    y_ticks = nice_ticks(min(ys), max(ys))
    sy = _Scale(y_ticks, bottom, _TOP)
    _y_axis(out, y_ticks, sy, _LEFT, right)
    categorical = any(isinstance(p.x, str) for p in drawn)
    stagger = False
    if categorical:
        cats = sorted({str(p.x) for p in drawn})
        band = (right - _LEFT) / max(len(cats), 1)
        where = {c: _LEFT + band * (i + 0.5) for i, c in enumerate(cats)}
        labels, stagger = category_labels(cats, band)
        for i, c in enumerate(cats):
            y = bottom + (31 if stagger and i % 2 else 15)
            x, anchor = where[c], "middle"
            half = len(labels[c]) * _CHAR_PX / 2
            if x + half > WIDTH - 4:  # keep the label inside the chart
                x, anchor = WIDTH - 4, "end"
            elif x - half < 4:
                x, anchor = 4, "start"
            out.append(
                f'<text class="tick category" x="{x:.1f}" y="{y}" text-anchor="{anchor}">'
                f"{escape(labels[c])}<title>{escape(c)}</title></text>"
            )

        def px(p: Point) -> float:
            # spread runs that share a category so that they stay visible
            jitter = (zlib.crc32(p.label.encode()) % 1000 / 1000 - 0.5) * band * 0.4
            return where[str(p.x)] + jitter
    else:
        xs = [float(p.x) for p in drawn] or [0.0, 1.0]
        x_ticks = nice_ticks(min(xs), max(xs))
        sx = _Scale(x_ticks, _LEFT + 8, right - 8)
        for t in x_ticks:
            out.append(
                f'<text class="tick" x="{sx(t):.1f}" y="{bottom + 16}" text-anchor="middle">'
                f"{escape(format_number(t))}</text>"
            )

        def px(p: Point) -> float:
            return sx(float(p.x))

    _axis_labels(out, x_label, y_label, right, low=categorical and stagger)
    radius, opacity = (4.5, 0.8) if len(drawn) <= 100 else (3.0, 0.45)  # many runs: see density
    for p in drawn:
        tip = f"{p.label}: {x_label} = {format_number(p.x)}, {y_label} = {format_number(p.y)}"
        dot = (
            f'<circle class="mark" cx="{px(p):.1f}" cy="{sy(p.y):.1f}" r="{radius}" '
            f'fill="{PALETTE[0]}" fill-opacity="{opacity}"><title>{escape(tip)}</title></circle>'
        )
        if p.href:
            dot = f'<a href="{escape(p.href)}">{dot}</a>'
        out.append(dot)
    _caption(out, skipped)
    out.append("</svg>")
    return Markup("".join(out))


def line_chart(series: Sequence[Series], x_label: str, y_label: str, title: str) -> Markup:
    """One line per run: a metric's value against its step."""
    width = WIDTH + _LEGEND
    right = WIDTH - _RIGHT
    bottom = HEIGHT - _BOTTOM
    clean = [[(x, y) for x, y in s.points if _finite(x) and _finite(y)] for s in series]
    skipped = sum(len(s.points) for s in series) - sum(len(c) for c in clean)
    xs = [x for c in clean for x, _ in c] or [0.0, 1.0]
    ys = [y for c in clean for _, y in c] or [0.0, 1.0]
    out = _open(title, width, "line", f"{len(series)} runs: {y_label} against {x_label}")
    y_ticks = nice_ticks(min(ys), max(ys))
    x_ticks = nice_ticks(min(xs), max(xs))
    sy = _Scale(y_ticks, bottom, _TOP)
    sx = _Scale(x_ticks, _LEFT, right)
    _y_axis(out, y_ticks, sy, _LEFT, right)
    for t in x_ticks:
        out.append(
            f'<text class="tick" x="{sx(t):.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(format_number(t))}</text>"
        )
    _axis_labels(out, x_label, y_label, right)
    for i, (s, pts) in enumerate(zip(series, clean, strict=True)):
        color = PALETTE[i % len(PALETTE)]
        tip = escape(f"{s.name}: {len(pts)} points of {y_label}")
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        out.append(f'<g class="series" data-series="{i}">')
        if len(pts) == 1:
            x, y = pts[0]
            out.append(
                f'<circle class="mark" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" '
                f'fill="{color}"><title>{tip}</title></circle>'
            )
        elif pts:
            out.append(
                f'<polyline class="mark" points="{coords}" fill="none" stroke="{color}" '
                f'stroke-width="2"><title>{tip}</title></polyline>'
            )
        out.append("</g>")
    _legend(out, [s.name for s in series], WIDTH + 4)
    _caption(out, skipped)
    out.append("</svg>")
    return Markup("".join(out))


AXIS_PAD = 0.08  # parallel axes leave this share of their range free at each end
MIN_AXIS_GAP = 72  # pixels between parallel axes: the chart widens for many metrics


def parallel_geometry() -> dict[str, float]:
    """The constants of :func:`parallel_coordinates`, for the page's script that redraws
    the chart with the same geometry."""
    return {"width": WIDTH, "height": HEIGHT, "top": _TOP, "bottom": _BOTTOM, "left": _LEFT,
            "right": _RIGHT, "legend": _LEGEND, "legendChars": _LEGEND_CHARS, "pad": AXIS_PAD,
            "gap": MIN_AXIS_GAP, "namePx": _NAME_PX}  # fmt: skip


def parallel_coordinates(
    series: Sequence[Series],
    axes: Sequence[str],
    title: str,
    lower: Collection[str] = (),
) -> Markup:
    """All metrics of the selected runs side by side: one vertical axis per metric, each
    scaled to its own range across the runs shown, with :data:`AXIS_PAD` of room at each
    end (so the best and worst runs are not drawn on the frame). Better is up on every
    axis: the axis of a metric in ``lower`` (lower is better) is flipped and marked ↓.
    The real values are written at both ends of each axis. A run whose values equal an
    earlier run's is drawn dashed, so that it does not hide behind it. The chart widens
    to keep :data:`MIN_AXIS_GAP` between axes; the report's script redraws it in the page
    (``report.js``, same geometry) when the reader picks other runs or metrics."""
    plot = max(WIDTH - _LEFT - _RIGHT - 20, MIN_AXIS_GAP * max(len(axes) - 1, 1))
    right = _LEFT + 20 + plot
    width = right + _RIGHT + _LEGEND
    bottom = HEIGHT - _BOTTOM
    out = _open(
        title,
        width,
        "parallel",
        f"{len(series)} runs over {len(axes)} metrics, each axis scaled to its own range "
        "across these runs, better at the top",
    )
    top = _TOP + 18  # room for the value written above each axis
    span = plot / max(len(axes) - 1, 1)
    ax_x = {a: _LEFT + 10 + i * span for i, a in enumerate(axes)}
    ranges: dict[str, tuple[float, float]] = {}
    for a in axes:
        vals = [s.values[a] for s in series if a in s.values and _finite(s.values[a])]
        ranges[a] = (min(vals), max(vals)) if vals else (0.0, 1.0)

    def frac(a: str, v: float) -> float:
        lo, hi = ranges[a]
        f = 0.5 if hi == lo else AXIS_PAD + (1 - 2 * AXIS_PAD) * (v - lo) / (hi - lo)
        return 1 - f if a in lower else f

    longest = max((len(a) + (2 if a in lower else 0) for a in axes), default=0)
    stagger = longest * _NAME_PX > span * 0.9  # crowded: names on two alternating rows
    room = max(int(span * (2 if stagger else 1) * 0.9 / _NAME_PX) - (2 if stagger else 0), 5)
    for i, a in enumerate(axes):
        x = ax_x[a]
        lo, hi = ranges[a]
        flipped = a in lower
        mark = " ↓" if flipped else ""
        name = a + mark if len(a + mark) <= room else a[: room - 1 - len(mark)] + "…" + mark
        label_y = bottom + (46 if stagger and i % 2 else 30)
        at_top, at_bottom = (lo, hi) if flipped else (hi, lo)
        tip = f"{a} ({'lower' if flipped else 'higher'} is better, at the top)"
        out.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>'
            f'<text class="axis-label" x="{x:.1f}" y="{label_y}" text-anchor="middle" '
            f'data-key="{escape(a)}">{escape(name)}<title>{escape(tip)}</title></text>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">'
            f"{escape(format_number(at_bottom))}</text>"
            f'<text class="tick" x="{x:.1f}" y="{top - 5}" text-anchor="middle">'
            f"{escape(format_number(at_top))}</text>"
        )
    skipped = 0
    seen: dict[tuple[str, ...], str] = {}
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        coords = []
        for a in axes:
            v = s.values.get(a)
            if v is None or not _finite(v):
                skipped += v is not None
                continue
            coords.append(f"{ax_x[a]:.1f},{bottom - frac(a, v) * (bottom - top):.1f}")
        if not coords:
            continue
        twin = seen.get(tuple(coords))
        seen.setdefault(tuple(coords), s.name)
        tip = escape(
            s.name
            + ": "
            + ", ".join(f"{a} = {format_number(s.values[a])}" for a in axes if a in s.values)
            + (f" (the same values as {twin})" if twin else "")
        )
        dash = ' stroke-dasharray="7 5"' if twin else ""
        out.append(f'<g class="series{" twin" if twin else ""}" data-series="{i}">')
        if len(coords) == 1:
            cx, cy = coords[0].split(",")
            out.append(
                f'<circle class="mark" cx="{cx}" cy="{cy}" r="3" fill="{color}">'
                f"<title>{tip}</title></circle>"
            )
        else:
            out.append(
                f'<polyline class="mark" points="{" ".join(coords)}" fill="none" '
                f'stroke="{color}" stroke-width="2"{dash}><title>{tip}</title></polyline>'
            )
        out.append("</g>")
    _legend(out, [s.name for s in series], right + _RIGHT + 4)
    _caption(out, skipped, width)
    out.append("</svg>")
    return Markup("".join(out))
