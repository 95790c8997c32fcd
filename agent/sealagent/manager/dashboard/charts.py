"""Charts as inline SVG, drawn on the server: no script, no library, readable without CSS.

:func:`throughput_chart` stacks the tasks finished per time bucket by phase;
:func:`phase_time_chart` draws each phase's mean running time per bucket.  Both take the
series of :meth:`~sealagent.manager.history.TaskHistory.series`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from markupsafe import Markup, escape

from sealagent.errors import InvalidInputError
from sealagent.manager.history import BucketStats
from sealagent.phases import Phase
from sealagent.task_kinds import StorageJob, parse_kind

Series = Sequence[tuple[float, dict[str, BucketStats]]]

WIDTH: Final = 640
HEIGHT: Final = 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 8, 8, 22
_COLOURS: Final = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
                   "#b07aa1", "#9c755f")


def _label(task_type: str) -> str:
    try:
        return parse_kind(task_type).short
    except InvalidInputError:
        return task_type


def _types(series: Series) -> list[str]:
    seen = {t for _, buckets in series for t in buckets}
    order: dict[str, int] = {str(p.value): i for i, p in enumerate([*Phase, *StorageJob])}
    return sorted(seen, key=lambda t: (order.get(t, len(order)), t))


def _frame(series: Series, top: float, unit: str, body: list[str], types: list[str],
           title: str) -> Markup:
    """Axes, time labels, legend and ``body`` in one ``<svg>``."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" '
             f'y2="{_TOP + plot_h}" stroke="#888"/>']
    for fraction in (0.0, 0.5, 1.0):
        y = _TOP + plot_h * (1 - fraction)
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11" fill="currentColor">{_number(top * fraction)}{unit}</text>')
    if series:
        step = max(1, len(series) // 6)
        for index in range(0, len(series), step):
            x = _LEFT + plot_w * (index + 0.5) / len(series)
            stamp = time.strftime("%H:%M", time.localtime(series[index][0]))
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
                         f'font-size="11" fill="currentColor">{stamp}</text>')
    parts.extend(body)
    for index, task_type in enumerate(types):
        x = _LEFT + 8 + index * 64
        parts.append(f'<rect x="{x}" y="{_TOP}" width="10" height="10" '
                     f'fill="{_COLOURS[index % len(_COLOURS)]}"/>'
                     f'<text x="{x + 14}" y="{_TOP + 9}" font-size="11" '
                     f'fill="currentColor">{escape(_label(task_type))}</text>')
    if not types:
        parts.append(f'<text x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h / 2}" '
                     f'text-anchor="middle" font-size="12" fill="currentColor">'
                     f"no task finished in this period</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def _nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at least ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** (len(f"{int(value)}") - 1) if value >= 1 else 0.1
    while True:
        for mult in (1, 2, 5):
            if mult * scale >= value:
                return mult * scale
        scale *= 10


def throughput_chart(series: Series) -> Markup:
    """Tasks finished per bucket, stacked by phase."""
    types = _types(series)
    top = _nice_top(max((sum(s.count for s in b.values()) for _, b in series), default=0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    width = plot_w / max(1, len(series))
    body = []
    for index, (start, buckets) in enumerate(series):
        y = float(_TOP + plot_h)
        for colour, task_type in enumerate(types):
            stats = buckets.get(task_type)
            if stats is None or not stats.count:
                continue
            h = plot_h * stats.count / top
            y -= h
            when = time.strftime("%H:%M", time.localtime(start))
            body.append(f'<rect x="{_LEFT + index * width + 1:.1f}" y="{y:.1f}" '
                        f'width="{max(1.0, width - 2):.1f}" height="{h:.1f}" '
                        f'fill="{_COLOURS[colour % len(_COLOURS)]}"><title>{when} '
                        f"{escape(_label(task_type))}: {stats.count}</title></rect>")
    return _frame(series, top, "", body, types, "tasks finished per interval")


def phase_time_chart(series: Series) -> Markup:
    """Mean running time of each phase per bucket, one line per phase."""
    types = _types(series)
    top = _nice_top(max((s.mean for _, b in series for s in b.values()), default=0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    body = []
    for colour, task_type in enumerate(types):
        points = []
        for index, (_, buckets) in enumerate(series):
            stats = buckets.get(task_type)
            if stats is not None and stats.count:
                x = _LEFT + plot_w * (index + 0.5) / len(series)
                y = _TOP + plot_h * (1 - stats.mean / top)
                points.append(f"{x:.1f},{y:.1f}")
        fill = _COLOURS[colour % len(_COLOURS)]
        if len(points) > 1:
            body.append(f'<polyline points="{" ".join(points)}" fill="none" '
                        f'stroke="{fill}" stroke-width="2"/>')
        body.extend(f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" '
                    f'fill="{fill}"/>' for p in points)
    return _frame(series, top, "s", body, types, "mean phase time per interval")
