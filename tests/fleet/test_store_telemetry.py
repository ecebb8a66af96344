"""Status (highest bdseq wins), heartbeats, device health and silence, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from common.errors import ConflictError, NotFoundError
from fleet.store import Scope, Store
from fleet.store.models import StatusReport
from fleet.store.telemetry import status_wins
from tests.fleet.conftest import FakeClock
from tests.fleet.data import birth, health

ALL = Scope.everything()


@pytest.fixture
def one(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_center("c2", "hcm", "Trung tâm 2")
    store.registry.add_kiosk("k1", "c1")
    return store


def test_birth_then_late_will_of_an_older_connection(one: Store, clock: FakeClock) -> None:
    first = one.telemetry.record_status("c1", "k1", birth(100, clock.now))
    assert (first.applied, first.changed, first.previous_state, first.state) == (
        True,
        True,
        "unknown",
        "online",
    )
    kiosk = one.registry.kiosk(ALL, "k1")
    assert (kiosk.state, kiosk.bdseq, kiosk.agent_version, kiosk.config_center_version) == (
        "online",
        100,
        "0.1.0",
        3,
    )
    assert {d.device: d.state for d in one.registry.devices(ALL, "k1")} == {
        "printer": "ok",
        "card_reader": "ok",
        "scanner": "ok",
    }
    clock.advance(seconds=10)
    one.telemetry.record_status("c1", "k1", birth(101, clock.now))  # reconnected inside the Will delay
    late = one.telemetry.record_status("c1", "k1", StatusReport("offline", "lost", 100, at=clock.now))
    assert (late.applied, late.changed) == (False, False)
    assert one.registry.kiosk(ALL, "k1").state == "online"
    history = one.telemetry.status_history(ALL, "k1")
    assert [(h.state, h.reason, h.bdseq, h.applied) for h in history] == [
        ("offline", "lost", 100, False),
        ("online", "birth", 101, True),
        ("online", "birth", 100, True),
    ]


def test_will_and_clean_stop_of_the_current_connection_win(one: Store, clock: FakeClock) -> None:
    one.telemetry.record_status("c1", "k1", birth(100, clock.now))
    clock.advance(minutes=1)
    gone = one.telemetry.record_status("c1", "k1", StatusReport("offline", "lost", 100, at=clock.now))
    assert (gone.applied, gone.changed, gone.state) == (True, True, "offline")
    kiosk = one.registry.kiosk(ALL, "k1")
    assert (kiosk.state, kiosk.state_reason, kiosk.state_since) == ("offline", "lost", clock.now)
    # the retained birth of the same connection delivered again: the Will stays
    assert not one.telemetry.record_status("c1", "k1", birth(100, clock.now)).applied
    assert one.telemetry.record_status("c1", "k1", birth(102, clock.now)).changed
    stop = one.telemetry.record_status("c1", "k1", StatusReport("offline", "shutdown", 102))
    assert stop.applied and one.registry.kiosk(ALL, "k1").state_reason == "shutdown"


def test_status_rule_table() -> None:
    assert status_wins("unknown", None, None, "offline", 5)
    assert status_wins("offline", "lost", 5, "online", 6)
    assert not status_wins("online", "birth", 6, "offline", 5)
    assert status_wins("online", "birth", 6, "offline", 6)
    assert not status_wins("offline", "lost", 6, "online", 6)
    assert status_wins("offline", "silent", 6, "online", 6)
    assert not status_wins("online", "birth", 6, "online", 6)


def test_reports_for_unknown_kiosks_or_the_wrong_center_are_refused(one: Store, clock: FakeClock) -> None:
    with pytest.raises(NotFoundError):
        one.telemetry.record_status("c1", "k9", birth(1, clock.now))
    with pytest.raises(ConflictError, match="belongs to center 'c1'"):
        one.telemetry.record_status("c2", "k1", birth(1, clock.now))
    with pytest.raises(ConflictError):
        one.telemetry.record_health("c2", "k1", health(clock.now, 1))
    assert one.registry.kiosk(ALL, "k1").state == "unknown"


def test_heartbeats_track_devices_and_keep_samples(one: Store, clock: FakeClock) -> None:
    one.telemetry.record_status("c1", "k1", birth(100, clock.now))
    first = one.telemetry.record_health("c1", "k1", health(clock.now, 100))
    assert first.device_changes == () and first.status is None
    clock.advance(seconds=30)
    out = one.telemetry.record_health("c1", "k1", health(clock.now, 100, printer="paper_out", cpu=90.0))
    assert [(c.device, c.old_state, c.new_state) for c in out.device_changes] == [
        ("printer", "ok", "paper_out")
    ]
    printer = next(d for d in one.registry.devices(ALL, "k1") if d.device == "printer")
    assert (printer.state, printer.since, printer.detail) == ("paper_out", clock.now, {"model": "TM-T82"})
    payload = one.telemetry.latest_health(ALL, "k1")
    assert payload is not None and payload["cpu_percent"] == 90.0
    samples = one.telemetry.health_samples(ALL, "k1", clock.now.replace(hour=0), clock.now.replace(hour=23))
    assert [s["cpu_percent"] for s in samples] == [7.5, 90.0]
    assert one.registry.kiosk(ALL, "k1").last_seen == clock.now
    # a device the kiosk no longer lists is gone from the kiosk
    report = health(clock.now, 100)
    del report.devices["scanner"]
    one.telemetry.record_health("c1", "k1", report)
    assert {d.device for d in one.registry.devices(ALL, "k1")} == {"printer", "card_reader"}


def test_silence_marks_offline_and_the_next_heartbeat_takes_it_back(one: Store, clock: FakeClock) -> None:
    one.telemetry.record_status("c1", "k1", birth(100, clock.now))
    one.telemetry.record_health("c1", "k1", health(clock.now, 100))
    clock.advance(seconds=89)
    assert one.telemetry.mark_silent() == []  # 3 x 30 s not yet over
    clock.advance(seconds=2)
    assert one.telemetry.mark_silent() == ["k1"]
    assert one.telemetry.mark_silent() == []  # once
    kiosk = one.registry.kiosk(ALL, "k1")
    assert (kiosk.state, kiosk.state_reason) == ("offline", "silent")
    clock.advance(seconds=5)
    back = one.telemetry.record_health("c1", "k1", health(clock.now, 100))
    assert back.status is not None and back.status.changed and back.status.state == "online"
    assert one.registry.kiosk(ALL, "k1").state_reason == "heartbeat"
    # a slower heartbeat pushed to the kiosk moves the limit
    one.telemetry.set_heartbeat("k1", 120)
    one.telemetry.record_health("c1", "k1", health(clock.now, 100))
    clock.advance(seconds=300)
    assert one.telemetry.mark_silent() == []
    clock.advance(seconds=61)
    assert one.telemetry.mark_silent() == ["k1"]


def test_a_heartbeat_of_an_older_connection_changes_nothing(one: Store, clock: FakeClock) -> None:
    one.telemetry.record_status("c1", "k1", birth(100, clock.now))
    one.telemetry.record_status("c1", "k1", StatusReport("offline", "shutdown", 100))
    late = one.telemetry.record_health("c1", "k1", health(clock.now, 99, printer="paper_out"))
    assert late.status is None and late.device_changes == ()
    assert one.registry.kiosk(ALL, "k1").state == "offline"
    # a heartbeat of the connection that just stopped cleanly does not revive it either
    assert one.telemetry.record_health("c1", "k1", health(clock.now, 100)).status is None
    assert one.registry.kiosk(ALL, "k1").state == "offline"
    # a heartbeat of a newer connection (its birth not processed yet) is proof of life
    newer = one.telemetry.record_health("c1", "k1", health(clock.now, 101))
    assert newer.status is not None and one.registry.kiosk(ALL, "k1").bdseq == 101


def test_health_report_mapping_from_a_contract_payload(clock: FakeClock) -> None:
    from fleet.store.models import HealthReport

    report = HealthReport.from_payload(
        {
            "schema": "health/1",
            "bdseq": 5,
            "cpu_percent": 7,
            "memory": {"used_percent": 41.2},
            "temperature_c": None,
            "app": {"state": "down"},
            "outbox": {"pending": 3},
            "devices": {"printer": {"state": "ok", "model": "TM"}, "odd": "not a dict"},
        },
        clock.now,
    )
    assert (
        report.cpu_percent,
        report.memory_used_percent,
        report.temperature_c,
        report.app_up,
        report.outbox_pending,
        report.disk_used_percent,
    ) == (7.0, 41.2, None, False, 3, None)
    assert report.devices == {"printer": {"state": "ok", "model": "TM"}}
