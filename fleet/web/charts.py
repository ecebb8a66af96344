"""The kiosk page's health charts: the stored heartbeats as small line charts drawn on the server.

Inline SVG, no script and no chart library: the page works under the dashboard's CSP, prints, and
reads the same with scripting off. The last 24 hours come from the raw samples (``health_samples``,
averaged into 5-minute buckets); 7 and 30 days from the hourly roll-up (``health_hourly``: the hour's
average, and its maximum as a second, lighter line). A silence (no heartbeat for three buckets) breaks
the line instead of drawing a slope across it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from fleet.store.models import HealthHour

RANGES: dict[str, timedelta] = {
    "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
WIDTH, HEIGHT = 440, 150  # the SVG's own coordinates, about its size on the page (text stays legible)
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 22  # room for the value and time labels
RAW_BUCKET = timedelta(minutes=5)

Point = tuple[datetime, float]


@dataclass(frozen=True)
class Line:
    css: str  # "avg" or "max"
    label_key: str
    paths: list[str]  # one SVG polyline "x,y x,y ..." per unbroken stretch of two samples or more
    dots: list[tuple[float, float]]  # lone samples (a polyline of one point draws nothing)


@dataclass(frozen=True)
class Chart:
    key: str  # "cpu", "memory", ...: the catalog's chart.<key> and the element's id
    y_max: float
    y_ticks: list[tuple[float, str]]  # (y in SVG coordinates, label)
    lines: list[Line]
    latest: str | None  # the newest value, as text, for the caption (None: no data)

    @property
    def empty(self) -> bool:
        return not any(line.paths or line.dots for line in self.lines)


@dataclass(frozen=True)
class Metric:
    key: str
    raw: str  # column of health_samples
    hourly_avg: Callable[[HealthHour], float | None]
    hourly_max: Callable[[HealthHour], float | None] | None
    percent: bool  # 0-100 scale; otherwise the scale follows the data
    unit: str


METRICS = [
    Metric("cpu", "cpu_percent", lambda h: h.cpu_avg, lambda h: h.cpu_max, True, "%"),
    Metric("memory", "memory_used_percent", lambda h: h.memory_avg, lambda h: h.memory_max, True, "%"),
    Metric("disk", "disk_used_percent", lambda h: h.disk_max, None, True, "%"),
    Metric("temperature", "temperature_c", lambda h: h.temperature_avg, lambda h: h.temperature_max, False,
           "°C"),
    Metric("outbox", "outbox_pending", lambda h: h.outbox_pending_max, None, False, ""),
]


def range_of(value: str | None) -> str:
    return value if value in RANGES else DEFAULT_RANGE


def bucketed(
    samples: Sequence[dict[str, Any]], column: str, since: datetime, width: timedelta
) -> list[Point]:
    """The average of each ``width`` bucket that has samples, at the bucket's middle."""
    sums: dict[int, tuple[float, int]] = {}
    for sample in samples:
        value = sample.get(column)
        if value is None:
            continue
        index = int((sample["at"] - since) / width)
        total, n = sums.get(index, (0.0, 0))
        sums[index] = (total + float(value), n + 1)
    return [(since + width * i + width / 2, total / n) for i, (total, n) in sorted(sums.items())]


def _nice_max(value: float) -> float:
    """The scale's top: the next of 1, 2, 5 × 10^k at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if value <= factor * step:
            return factor * step
    return 10 * step


def _number(value: float, unit: str) -> str:
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{text}{unit}" if unit else text


def _stretches(
    points: Sequence[Point], since: datetime, until: datetime, y_max: float, gap: timedelta
) -> list[list[tuple[float, float]]]:
    span = (until - since).total_seconds()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    stretches: list[list[tuple[float, float]]] = []
    previous: datetime | None = None
    for at, value in points:
        x = LEFT + plot_w * min(max((at - since).total_seconds() / span, 0.0), 1.0)
        y = TOP + plot_h * (1 - min(max(value / y_max, 0.0), 1.0))
        if previous is None or at - previous > gap:
            stretches.append([])
        stretches[-1].append((x, y))
        previous = at
    return [[(round(x, 1), round(y, 1)) for x, y in stretch] for stretch in stretches]


def _line(css: str, key: str, points: Sequence[Point], since: datetime, until: datetime, y_max: float,
          gap: timedelta) -> Line:
    stretches = _stretches(points, since, until, y_max, gap)
    return Line(
        css,
        key,
        [" ".join(f"{x},{y}" for x, y in s) for s in stretches if len(s) > 1],
        [s[0] for s in stretches if len(s) == 1],
    )


def chart(
    metric: Metric, lines: Sequence[tuple[str, str, Sequence[Point]]], since: datetime, until: datetime,
    gap: timedelta,
) -> Chart:
    """``lines``: (css, label key, points) each; the scale is 0-100 for a percentage, else the data's."""
    values = [v for _, _, points in lines for _, v in points]
    y_max = 100.0 if metric.percent else _nice_max(max(values, default=0.0))
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = [(TOP + plot_h * (1 - f), _number(y_max * f, metric.unit)) for f in (0.0, 0.5, 1.0)]
    newest = max(((at, v) for _, _, points in lines[:1] for at, v in points), default=None)
    return Chart(
        metric.key,
        y_max,
        ticks,
        [_line(css, key, points, since, until, y_max, gap) for css, key, points in lines],
        _number(newest[1], metric.unit) if newest else None,
    )


def raw_charts(samples: Sequence[dict[str, Any]], since: datetime, until: datetime) -> list[Chart]:
    gap = RAW_BUCKET * 3
    return [
        chart(m, [("avg", "chart.avg", bucketed(samples, m.raw, since, RAW_BUCKET))], since, until, gap)
        for m in METRICS
    ]


def hourly_charts(hours: Sequence[HealthHour], since: datetime, until: datetime) -> list[Chart]:
    def points(value: Callable[[HealthHour], float | None]) -> list[Point]:
        return [(h.hour + timedelta(minutes=30), float(v)) for h in hours if (v := value(h)) is not None]

    charts = []
    for m in METRICS:
        lines: list[tuple[str, str, Sequence[Point]]] = [("avg", "chart.avg", points(m.hourly_avg))]
        if m.hourly_max is not None:
            lines.append(("max", "chart.max", points(m.hourly_max)))
        charts.append(chart(m, lines, since, until, timedelta(hours=3)))
    return charts


@dataclass(frozen=True)
class Box:
    """The plot area in the SVG's coordinates, for the template's axes and labels."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    middle: float = LEFT + (WIDTH - LEFT - RIGHT) / 2


def time_ticks(since: datetime, until: datetime, zone: tzinfo) -> list[tuple[float, str, str]]:
    """The time axis' labels (x, text-anchor, text) in the center's clock: hours for a day, dates for
    longer ranges (a whole date and time under each of three ticks would not fit)."""
    pattern = "%H:%M" if until - since <= timedelta(days=1) else "%d/%m"
    b = Box()
    return [
        (b.left, "start", since.astimezone(zone).strftime(pattern)),
        (b.middle, "middle", (since + (until - since) / 2).astimezone(zone).strftime(pattern)),
        (b.right, "end", until.astimezone(zone).strftime(pattern)),
    ]
