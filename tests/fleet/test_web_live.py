"""Live updates across processes: the server is ``main.py fleet serve`` in its own process, the writes
come from this test process through its own store handle, and the page's event stream shows them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleet.store import Store, open_store
from fleet.store.models import StatusReport
from tests.fleet.data import build
from tests.fleet.server import login, payload, running_server, sse_events


@dataclass
class Streamed:
    targets: list[str | None]  # every update's target, in order, up to the one waited for
    found: dict[str, Any]  # the update waited for
    event_id: int
    latency_s: float  # from the write to that update


def stream_until(
    store_url: str, tmp_path: Path, path: str, write: Callable[[Store], None], target: str
) -> Streamed:
    """``fleet serve`` in its own process on a built store; a center manager's ``path`` streamed while
    this process writes (``write``, 0.3 s after the stream opened), until the update of ``target``."""
    writer = open_store(store_url)  # real clock: the server's sessions use it too
    build(writer)
    try:
        with (
            running_server(store_url, tmp_path) as server,
            httpx.Client(base_url=server.base, timeout=10) as client,
        ):
            login(client, "quanly.bt")
            with client.stream("GET", path) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                assert next(lines).startswith("retry:")  # connected; the cursor is the newest change now
                started = time.monotonic()
                def later() -> None:
                    time.sleep(0.3)
                    write(writer)

                thread = threading.Thread(target=later)
                thread.start()
                seen: list[str | None] = []
                try:
                    for event in sse_events(lines):
                        data = payload(event)
                        seen.append(data.get("target"))
                        if data.get("target") == target:
                            latency = time.monotonic() - started - 0.3
                            return Streamed(seen, data, int(event["id"]), latency)
                finally:
                    thread.join()
        raise AssertionError(f"the stream ended before {target}: {seen}")
    finally:
        writer.close()


def test_a_write_from_another_process_reaches_a_center_page_stream(store_url: str, tmp_path: Path) -> None:
    def write(writer: Store) -> None:
        # another center's change first: it must not reach this manager's stream
        for center, kiosk in (("hcm-thu-dau-mot", "kiosk-tdm-01"), ("hcm-ben-thanh", "kiosk-bt-01")):
            writer.telemetry.record_status(center, kiosk, StatusReport("offline", "lost", 1_001))

    streamed = stream_until(
        store_url, tmp_path, "/live?view=center&center=hcm-ben-thanh", write, "kiosk-row:kiosk-bt-01"
    )
    html = streamed.found["html"]
    assert "Ngoại tuyến" in html and 'data-kiosk="kiosk-bt-01"' in html and streamed.event_id > 0
    assert not any(target and "tdm" in target for target in streamed.targets), streamed.targets
    assert streamed.latency_s < 3.0, f"live update took {streamed.latency_s:.2f} s"


def test_two_web_processes_share_sessions_and_both_stream_the_store(sqlite_url: str, tmp_path: Path) -> None:
    writer = open_store(sqlite_url)
    build(writer)
    try:
        with (
            running_server(sqlite_url, tmp_path, "a") as first,
            running_server(sqlite_url, tmp_path, "b") as second,
            httpx.Client(base_url=first.base, timeout=10) as on_first,
            httpx.Client(base_url=second.base, timeout=10) as on_second,
        ):
            login(on_first, "kythuat.bt")
            on_second.cookies.set("fleet_session", on_first.cookies["fleet_session"])  # logged in on A only
            assert on_second.get("/kiosks/kiosk-bt-01").status_code == 200
            with on_second.stream("GET", "/live?view=kiosk&kiosk=kiosk-bt-01") as stream:
                lines = stream.iter_lines()
                assert next(lines).startswith("retry:")
                threading.Timer(
                    0.3, lambda: writer.alarms.raise_alarm("kiosk-bt-01", "app_down", "major")
                ).start()
                for event in sse_events(lines):
                    if payload(event).get("notice") == "alarms":
                        break
            assert on_second.post("/logout", data={"csrf": "wrong"}).status_code == 403
    finally:
        writer.close()


def test_a_stream_for_another_center_is_refused_before_it_starts(sqlite_url: str, tmp_path: Path) -> None:
    writer = open_store(sqlite_url)
    build(writer)
    writer.close()
    with (
        running_server(sqlite_url, tmp_path) as server,
        httpx.Client(base_url=server.base, timeout=10) as client,
    ):
        login(client, "quanly.bt")
        assert client.get("/live?view=center&center=hcm-thu-dau-mot").status_code == 404
        assert client.get("/live?view=kiosk&kiosk=kiosk-hk-01").status_code == 404
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.base + "/live", timeout=2).raise_for_status()  # no session: 401


def test_the_configuration_page_follows_what_each_kiosk_reports_applied(
    sqlite_url: str, tmp_path: Path
) -> None:
    def write(writer: Store) -> None:
        # another center's kiosk first: it must not reach this manager's stream
        for center, kiosk in (("hcm-thu-dau-mot", "kiosk-tdm-01"), ("hcm-ben-thanh", "kiosk-bt-01")):
            writer.configs.record_state(
                center, kiosk, center_version=None, kiosk_version=None, app_pending=True, last_refused=None,
                at=None,
            )

    streamed = stream_until(
        sqlite_url, tmp_path, "/live?view=config&center=hcm-ben-thanh", write, "config-row:kiosk-bt-01"
    )
    html = streamed.found["html"]
    assert 'data-kiosk="kiosk-bt-01"' in html and 'data-config-status="' in html
    assert not any("tdm" in str(t) for t in streamed.targets), streamed.targets
