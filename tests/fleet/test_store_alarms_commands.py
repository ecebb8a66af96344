"""Alarms (one active per kiosk and type, history, acknowledge, reminders), commands and configuration."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

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
    before = one.changes.latest_id()
    one.commands.mark_sent("k1", "req-7f3a")
    assert one.commands.pending() == []
    # the kiosk page's stream re-draws it "Đã gửi" (a kiosk offline answers much later)
    assert [(c.center_id, c.kiosk_id, c.topic) for c in one.changes.since(ALL, before)[0]] == [
        ("c1", "k1", "kiosk")
    ]
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
    listed = one.commands.for_kiosk(ALL, "k1")
    assert [(c.request_id, c.status, c.requested_by) for c in listed] == [("req-7f3a", "ok", user[0].id)]
    assert listed[0].sent_at is not None and listed[0].result_at == clock.now
    assert not listed[0].sent_elsewhere
    assert one.commands.for_kiosk(Scope.center("c2"), "k1") == []
    with pytest.raises(ConflictError):
        one.commands.record_result("c2", "k1", "x", command="c", status="ok", reason="", result={}, at=None)


def test_a_result_stored_before_the_brokers_ack_is_marked_sent_keeps_the_result(
    one: Store, clock: FakeClock
) -> None:
    """The lease holder marks a command sent when it drains the broker's PUBACK, at its next tick (0.5 s);
    the kiosk's result is usually stored before that (measured in the console's browser test: every
    command's result 0.3-0.5 s before its sent mark). The late mark must not turn the result back."""
    user = one.accounts.credentials("quanly")
    assert user is not None
    one.commands.create(ALL, "k1", "print_test_ticket", {}, user[0].id, request_id="fast-1")
    before = one.changes.latest_id()
    assert result_of(one, "k1", "fast-1", "print_test_ticket", at=clock.now) == "stored"
    assert one.changes.latest_id() > before  # the kiosk page's stream re-draws it
    before = one.changes.latest_id()
    one.commands.mark_sent("k1", "fast-1")
    assert one.changes.latest_id() == before  # nothing changed: no change row
    [command] = one.commands.for_kiosk(ALL, "k1")
    assert (command.status, command.result_reason) == ("ok", "done")
    assert one.commands.pending() == []  # not published again


def result_of(store: Store, kiosk: str, request_id: str, command: str, **kw: Any) -> str:
    center = "c1" if kiosk == "k1" else "c2"
    values: dict[str, Any] = {"status": "ok", "reason": "done", "result": {}, "at": None} | kw
    return store.commands.record_result(center, kiosk, request_id, command=command, **values)


def test_another_fleets_commands_are_kept_as_theirs_and_never_taken_for_ours(
    one: Store, clock: FakeClock
) -> None:
    """A result of a request this store never made (the province's command, seen at the center, or the
    center's at the province: docs/province.md) is kept marked ``sent_elsewhere``: listed in scope,
    stored once, never pending (so never published, expired or retried), no blob accepted for it."""
    user = one.accounts.credentials("quanly")
    assert user is not None
    one.commands.create(ALL, "k1", "print_test_ticket", {}, user[0].id, request_id="ours-1",
                        expires_at=clock.now + timedelta(minutes=1))
    clock.advance(seconds=1)
    notice = {"text_vi": "Tỉnh: nghỉ trưa", "text_en": ""}
    assert result_of(one, "k1", "theirs-1", "set_notice", args=notice, at=clock.now) == "elsewhere"
    assert result_of(one, "k1", "theirs-1", "set_notice", args=notice, at=clock.now) == "duplicate"
    # the same id answered for another command later (a forged or reused id): the first one stays
    assert result_of(one, "k1", "theirs-1", "restart_app", status="error", reason="x") == "unknown"
    shot = {"blob_topic": "t", "bytes": 3, "sha256": "0" * 64, "content_type": "image/png"}
    assert result_of(one, "k1", "theirs-2", "screenshot", result=shot) == "elsewhere"
    assert result_of(one, "k1", "theirs-3", "", status="error", reason="rejected: not JSON") == "elsewhere"
    listed = {c.request_id: c for c in one.commands.for_kiosk(Scope.center("c1"), "k1")}
    assert sorted(listed) == ["ours-1", "theirs-1", "theirs-2", "theirs-3"]
    theirs = listed["theirs-1"]
    assert (theirs.sent_elsewhere, theirs.command, theirs.args, theirs.status, theirs.result_reason) == (
        True, "set_notice", notice, "ok", "done"
    )
    assert (theirs.requested_by, theirs.requested_at, theirs.expires_at, theirs.sent_at) == (None,) * 4
    assert theirs.result_at == clock.now
    assert listed["theirs-3"].args == {} and not listed["ours-1"].sent_elsewhere
    # only ours is ever published, expired or matched with a blob
    assert [c.request_id for c in one.commands.pending()] == ["ours-1"]
    clock.advance(minutes=2)
    assert one.outgoing.expire_unsent() == [("c1", "k1", "ours-1")]
    assert one.blobs.accept("c1", "k1", "theirs-2", b"png", commands_with_blobs={"screenshot"}) == "unknown"
    one.commands.mark_sent("k1", "theirs-2")
    assert one.commands.for_kiosk(ALL, "k1")[1].sent_at is None
    # in scope only: another center's manager sees none of them, by the list or by the request id
    assert one.commands.for_kiosk(Scope.center("c2"), "k1") == []
    with pytest.raises(NotFoundError):
        one.outgoing.command(Scope.center("c2"), "k1", "theirs-1")
    assert one.outgoing.command(Scope.center("c1"), "k1", "theirs-1").sent_elsewhere
    # a kiosk of another center cannot put one under this center's kiosk
    with pytest.raises(ConflictError):
        one.commands.record_result("c2", "k1", "theirs-9", command="screenshot", status="ok", reason="",
                                   result={}, at=None)
    with pytest.raises(ValidationError):
        result_of(one, "k1", "theirs-8", "screenshot", status="maybe")
    # our own command keeps its id: another fleet's result cannot have been stored under it
    with pytest.raises(ConflictError):
        one.commands.create(ALL, "k1", "restart_app", {}, user[0].id, request_id="theirs-1")


def test_a_kiosk_cannot_fill_the_store_with_results_of_commands_nobody_here_sent(
    one: Store, clock: FakeClock
) -> None:
    """At most ELSEWHERE_PER_DAY per kiosk in a day: then 'elsewhere_limit', nothing stored; another
    kiosk is not affected, and a day later the kiosk's next one is kept again."""
    from fleet.store.commands import ELSEWHERE_PER_DAY

    for i in range(ELSEWHERE_PER_DAY):
        assert result_of(one, "k1", f"made-up-{i}", "print_test_ticket") == "elsewhere"
    assert result_of(one, "k1", "made-up-last", "print_test_ticket") == "elsewhere_limit"
    assert result_of(one, "k2", "made-up-other", "print_test_ticket") == "elsewhere"
    assert len(one.commands.for_kiosk(ALL, "k1", limit=None)) == ELSEWHERE_PER_DAY
    clock.advance(hours=24, seconds=1)
    assert result_of(one, "k1", "made-up-last", "print_test_ticket") == "elsewhere"


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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_changes_applied_together_leave_what_raises_and_clears_one_by_one_leave(
    one: Store, clock: FakeClock, seed: int
) -> None:
    """``apply_changes`` (a run of the ingest) against ``raise_alarm``/``clear_alarm`` one by one, on two
    kiosks of one center given the same random steps: raises, updates (better and worse severities, an
    acknowledged alarm among them), clears, clears of nothing, a raise after a clear of the same type in
    one call; every row of the alarms' history and the change log alike."""
    import random

    from fleet.store.alarms import AlarmChange

    one.registry.add_kiosk("k1b", "c1")
    user = one.accounts.credentials("quanly")
    assert user is not None
    for kiosk in ("k1", "k1b"):  # stored before: one acknowledged, one not
        one.alarms.raise_alarm(kiosk, "printer", "minor", device="printer", at=clock.now)
        one.alarms.raise_alarm(kiosk, "offline", "major", at=clock.now)
    for alarm in one.alarms.page(Scope.everything(), active=True).items:
        if alarm.type == "printer":
            one.alarms.acknowledge(Scope.everything(), alarm.id, user[0].id, at=clock.now)
    rng = random.Random(seed)
    steps = []
    for n in range(40):
        kind = rng.choice(["printer", "offline", "scanner"])
        severity = rng.choice(["critical", "major", "minor", "warning", None, None])
        detail = {"state": rng.choice(["a", "b"]), "n": n}
        steps.append((kind, severity, detail, clock.advance(seconds=1)))

    def change(
        kiosk: str, kind: str, severity: str | None, detail: dict[str, object], at: datetime
    ) -> AlarmChange:
        device = kind if kind != "offline" else None
        return AlarmChange(kiosk, kind, at, severity, device, detail if severity else None)

    start = one.changes.latest_id()
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(one.db.engine, "before_cursor_execute", seen)
    try:
        one.alarms.apply_changes([change("k1", *step) for step in steps])
    finally:
        event.remove(one.db.engine, "before_cursor_execute", seen)
    # together, not one by one (which it falls back to when another process raised one meanwhile)
    assert sum(s.startswith("INSERT INTO alarms") for s in statements) == 1, statements
    for kind, severity, detail, at in steps:
        if severity is None:
            one.alarms.clear_alarm("k1b", kind, at=at)
        else:
            one.alarms.raise_alarm("k1b", kind, severity, device=kind if kind != "offline" else None,
                                   detail=detail, at=at)

    def history(kiosk: str) -> list[tuple[object, ...]]:
        rows = one.alarms.page(Scope.everything(), active=None, kiosk_id=kiosk, limit=1000).items
        return sorted(
            (a.started_at, a.type, a.device, a.severity, a.active, repr(a.detail), a.updated_at, a.ended_at,
             a.acknowledged_by, a.acknowledged_at)
            for a in rows
        )

    assert history("k1") == history("k1b")
    assert len(history("k1")) > 4  # the steps raised new alarms after clearing old ones

    def logged(kiosk: str) -> int:
        return len(one.changes.since(Scope.everything(), start, kiosk_id=kiosk, limit=1000)[0])

    assert logged("k1") == logged("k1b") > 0  # a change per raise, update and clear (none for nothing)


def test_a_results_code_is_stored_known_or_not_and_a_malformed_one_refused(
    one: Store, clock: FakeClock
) -> None:
    """``CommandResult.code`` (minor addition) is kept with the result, ours or another fleet's; a code
    this version does not know (a newer agent's) is kept too; None from agents before codes."""
    user = one.accounts.credentials("quanly")
    assert user is not None
    for request_id in ("paper", "newer", "old"):
        one.commands.create(ALL, "k1", "print_test_ticket", {}, user[0].id, request_id=request_id)
    why = "app.print_test_ticket: PrinterPaperOutError: printer: out of paper before printing"
    error = {"status": "error", "reason": why, "at": clock.now}
    assert result_of(one, "k1", "paper", "print_test_ticket", code="printer_paper_out", **error) == "stored"
    assert result_of(one, "k1", "newer", "print_test_ticket", code="printer_jammed", **error) == "stored"
    assert result_of(one, "k1", "old", "print_test_ticket", **error) == "stored"
    shot = "app.screenshot: ScreenshotRefused: screenshot refused: the ID-card step is on screen"
    assert result_of(one, "k1", "theirs", "screenshot", status="error", reason=shot,
                     code="personal_data_on_screen") == "elsewhere"
    with pytest.raises(ValidationError):
        result_of(one, "k1", "ours-bad", "screenshot", status="error", reason="x", code="Máy in hết giấy")
    listed = {c.request_id: (c.result_code, c.result_reason) for c in one.commands.for_kiosk(ALL, "k1")}
    assert listed == {
        "paper": ("printer_paper_out", why),
        "newer": ("printer_jammed", why),
        "old": (None, why),
        "theirs": ("personal_data_on_screen", shot),
    }
