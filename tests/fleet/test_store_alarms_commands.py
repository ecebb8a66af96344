"""Alarms (one active per kiosk and type, history, acknowledge, reminders), commands and configuration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store import Scope, Store
from tests.fleet.conftest import FakeClock

ALL = Scope.everything()


@pytest.fixture
def one(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_center("c2", "hcm", "Trung tâm 2")
    store.registry.add_kiosk("k1", "c1")
    store.registry.add_kiosk("k2", "c2")
    store.accounts.add_user("quanly", "hash", "center_manager", center_id="c1")
    return store


def test_one_active_alarm_per_kiosk_and_type_with_history(one: Store, clock: FakeClock) -> None:
    alarm, new = one.alarms.raise_alarm(
        "k1", "printer", "warning", device="printer", detail={"state": "near_end"}
    )
    assert new and alarm.active and alarm.started_at == clock.now
    clock.advance(minutes=5)
    again, new = one.alarms.raise_alarm(
        "k1", "printer", "critical", device="printer", detail={"state": "paper_out"}
    )
    assert not new and again.id == alarm.id and again.severity == "critical"
    assert again.started_at == alarm.started_at and again.updated_at == clock.now
    other, new = one.alarms.raise_alarm("k1", "offline", "major")
    assert new and other.id != alarm.id
    clock.advance(minutes=5)
    cleared = one.alarms.clear_alarm("k1", "printer")
    assert cleared is not None and not cleared.active and cleared.ended_at == clock.now
    assert one.alarms.clear_alarm("k1", "printer") is None
    fresh, new = one.alarms.raise_alarm("k1", "printer", "warning")
    assert new and fresh.id != alarm.id
    history = one.alarms.page(ALL, active=None, kiosk_id="k1")
    assert history.total == 3
    assert [(a.type, a.active) for a in history.items] == [
        ("printer", True),
        ("offline", True),
        ("printer", False),
    ]
    assert one.alarms.page(ALL, active=False).total == 1
    with pytest.raises(ValidationError):
        one.alarms.raise_alarm("k1", "printer", "fatal")
    with pytest.raises(NotFoundError):
        one.alarms.raise_alarm("k9", "printer", "major")


def test_acknowledge_is_scoped_and_a_worse_severity_asks_again(one: Store, clock: FakeClock) -> None:
    user = one.accounts.credentials("quanly")
    assert user is not None
    alarm, _ = one.alarms.raise_alarm("k1", "printer", "minor")
    elsewhere, _ = one.alarms.raise_alarm("k2", "printer", "minor")
    with pytest.raises(NotFoundError):
        one.alarms.acknowledge(Scope.center("c1"), elsewhere.id, user[0].id)
    clock.advance(minutes=1)
    before, after = one.alarms.acknowledge(Scope.center("c1"), alarm.id, user[0].id)
    assert before.acknowledged_at is None
    assert (after.acknowledged_by, after.acknowledged_by_name, after.acknowledged_at) == (
        user[0].id,
        "quanly",
        clock.now,
    )
    again, _ = one.alarms.raise_alarm("k1", "printer", "minor")
    assert again.acknowledged_at is not None  # same severity: still acknowledged
    worse, _ = one.alarms.raise_alarm("k1", "printer", "critical")
    assert worse.acknowledged_at is None and worse.acknowledged_by is None


def test_reminders_repeat_while_an_alarm_stays_active(one: Store, clock: FakeClock) -> None:
    alarm, _ = one.alarms.raise_alarm("k1", "offline", "major")
    every = timedelta(minutes=30)
    assert one.alarms.due_reminders(every) == []
    clock.advance(minutes=31)
    assert [a.id for a in one.alarms.due_reminders(every)] == [alarm.id]
    one.alarms.mark_reminded(alarm.id)
    assert one.alarms.due_reminders(every) == []
    clock.advance(minutes=30)
    due = one.alarms.due_reminders(every)
    assert [a.id for a in due] == [alarm.id]
    one.alarms.mark_reminded(alarm.id)
    assert one.alarms.get(ALL, alarm.id).reminders == 2
    one.alarms.clear_alarm("k1", "offline")
    clock.advance(hours=5)
    assert one.alarms.due_reminders(every) == []


def test_commands_are_stored_with_their_result_once(one: Store, clock: FakeClock) -> None:
    user = one.accounts.credentials("quanly")
    assert user is not None
    command = one.commands.create(
        Scope.center("c1"), "k1", "set_notice", {"text_vi": "Nghỉ trưa"}, user[0].id, request_id="req-7f3a"
    )
    assert (command.status, command.requested_by_name, command.requested_at) == (
        "pending",
        "quanly",
        clock.now,
    )
    with pytest.raises(NotFoundError):
        one.commands.create(Scope.center("c1"), "k2", "set_notice", {}, user[0].id)
    with pytest.raises(ConflictError):
        one.commands.create(ALL, "k1", "restart_app", {}, None, request_id="req-7f3a")
    with pytest.raises(ValidationError):
        one.commands.create(ALL, "k1", "restart_app", {}, None, request_id="bad id!")
    assert [c.request_id for c in one.commands.pending()] == ["req-7f3a"]
    one.commands.mark_sent("k1", "req-7f3a")
    assert one.commands.pending() == []
    clock.advance(seconds=2)
    # the same request id answered for another command (an id another fleet used too): not ours
    assert (
        one.commands.record_result(
            "c1", "k1", "req-7f3a", command="reboot", status="ok", reason="done", result={}, at=clock.now
        )
        == "unknown"
    )
    assert one.commands.for_kiosk(ALL, "k1")[0].status == "sent"
    assert (
        one.commands.record_result(
            "c1", "k1", "req-7f3a", command="set_notice", status="ok", reason="done", result={}, at=clock.now
        )
        == "stored"
    )
    assert (
        one.commands.record_result(
            "c1", "k1", "req-7f3a", command="set_notice", status="ok", reason="done", result={}, at=clock.now
        )
        == "duplicate"
    )  # republished
    # a result of a request this store never made (another fleet's, docs/province.md): not stored
    assert (
        one.commands.record_result(
            "c1",
            "k1",
            "req-unknown",
            command="screenshot",
            status="error",
            reason="app not reachable",
            result={},
            at=clock.now,
        )
        == "unknown"
    )
    listed = one.commands.for_kiosk(ALL, "k1")
    assert [(c.request_id, c.status, c.requested_by) for c in listed] == [("req-7f3a", "ok", user[0].id)]
    assert listed[0].sent_at is not None and listed[0].result_at == clock.now
    assert one.commands.for_kiosk(Scope.center("c2"), "k1") == []
    with pytest.raises(ConflictError):
        one.commands.record_result("c2", "k1", "x", command="c", status="ok", reason="", result={}, at=None)


def test_config_versions_grow_per_target_and_states_are_kept(one: Store, clock: FakeClock) -> None:
    body = {"kiosk": {"idle_timeout_s": 90}}
    first = one.configs.record_push(ALL, "c1", "_center", body, None)
    assert first.version == 1
    assert one.configs.record_push(ALL, "c1", "_center", body, None, version=3).version == 3
    with pytest.raises(ConflictError):
        one.configs.record_push(ALL, "c1", "_center", body, None, version=3)
    assert one.configs.record_push(ALL, "c1", "k1", body, None).version == 1  # per target
    with pytest.raises(NotFoundError):
        one.configs.record_push(ALL, "c1", "k2", body, None)  # k2 is not c1's
    with pytest.raises(NotFoundError):
        one.configs.record_push(Scope.center("c2"), "c1", "_center", body, None)
    assert [p.version for p in one.configs.pushes(ALL, "c1", target="_center")] == [3, 1]
    refused = {"scope": "kiosk", "version": 4, "reason": "idle_timeout_s", "at": clock.now.isoformat()}
    one.configs.record_state(
        "c1", "k1", center_version=3, kiosk_version=1, app_pending=False, last_refused=refused, at=clock.now
    )
    state = one.configs.state(ALL, "k1")
    assert state is not None and (state.center_version, state.last_refused) == (3, refused)
    kiosk = one.registry.kiosk(ALL, "k1")
    assert (kiosk.config_center_version, kiosk.config_kiosk_version) == (3, 1)
    assert one.configs.state(Scope.center("c2"), "k1") is None
