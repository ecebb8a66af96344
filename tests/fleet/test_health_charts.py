"""The kiosk page's health charts (fleet/web/charts.py): heartbeats stored by the real store, the page
fetched over HTTP as a manager gets it, the SVG read back. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from fleet.store import Store, open_store
from fleet.web import charts
from tests.fleet.conftest import FakeClock
from tests.fleet.data import Fleet, build, health
from tests.fleet.web import browser

FIGURE = re.compile(r'<figure class="chart" id="chart-(?P<key>[a-z]+)">(?P<body>.*?)</figure>', re.S)
POLYLINE = re.compile(r'<polyline class="line-(?P<css>[a-z]+)" points="(?P<points>[^"]*)"')


@pytest.fixture
def fleet_store(store_url: str, clock: FakeClock) -> Iterator[tuple[Store, Fleet]]:
    store = open_store(store_url, clock=clock)
    fleet = build(store)
    yield store, fleet
    store.close()


def figures(html: str) -> dict[str, list[tuple[str, list[tuple[float, float]]]]]:
    """Per chart: its lines as (css class, [(x, y), ...]) per unbroken stretch."""
    found = {}
    for figure in FIGURE.finditer(html):
        found[figure["key"]] = [
            (line["css"], [tuple(map(float, p.split(","))) for p in line["points"].split()])
            for line in POLYLINE.finditer(figure["body"])
        ]
    return found  # type: ignore[return-value]


def beat(store: Store, fleet: Fleet, clock: FakeClock, minutes: list[int], cpu: float) -> None:
    """One heartbeat at each of ``minutes`` before now (now is the clock's at the call)."""
    now = clock.now
    for i, ago in enumerate(sorted(minutes, reverse=True)):
        at = now - timedelta(minutes=ago)
        clock.now = at
        report = health(at, 2_000 + i, cpu=cpu, pending=ago % 7)
        store.telemetry.record_health(fleet.center, fleet.kiosk, report)
    clock.now = now


def test_the_last_24_hours_from_the_heartbeats_with_a_silence_as_a_break(
    fleet_store: tuple[Store, Fleet], clock: FakeClock
) -> None:
    store, fleet = fleet_store
    clock.advance(hours=30)
    # every 5 minutes for 20 hours, then 3 hours without a heartbeat, then the last hour
    minutes = [m for m in range(5, 20 * 60, 5) if not 60 <= m < 4 * 60]
    beat(store, fleet, clock, minutes, cpu=40.0)
    with browser(store, "quanly.bt") as manager:
        page = manager.client.get(f"/kiosks/{fleet.kiosk}")
    assert page.status_code == 200
    found = figures(page.text)
    assert set(found) == {m.key for m in charts.METRICS}
    cpu = found["cpu"]
    assert [css for css, _ in cpu] == ["avg", "avg"]  # broken by the silence, one series
    points = [p for _, stretch in cpu for p in stretch]
    assert len(points) == len(minutes)  # one 5-minute bucket per heartbeat here
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and xs[0] >= charts.LEFT and xs[-1] <= charts.WIDTH - charts.RIGHT
    # 40 % on a 0-100 scale: 60 % of the plot's height below its top
    plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert {round(y, 1) for _, y in points} == {round(charts.TOP + plot * 0.6, 1)}
    assert "mới nhất: 40%" in page.text
    assert "Biểu đồ sức khỏe máy" in page.text and 'aria-current="true">24 giờ qua' in page.text


def test_seven_days_from_the_hourly_roll_up_with_average_and_maximum(
    fleet_store: tuple[Store, Fleet], clock: FakeClock
) -> None:
    store, fleet = fleet_store
    clock.advance(days=3)
    beat(store, fleet, clock, list(range(60, 48 * 60, 10)), cpu=20.0)
    beat(store, fleet, clock, [30 * 60 + 1], cpu=90.0)  # a spike inside the hour 30 h ago
    store.maintenance.aggregate_health(now=clock.now)
    with browser(store, "admin.hcm") as admin:
        page = admin.client.get(f"/kiosks/{fleet.kiosk}?health=7d")
    found = figures(page.text)
    lines = {css for css, _ in found["cpu"]}
    assert lines == {"avg", "max"}
    maxima = [y for css, stretch in found["cpu"] if css == "max" for _, y in stretch]
    averages = [y for css, stretch in found["cpu"] if css == "avg" for _, y in stretch]
    assert min(maxima) < min(averages)  # the spike's hour: its maximum drawn higher than its average
    assert 46 <= sum(len(s) for css, s in found["cpu"] if css == "avg") <= 49  # an hour a point
    assert 'aria-current="true">7 ngày qua' in page.text and "Cao nhất" in page.text


def test_no_heartbeat_says_so_and_a_bad_range_is_the_default(
    fleet_store: tuple[Store, Fleet], clock: FakeClock
) -> None:
    store, fleet = fleet_store
    with browser(store, "quanly.bt") as manager:
        page = manager.client.get(f"/kiosks/{fleet.kiosk}?health=<script>")
        assert page.status_code == 200 and "<script>" not in page.text.split('id="health"')[1][:2000]
        assert page.text.count("Chưa có số liệu trong khoảng thời gian này.") == len(charts.METRICS)
        assert 'aria-current="true">24 giờ qua' in page.text
        # another center's kiosk: its charts are not there for a center manager, by any URL
        assert manager.client.get(f"/kiosks/{fleet.other_kiosk}?health=7d").status_code == 404


def test_the_scale_of_a_count_follows_the_data() -> None:
    assert [charts._nice_max(v) for v in (0, 0.4, 3, 7, 12, 180, 1001)] == [1, 1, 5, 10, 20, 200, 2000]
