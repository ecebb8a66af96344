"""The ingest's handling of each message, without MQTT (``fleet.ingest.process.Processor``), on SQLite
and PostgreSQL: payloads built by the contract, effects read back from the store."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from common.errors import NotFoundError
from contract.commands import CommandResult
from contract.config import ConfigState
from contract.events import Event, payload_from_data
from contract.health import AppHealth, DeviceHealth, Health, LinkHealth, OutboxHealth
from contract.status import Hardware, Status
from contract.tickets import AllocatorStatus
from contract.wire import now_iso
from fleet.ingest import handlers
from fleet.ingest.process import Processor, Result
from fleet.ingest.worker import freeze_heap
from fleet.store import Scope, Store
from fleet.store.models import EventRecord
from tests.fleet.conftest import FakeClock

ALL = Scope.everything()
C, K = "hcm-ben-thanh", "kiosk-bt-01"
ROOT = f"motcua/v1/{C}/{K}"


@pytest.fixture
def fleet(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center(C, "hcm", "Trung tâm Bến Thành")
    store.registry.add_center("hcm-thu-duc", "hcm", "Trung tâm Thủ Đức")
    store.registry.add_kiosk(K, C, slot=0)
    store.registry.add_kiosk("kiosk-td-01", "hcm-thu-duc", slot=0)
    store.accounts.add_user("kythuat", "x", "technician", center_id=C)
    return store


def birth(bdseq: int) -> bytes:
    return Status(
        "online", "birth", bdseq, 1, agent_version="0.1.0", hardware=Hardware(devices={})
    ).to_payload()


def beat(clock: FakeClock, bdseq: int = 10, *, printer: str = "ok", app: str = "up", **extra: Any) -> bytes:
    devices = {
        "printer": DeviceHealth(printer),
        "card_reader": DeviceHealth("ok"),
        "scanner": DeviceHealth("ok"),
    }
    if app == "down":
        devices = {name: DeviceHealth("unknown") for name in devices}
    return Health(
        bdseq=bdseq,
        boot=1,
        app=AppHealth("down", error="no answer") if app == "down" else AppHealth("up"),
        outbox=OutboxHealth(
            extra.pop("pending", 0), 1000, extra.pop("fill", 0.0), alarm=extra.pop("full", False)
        ),
        link=LinkHealth(True),
        devices=devices,
        at=now_iso(extra.pop("at", clock.now)),
        **extra,
    ).to_payload()


def active(store: Store) -> dict[str, tuple[str, Any]]:
    return {a.type: (a.severity, (a.detail or {}).get("state")) for a in store.alarms.active_for_kiosk(K)}


def test_status_highest_bdseq_wins_and_the_offline_alarm_follows(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    assert p.handle(f"{ROOT}/status", birth(10), clock.now).outcome == "stored"
    assert fleet.registry.kiosk(ALL, K).state == "online"
    late_will = Status("offline", "lost", 9, 1).to_payload()  # an older connection's Will, delivered late
    assert p.handle(f"{ROOT}/status", late_will, clock.advance(seconds=1)).outcome == "stored"
    assert fleet.registry.kiosk(ALL, K).state == "online" and active(fleet) == {}
    assert fleet.telemetry.status_history(ALL, K)[0].applied is False  # kept, marked not applied
    p.handle(f"{ROOT}/status", Status("offline", "lost", 10, 1).to_payload(), clock.advance(seconds=1))
    assert active(fleet) == {"offline": ("major", "lost")}
    p.handle(f"{ROOT}/status", birth(11), clock.advance(seconds=5))
    assert active(fleet) == {}
    ended = fleet.alarms.page(ALL, active=False, kiosk_id=K).items[0]
    assert ended.type == "offline" and ended.ended_at == clock.now
    p.handle(f"{ROOT}/status", Status("offline", "shutdown", 11, 1).to_payload(), clock.advance(seconds=5))
    assert active(fleet) == {"offline": ("minor", "shutdown")}  # switched off on purpose: less severe


def test_heartbeats_raise_update_and_clear_device_alarms(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    p.handle(f"{ROOT}/status", birth(10), clock.now)
    p.handle(f"{ROOT}/health", beat(clock, printer="paper_near_end"), clock.advance(seconds=30))
    assert active(fleet) == {"printer": ("warning", "paper_near_end")}
    first = fleet.alarms.active_for_kiosk(K)[0]
    fleet.alarms.acknowledge(ALL, first.id, fleet.accounts.credentials("kythuat")[0].id)  # type: ignore[index]
    p.handle(f"{ROOT}/health", beat(clock, printer="paper_out"), clock.advance(seconds=30))
    now_out = fleet.alarms.active_for_kiosk(K)[0]
    assert (now_out.id, now_out.severity, now_out.acknowledged_at) == (
        first.id,
        "critical",
        None,
    )  # worse: again
    changes = fleet.changes.latest_id()
    p.handle(f"{ROOT}/health", beat(clock, printer="paper_out"), clock.advance(seconds=30))
    assert fleet.changes.latest_id() == changes  # the same report again writes no alarm (nor its live row)
    p.handle(f"{ROOT}/health", beat(clock, app="down"), clock.advance(seconds=30))
    assert active(fleet) == {"printer": ("critical", "paper_out"), "app_down": ("major", None)}
    p.handle(f"{ROOT}/health", beat(clock, full=True, pending=900, fill=0.9), clock.advance(seconds=30))
    assert active(fleet) == {"outbox_near_full": ("major", None)}
    p.handle(f"{ROOT}/health", beat(clock), clock.advance(seconds=30))
    assert active(fleet) == {}


def test_clock_and_certificate_alarms(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    p.handle(f"{ROOT}/status", birth(10), clock.now)
    behind = beat(
        clock, at=clock.now - timedelta(minutes=5), cert_not_after=now_iso(clock.now + timedelta(days=10))
    )
    p.handle(f"{ROOT}/health", behind, clock.now)
    assert active(fleet) == {"clock_off": ("minor", "behind"), "cert_expiring": ("major", "expiring")}
    assert fleet.alarms.active_for_kiosk(K)[1].detail["skew_s"] == -300.0  # type: ignore[index]
    p.handle(f"{ROOT}/health", beat(clock, cert_not_after=now_iso(clock.now - timedelta(hours=1))), clock.now)
    assert active(fleet) == {"cert_expiring": ("critical", "expired")}
    p.handle(f"{ROOT}/health", beat(clock, cert_not_after=now_iso(clock.now + timedelta(days=90))), clock.now)
    assert active(fleet) == {}


def test_refused_messages_are_counted_logged_once_and_never_stored(
    fleet: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    p = Processor(fleet)
    caplog.set_level(logging.WARNING, "fleet.ingest.process")
    unknown = p.handle(f"motcua/v1/{C}/kiosk-bt-99/status", birth(1), clock.now)
    wrong_center = p.handle(f"motcua/v1/{C}/kiosk-td-01/status", birth(1), clock.now)  # a kiosk of Thủ Đức
    garbage = [
        p.handle(f"{ROOT}/health", b'{"schema": "health/1", "bdseq": "x"', clock.now) for _ in range(3)
    ]
    huge = p.handle(f"{ROOT}/health", b"{" + b" " * Health.MAX_BYTES + b"}", clock.now)
    bad_topic = p.handle("motcua/v1/Bad_Center/k/status", birth(1), clock.now)
    assert (unknown.outcome, unknown.reason) == ("refused", "unknown_kiosk")
    assert (wrong_center.outcome, wrong_center.reason) == ("refused", "wrong_center")
    assert {g.outcome for g in garbage} == {"invalid"} and huge.outcome == "invalid"
    assert bad_topic.reason == "bad_topic"
    counts = {(r.center_id, r.kiosk_id, r.reason): r.count for r in fleet.ingest.refusals(ALL)}
    assert counts == {
        (C, "kiosk-bt-99", "unknown_kiosk"): 1,
        (C, "kiosk-td-01", "wrong_center"): 1,
        (C, K, "invalid_health"): 4,
        ("", "", "bad_topic"): 1,
    }
    size_refusal = next(r for r in fleet.ingest.refusals(ALL) if r.reason == "invalid_health")
    assert f"more than the {Health.MAX_BYTES} allowed" in (
        size_refusal.detail or ""
    )  # checked before parsing
    logged = [r.getMessage() for r in caplog.records]
    assert sum("invalid_health" in m for m in logged) == 1  # logged once, counted every time
    assert fleet.registry.kiosk(ALL, "kiosk-td-01").state == "unknown"  # nothing stored for it
    # the manager of Thủ Đức sees the refusal of their kiosk; Bến Thành's the ones under its id
    assert {r.reason for r in fleet.ingest.refusals(Scope.center("hcm-thu-duc"))} == {"wrong_center"}
    assert "bad_topic" not in {r.reason for r in fleet.ingest.refusals(Scope.center(C))}


def event(seq: int, kind: str, payload: dict[str, Any], journal: str) -> Event:
    return Event(uuid.uuid4().hex, seq, journal, payload_from_data(kind, payload), now_iso(), False)


def test_events_are_idempotent_and_call_the_handlers_at_least_once(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    seen: list[tuple[str, int, bool]] = []

    def on_ticket(
        store: Store, center_id: str, kiosk_id: str, record: EventRecord, *, duplicate: bool
    ) -> None:
        assert (center_id, kiosk_id) == (C, K) and record.payload["number"].startswith("A")
        seen.append((record.kind, record.seq, duplicate))

    def broken(store: Store, center_id: str, kiosk_id: str, record: EventRecord) -> None:
        raise RuntimeError("a bug in a handler")

    everything: list[str] = []
    handlers.register("ticket_issued", on_ticket)
    handlers.register("ticket_issued", broken)
    handlers.register("*", lambda store, center_id, kiosk_id, record: everything.append(record.kind))
    try:
        journal = uuid.uuid4().hex
        ticket = {
            "number": "A001",
            "service": "HOTICH",
            "priority": False,
            "identified": False,
            "day": "2026-11-23",
        }
        first = event(1, "ticket_issued", ticket, journal)
        results = [
            p.handle(f"{ROOT}/event/ticket_issued", first.to_payload(), clock.now),
            p.handle(f"{ROOT}/event/ticket_issued", first.to_payload(), clock.now),  # a redelivery
            p.handle(
                f"{ROOT}/event/rating",
                event(
                    2,
                    "rating",
                    {
                        "level": 3,
                        "scale": 4,
                        "level_key": "ok",
                        "target_kind": "center",
                        "target_id": None,
                        "reasons": [],
                        "criteria": {},
                    },
                    journal,
                ).to_payload(),
                clock.now,
            ),
        ]
        assert [r.outcome for r in results] == ["stored", "duplicate", "stored"]
        assert [r.hook_errors for r in results] == [1, 1, 0]
        assert seen == [("ticket_issued", 1, False), ("ticket_issued", 1, True)]
        assert everything == ["ticket_issued", "ticket_issued", "rating"]
        assert fleet.events.count(ALL, kiosk_id=K) == 2
        wrong_topic = p.handle(
            f"{ROOT}/event/rating", event(3, "ticket_issued", ticket, journal).to_payload(), clock.now
        )
        assert wrong_topic.outcome == "invalid" and fleet.events.count(ALL, kiosk_id=K) == 2
        dropped = event(12, "outbox_dropped", {"count": 8, "first_seq": 3, "last_seq": 10}, journal)
        p.handle(f"{ROOT}/event/outbox_dropped", dropped.to_payload(), clock.now)
        assert active(fleet) == {"events_dropped": ("major", "dropped")}
        assert fleet.alarms.active_for_kiosk(K)[0].detail["count"] == 8  # type: ignore[index]
        gaps = fleet.events.gaps(ALL, K, open_only=False)
        assert [(g.first_seq, g.last_seq, g.closed_reason) for g in gaps if g.closed_at] == [
            (3, 10, "dropped")
        ]
        assert [(g.first_seq, g.last_seq) for g in gaps if g.closed_at is None] == [(11, 11)]
    finally:
        handlers.unregister("ticket_issued", on_ticket)
        handlers.unregister("ticket_issued", broken)
        handlers._handlers.pop("*", None)


def result_body(png: bytes, blob_topic: str = f"{ROOT}/blob/x") -> dict[str, Any]:
    return {"blob_topic": blob_topic, "bytes": len(png), "sha256": hashlib.sha256(png).hexdigest(),
            "content_type": "image/png", "files": []}


def test_results_and_blobs_are_kept_with_the_request_that_asked(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    user = fleet.accounts.credentials("kythuat")[0]  # type: ignore[index]
    shot = fleet.commands.create(ALL, K, "screenshot", {}, user.id, expires_at=clock.now + timedelta(hours=1))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    blob_topic = f"{ROOT}/blob/{shot.request_id}"
    assert p.handle(blob_topic, png, clock.now).outcome == "stored"  # the blob may come before its result
    assert p.handle(blob_topic, png, clock.now).outcome == "duplicate"
    body = result_body(png, blob_topic)
    result = CommandResult(shot.request_id, "screenshot", "ok", "done", body).to_payload()
    assert p.handle(f"{ROOT}/cmd/res", result, clock.now).outcome == "stored"
    assert p.handle(f"{ROOT}/cmd/res", result, clock.now).outcome == "duplicate"  # published twice
    stored = fleet.commands.for_kiosk(ALL, K)[0]
    assert (stored.status, stored.result["bytes"], stored.requested_by) == ("ok", len(png), user.id)  # type: ignore[index]
    assert fleet.blobs.get(ALL, K, shot.request_id).data == png
    # a request this store never made (another fleet's: docs/province.md): its blob is ignored quietly
    # (before its result and after it), its result kept as theirs, no refusal; a blob for one of ours
    # that makes none is refused
    unasked = p.handle(f"{ROOT}/blob/fleet-nobody-asked", png, clock.now)
    assert (unasked.outcome, unasked.reason) == ("ignored", "unknown_request")
    theirs = CommandResult("fleet-nobody-asked", "screenshot", "ok", "done", dict(result_body(png)),
                           args={}).to_payload()
    assert p.handle(f"{ROOT}/cmd/res", theirs, clock.now) == Result("stored", "cmd/res", "sent_elsewhere")
    assert p.handle(f"{ROOT}/cmd/res", theirs, clock.now).outcome == "duplicate"
    again = p.handle(f"{ROOT}/blob/fleet-nobody-asked", png, clock.now)
    assert (again.outcome, again.reason) == ("ignored", "unknown_request")
    listed = fleet.commands.for_kiosk(ALL, K)
    assert [(c.request_id, c.sent_elsewhere) for c in listed] == [
        ("fleet-nobody-asked", True), (shot.request_id, False)
    ]
    assert fleet.blobs.infos(ALL, K, ["fleet-nobody-asked"]) == {}
    assert fleet.ingest.refusals(ALL) == []
    test_print = fleet.commands.create(ALL, K, "print_test_ticket", {}, user.id)
    wrong = p.handle(f"{ROOT}/blob/{test_print.request_id}", png, clock.now)
    assert (wrong.outcome, wrong.reason) == ("refused", "unexpected_blob")
    too_big = p.handle(blob_topic.replace(shot.request_id, "big"), b"\0" * (4 * 1024 * 1024 + 1), clock.now)
    assert too_big.outcome == "invalid"
    with pytest.raises(NotFoundError):
        fleet.blobs.get(Scope.center("hcm-thu-duc"), K, shot.request_id)  # another center's manager


def test_a_results_code_is_stored_and_a_malformed_one_refused(fleet: Store, clock: FakeClock) -> None:
    """The ingest hands the contract's ``code`` to the store (the console says it in Vietnamese)."""
    p = Processor(fleet)
    user = fleet.accounts.credentials("kythuat")[0]  # type: ignore[index]
    made = [fleet.commands.create(ALL, K, "print_test_ticket", {}, user.id) for _ in range(2)]
    reason = "app.print_test_ticket: PrinterCoverOpenError: printer: cover open before printing"
    coded = CommandResult(made[0].request_id, "print_test_ticket", "error", reason, args={},
                          code="printer_cover_open")
    assert p.handle(f"{ROOT}/cmd/res", coded.to_payload(), clock.now).outcome == "stored"
    malformed = {**coded.to_data(), "request_id": made[1].request_id, "code": "Cover Open"}
    assert p.handle(f"{ROOT}/cmd/res", json.dumps(malformed).encode(), clock.now).outcome == "invalid"
    stored = {c.request_id: (c.status, c.result_code) for c in fleet.commands.for_kiosk(ALL, K)}
    assert stored == {
        made[0].request_id: ("error", "printer_cover_open"),
        made[1].request_id: ("pending", None),  # the malformed result was not taken for it
    }


def test_results_of_other_fleets_commands_are_checked_and_hostile_ones_refused(
    fleet: Store, clock: FakeClock
) -> None:
    """What a kiosk says about a command nobody here sent is its word only: the echoed args are kept
    only as the command's own arguments (bounded, typed), a malformed result is refused and counted,
    and none of it crashes the processor or lands under another kiosk."""
    p = Processor(fleet)

    def send(body: dict[str, Any], topic: str = f"{ROOT}/cmd/res") -> Result:
        data = {"schema": "command-result/1", "status": "ok", "reason": "done", "at": now_iso(clock.now)}
        data |= body
        return p.handle(topic, json.dumps(data).encode(), clock.now)

    def args_of(request_id: str) -> dict[str, Any]:
        return fleet.outgoing.command(ALL, K, request_id).args

    notice = {"text_vi": "Tỉnh: nghỉ trưa 11:30", "text_en": ""}
    assert send({"request_id": "p-1", "command": "set_notice", "args": notice}).reason == "sent_elsewhere"
    assert args_of("p-1") == notice
    # arguments that are not the command's (a typo'd key is left out, a wrong type or a control
    # character drops them all), a command this contract does not know, no args (an older agent)
    typo = {"text_vi": "x", "extra": 1}
    assert send({"request_id": "p-2", "command": "set_notice", "args": typo}).reason == "sent_elsewhere"
    assert args_of("p-2") == {"text_vi": "x", "text_en": ""}
    send({"request_id": "p-3", "command": "set_service_mode", "args": {"out_of_service": "yes"}})
    send({"request_id": "p-4", "command": "set_notice", "args": {"text_vi": "a\u202eb"}})
    send({"request_id": "p-5", "command": "format_disk", "args": {"really": True}})
    send({"request_id": "p-6", "command": "print_test_ticket"})
    assert [args_of(r) for r in ("p-3", "p-4", "p-5", "p-6")] == [{}, {}, {}, {}]
    assert fleet.outgoing.command(ALL, K, "p-5").command == "format_disk"  # shown as the kiosk named it
    assert fleet.ingest.refusals(ALL) == []
    # malformed: refused by the contract, counted, nothing stored
    hostile: list[dict[str, Any]] = [
        {"request_id": "p-7", "command": "set_notice", "args": ["not", "a", "table"]},
        {"request_id": "p-8", "command": "set_notice", "args": {f"k{i}": i for i in range(17)}},
        {"request_id": "p 9!", "command": "print_test_ticket"},
        {"request_id": None, "command": None, "status": "error", "reason": "rejected"},
        {"request_id": "p-10", "command": "Set-Notice"},
        {"request_id": "p-11", "command": "print_test_ticket", "status": "maybe"},
        {"request_id": "p-12", "command": "print_test_ticket", "at": "yesterday"},
        {"request_id": "p-13", "command": "print_test_ticket", "reason": "x" * 2001},
    ]
    outcomes = [send(body).outcome for body in hostile]
    assert outcomes == ["invalid"] * len(hostile)
    assert p.handle(f"{ROOT}/cmd/res", b"\xff" * 10, clock.now).outcome == "invalid"
    assert p.handle(f"{ROOT}/cmd/res", b"{" * 70_000, clock.now).outcome == "invalid"
    assert sum(r.count for r in fleet.ingest.refusals(ALL)) == len(hostile) + 2
    # a kiosk of no registry, or under another center's name: refused, nothing stored
    nobody = send({"request_id": "p-14", "command": "screenshot"}, f"motcua/v1/{C}/kiosk-nobody/cmd/res")
    assert nobody.reason == "unknown_kiosk"
    elsewhere = send({"request_id": "p-15", "command": "screenshot"}, f"motcua/v1/hcm-thu-duc/{K}/cmd/res")
    assert (elsewhere.outcome, elsewhere.reason) == ("refused", "wrong_center")
    kept = sorted(c.request_id for c in fleet.commands.for_kiosk(ALL, K))
    assert kept == ["p-1", "p-2", "p-3", "p-4", "p-5", "p-6"]


def test_a_kiosk_past_the_daily_bound_of_other_fleets_results_is_refused_and_counted(
    fleet: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fleet.store.commands as store_commands

    monkeypatch.setattr(store_commands, "ELSEWHERE_PER_DAY", 2)  # the bound is 200; the path is the same
    p = Processor(fleet)
    outcomes = [
        p.handle(f"{ROOT}/cmd/res", CommandResult(f"made-up-{i}", "restart_app", "ok", "done").to_payload(),
                 clock.now)
        for i in range(3)
    ]
    assert [(r.outcome, r.reason) for r in outcomes] == [
        ("stored", "sent_elsewhere"), ("stored", "sent_elsewhere"), ("refused", "elsewhere_limit")
    ]
    [refusal] = fleet.ingest.refusals(ALL)
    assert (refusal.kiosk_id, refusal.reason, refusal.count) == (K, "elsewhere_limit", 1)
    assert len(fleet.commands.for_kiosk(ALL, K)) == 2


def test_a_pushed_heartbeat_moves_the_silence_limit_once_applied(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    p.handle(f"{ROOT}/status", birth(10), clock.now)
    push = fleet.configs.record_push(ALL, C, "_center", {"agent": {"heartbeat_s": 10}}, None)
    state = ConfigState({"center": push.version, "kiosk": 0}, at=now_iso(clock.now)).to_payload()
    assert p.handle(f"{ROOT}/config/state", state, clock.now).outcome == "stored"
    assert fleet.registry.kiosk(ALL, K).heartbeat_s == 10
    assert fleet.configs.state(ALL, K).center_version == push.version  # type: ignore[union-attr]
    p.handle(f"{ROOT}/health", beat(clock), clock.now)  # offline after 3 x 10 s from now on
    assert fleet.telemetry.mark_silent(clock.now + timedelta(seconds=29)) == []
    assert fleet.telemetry.mark_silent(clock.now + timedelta(seconds=31)) == [K]


def test_an_allocator_online_but_unwell_raises_its_own_alarm(fleet: Store, clock: FakeClock) -> None:
    """Online with a dead worker or an unreadable enrollment registry (every kiosk refused): seen only
    in the allocator's retained health until now."""
    from contract.tickets import AllocatorHealth

    p = Processor(fleet)
    topic = f"motcua/v1/{C}/_center/allocator/status"
    unwell = AllocatorHealth(registry_problem="registry/enrolled-kiosks.json: not JSON")
    p.handle(topic, AllocatorStatus("online", "birth", 800, 20, health=unwell).to_payload(), clock.now)
    (alarm,) = fleet.alarms.page(Scope.center(C)).items
    assert (alarm.type, alarm.kiosk_id, alarm.severity) == ("allocator_unhealthy", None, "major")
    dead = AllocatorHealth(worker_alive=False)
    p.handle(topic, AllocatorStatus("online", "birth", 800, 20, health=dead).to_payload(), clock.now)
    assert fleet.alarms.page(Scope.center(C)).total == 1  # the same alarm
    well = AllocatorHealth(registry_generation=3)
    later = clock.advance(minutes=1)
    p.handle(topic, AllocatorStatus("online", "birth", 800, 20, health=well).to_payload(), later)
    assert fleet.alarms.page(Scope.center(C)).total == 0


def test_the_allocators_status_is_an_alarm_of_the_center(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    topic = f"motcua/v1/{C}/_center/allocator/status"
    p.handle(topic, AllocatorStatus("offline", "lost", 800, 20).to_payload(), clock.now)
    center_alarms = fleet.alarms.page(Scope.center(C)).items
    assert [(a.type, a.kiosk_id, a.severity) for a in center_alarms] == [("allocator_offline", None, "major")]
    p.handle(topic, AllocatorStatus("offline", "lost", 800, 20).to_payload(), clock.now)  # retained, again
    assert fleet.alarms.page(Scope.center(C)).total == 1
    p.handle(topic, AllocatorStatus("online", "birth", 800, 20).to_payload(), clock.advance(minutes=2))
    assert fleet.alarms.page(Scope.center(C)).total == 0
    unknown = p.handle("motcua/v1/no-such-center/_center/allocator/status", b"{}", clock.now)
    assert (unknown.outcome, unknown.reason) == ("refused", "unknown_center")


@pytest.fixture(autouse=True)
def no_leftover_handlers() -> Iterator[None]:
    before = {k: list(v) for k, v in handlers._handlers.items()}
    yield
    assert {k: v for k, v in handlers._handlers.items() if v} == {k: v for k, v in before.items() if v}


def test_freeze_heap_hides_what_is_alive_from_the_collector_and_still_collects_what_comes_after() -> None:
    """``main.py fleet ingest`` freezes its heap before its worker starts: a full collection no longer
    walks the modules and caches of the process (docs/fleet.md, "Fifth pass")."""
    class Node:
        other: Any = None

    def cycle() -> None:
        first, second = Node(), Node()
        first.other, second.other = second, first

    assert gc.get_freeze_count() == 0  # no other test froze the pytest process
    cycle()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 1000  # the modules at least
        frozen = gc.get_freeze_count()
        cycle()  # garbage made after the freeze: still the collector's
        assert gc.collect() >= 2
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
