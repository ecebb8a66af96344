"""Live updates across processes: the server is ``main.py fleet serve`` in its own process, the writes
come from this test process through its own store handle, and the page's event stream shows them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from fleet.store import open_store
from fleet.store.models import StatusReport
from tests.fleet.data import build
from tests.fleet.server import login, payload, running_server, sse_events


def test_a_write_from_another_process_reaches_a_center_page_stream(store_url: str, tmp_path: Path) -> None:
    writer = open_store(store_url)  # real clock: the server's sessions use it too
    build(writer)
    try:
        with (
            running_server(store_url, tmp_path) as server,
            httpx.Client(base_url=server.base, timeout=10) as client,
        ):
            login(client, "quanly.bt")
            with client.stream("GET", "/live?view=center&center=hcm-ben-thanh") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                assert next(lines).startswith("retry:")  # connected; the cursor is the newest change now
                events = sse_events(lines)

                def write() -> None:
                    time.sleep(0.3)
                    # another center's change first: it must not reach this manager's stream
                    writer.telemetry.record_status(
                        "hcm-thu-dau-mot", "kiosk-tdm-01", StatusReport("offline", "lost", 1_001)
                    )
                    writer.telemetry.record_status(
                        "hcm-ben-thanh", "kiosk-bt-01", StatusReport("offline", "lost", 1_001)
                    )

                started = time.monotonic()
                thread = threading.Thread(target=write)
                thread.start()
                seen = []
                for event in events:
                    data = payload(event)
                    seen.append(data.get("target"))
                    if data.get("target") == "kiosk-row:kiosk-bt-01":
                        latency = time.monotonic() - started - 0.3
                        assert "Ngoại tuyến" in data["html"] and 'data-kiosk="kiosk-bt-01"' in data["html"]
                        assert int(event["id"]) > 0
                        break
                thread.join()
            assert not any(target and "tdm" in target for target in seen), seen
            assert latency < 3.0, f"live update took {latency:.2f} s"
            # the center's counts follow in the same poll
            assert "center-summary:hcm-ben-thanh" in seen or seen[-1] == "kiosk-row:kiosk-bt-01"
    finally:
        writer.close()


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
    writer = open_store(sqlite_url)
    build(writer)
    try:
        with (
            running_server(sqlite_url, tmp_path) as server,
            httpx.Client(base_url=server.base, timeout=10) as client,
        ):
            login(client, "quanly.bt")
            with client.stream("GET", "/live?view=config&center=hcm-ben-thanh") as stream:
                lines = stream.iter_lines()
                assert next(lines).startswith("retry:")
                events = sse_events(lines)

                def write() -> None:
                    time.sleep(0.3)
                    # another center's kiosk first: it must not reach this manager's stream
                    reports = (("hcm-thu-dau-mot", "kiosk-tdm-01"), ("hcm-ben-thanh", "kiosk-bt-01"))
                    for center, kiosk in reports:
                        writer.configs.record_state(
                            center, kiosk, center_version=None, kiosk_version=None, app_pending=True,
                            last_refused=None, at=None,
                        )

                thread = threading.Thread(target=write)
                thread.start()
                seen = []
                for event in events:
                    data = payload(event)
                    seen.append(data.get("target"))
                    if data.get("target") == "config-row:kiosk-bt-01":
                        html = data["html"]
                        assert 'data-kiosk="kiosk-bt-01"' in html and 'data-config-status="' in html
                        break
                thread.join()
            assert seen[-1] == "config-row:kiosk-bt-01" and not any("tdm" in str(t) for t in seen), seen
    finally:
        writer.close()
