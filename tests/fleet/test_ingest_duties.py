"""The lease holder's sweeps, without MQTT, on SQLite and PostgreSQL with the store's clock in hand:
silence, alarms repaired after a crash, event gaps past their grace, one-shot alarms, announcements
from the watermark on, reminders while active and unacknowledged."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from common.errors import ConflictError, NotFoundError, ValidationError
from common.mqtt import TlsConfig
from fleet.alarms.rules import AlarmSettings
from fleet.ingest.worker import IngestWorker, WorkerSettings
from fleet.store import Scope, Store
from fleet.store.models import EventRecord, StatusReport
from tests.fleet.conftest import FakeClock

ALL = Scope.everything()
C = "hcm-ben-thanh"


@pytest.fixture
def worker(store: Store) -> IngestWorker:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center(C, "hcm", "Trung tâm Bến Thành")
    for i in range(1, 4):
        store.registry.add_kiosk(f"kiosk-bt-0{i}", C, slot=i, heartbeat_s=10)
    store.routes.add(ALL, C, "email", "kythuat@example.vn", min_severity="warning")
    settings = WorkerSettings(
        "127.0.0.1",
        1,
        TlsConfig(),
        "test-worker",
        alarms=AlarmSettings(
            reminder_every=timedelta(minutes=30), gap_grace=timedelta(seconds=60), announce_after=timedelta(0)
        ),
    )
    return IngestWorker(store, settings)  # never started: the sweeps need the store only


def offline_alarms(store: Store) -> dict[str, str | None]:
    return {a.kiosk_id or "": (a.detail or {}).get("state") for a in store.alarms.active_of_type("offline")}


def test_silence_and_alarms_repaired_after_a_crash(worker: IngestWorker, clock: FakeClock) -> None:
    store = worker.store
    store.telemetry.record_status(C, "kiosk-bt-01", StatusReport("online", "birth", 1))
    store.telemetry.record_status(C, "kiosk-bt-02", StatusReport("online", "birth", 1))
    # a worker crashed between storing kiosk-bt-02's Will and raising its alarm: the sweep repairs it
    store.telemetry.record_status(C, "kiosk-bt-02", StatusReport("offline", "lost", 1))
    worker.duties.sweep()
    assert offline_alarms(store) == {"kiosk-bt-02": "lost"}
    clock.advance(seconds=29)
    worker.duties.sweep()
    assert offline_alarms(store) == {"kiosk-bt-02": "lost"}  # 3 x 10 s not yet passed for kiosk-bt-01
    clock.advance(seconds=2)
    worker.duties.sweep()
    assert offline_alarms(store) == {"kiosk-bt-02": "lost", "kiosk-bt-01": "silent"}
    assert store.registry.kiosk(ALL, "kiosk-bt-01").state_reason == "silent"
    store.telemetry.record_status(
        C, "kiosk-bt-02", StatusReport("online", "birth", 2)
    )  # crash before clearing
    worker.duties.sweep()
    assert offline_alarms(store) == {"kiosk-bt-01": "silent"}


def test_many_kiosks_silent_at_once_are_raised_in_one_write_and_a_removed_one_stops_nothing(
    worker: IngestWorker, clock: FakeClock
) -> None:
    """A broker or link gone for a whole center: every kiosk silent in the same sweep, their offline
    alarms written together (one INSERT however many), and later cleared by their births. A kiosk whose
    row disappears between the sweep's reads and its write is skipped, not a failed sweep."""
    from sqlalchemy import event

    store = worker.store
    kiosks = [f"kiosk-bt-{i:02d}" for i in range(10, 40)]
    for slot, kiosk in enumerate(kiosks, start=10):
        store.registry.add_kiosk(kiosk, C, slot=slot, heartbeat_s=10)
        store.telemetry.record_status(C, kiosk, StatusReport("online", "birth", 1))
    clock.advance(seconds=31)
    inserts: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO alarms"):
            inserts.append(statement)

    event.listen(store.db.engine, "before_cursor_execute", seen)
    try:
        worker.duties.sweep()
    finally:
        event.remove(store.db.engine, "before_cursor_execute", seen)
    assert offline_alarms(store) == dict.fromkeys(kiosks, "silent")
    assert len(inserts) == 1
    for kiosk in kiosks:
        store.telemetry.record_status(C, kiosk, StatusReport("online", "birth", 2))
    worker.duties.sweep()  # the registry's states say online: every alarm ends
    assert offline_alarms(store) == {}
    from fleet.store.alarms import AlarmChange

    store.alarms.apply_changes([AlarmChange("kiosk-gone", "offline", clock.now, "major"),
                                AlarmChange(kiosks[0], "offline", clock.now, "major")])
    assert offline_alarms(store) == {kiosks[0]: None}


def test_gaps_become_alarms_only_past_their_grace(worker: IngestWorker, clock: FakeClock) -> None:
    store, journal = worker.store, uuid.uuid4().hex

    def insert(seq: int) -> None:
        record = EventRecord(
            uuid.uuid4().hex, journal, seq, "session_ended", clock.now, {"reason": "finished"}
        )
        store.events.insert_event(C, "kiosk-bt-03", record)

    insert(1)
    insert(3)  # 2 is missing for now: a second worker may be storing it this very moment
    worker.duties.sweep()
    assert store.alarms.active_of_type("events_missing") == []
    clock.advance(seconds=61)
    worker.duties.sweep()
    [missing] = store.alarms.active_of_type("events_missing")
    assert (missing.kiosk_id, missing.detail) == ("kiosk-bt-03", {"state": "gap", "count": 1})
    insert(2)  # late after all
    worker.duties.sweep()
    assert store.alarms.active_of_type("events_missing") == []


def test_dropped_events_end_once_acknowledged(worker: IngestWorker, clock: FakeClock) -> None:
    store = worker.store
    store.accounts.add_user("kythuat", "x", "technician", center_id=C)
    alarm, _ = store.alarms.raise_alarm("kiosk-bt-01", "events_dropped", "major", detail={"count": 5})
    worker.duties.sweep()
    assert store.alarms.get(ALL, alarm.id).active
    store.alarms.acknowledge(ALL, alarm.id, store.accounts.credentials("kythuat")[0].id)  # type: ignore[index]
    worker.duties.sweep()
    assert not store.alarms.get(ALL, alarm.id).active  # a loss cannot be undone: seen is the end of it


def test_announcements_start_at_the_watermark_and_remind_until_acknowledged(
    worker: IngestWorker, clock: FakeClock
) -> None:
    store = worker.store
    old, _ = store.alarms.raise_alarm("kiosk-bt-01", "app_down", "major")  # before notifications ran
    worker.duties.sweep()
    assert store.notices.due(now=clock.now) == []  # no mail about history
    new, _ = store.alarms.raise_alarm("kiosk-bt-02", "printer", "critical", device="printer")
    worker.duties.sweep()
    worker.duties.sweep()  # twice: announced once
    assert [(d.event, d.alarm.id) for d in store.notices.due(now=clock.now)] == [("raised", new.id)]
    clock.advance(minutes=31)
    worker.duties.sweep()
    events = sorted((d.event, d.number, d.alarm.id) for d in store.notices.due(now=clock.now))
    # reminders for both: an active, unacknowledged alarm is reminded about, however old
    assert events == sorted([("raised", 0, new.id), ("reminder", 1, new.id), ("reminder", 1, old.id)])
    store.accounts.add_user("kythuat", "x", "technician", center_id=C)
    store.alarms.acknowledge(ALL, new.id, store.accounts.credentials("kythuat")[0].id)  # type: ignore[index]
    clock.advance(minutes=31)
    worker.duties.sweep()
    reminders = [(d.number, d.alarm.id) for d in store.notices.due(now=clock.now) if d.event == "reminder"]
    assert sorted(reminders) == sorted([(1, new.id), (1, old.id), (2, old.id)])  # acknowledged: no more
    store.alarms.clear_alarm("kiosk-bt-02", "printer")
    worker.duties.sweep()
    assert ("cleared", new.id) in {(d.event, d.alarm.id) for d in store.notices.due(now=clock.now)}
    assert ("cleared", old.id) not in {(d.event, d.alarm.id) for d in store.notices.due(now=clock.now)}


def test_an_alarm_over_before_the_hold_mails_nobody_and_a_lasting_one_is_mailed_once(
    worker: IngestWorker, clock: FakeClock
) -> None:
    """A broker restart: every kiosk's Will at once, the births a few seconds later. The dashboard shows
    the offline alarms; the mail waits ``announce_after`` and then goes only for what is still wrong."""
    store = worker.store
    held = IngestWorker(store, replace(worker.settings, alarms=replace(worker.settings.alarms,
                                                                       announce_after=timedelta(seconds=30))))
    held.duties.sweep()  # the watermark: from here on
    for kiosk in ("kiosk-bt-01", "kiosk-bt-02", "kiosk-bt-03"):
        store.telemetry.record_status(C, kiosk, StatusReport("online", "birth", 1))
        store.telemetry.record_status(C, kiosk, StatusReport("offline", "lost", 1))
    held.duties.sweep()
    assert set(offline_alarms(store)) == {"kiosk-bt-01", "kiosk-bt-02", "kiosk-bt-03"}  # shown at once
    assert store.notices.due(now=clock.now) == []  # mailed to nobody yet
    clock.advance(seconds=5)
    for kiosk in ("kiosk-bt-01", "kiosk-bt-02"):  # back within seconds
        store.telemetry.record_status(C, kiosk, StatusReport("online", "birth", 2))
    held.duties.sweep()
    clock.advance(seconds=26)
    held.duties.sweep()
    held.duties.sweep()
    due = [(d.event, d.alarm.kiosk_id) for d in store.notices.due(now=clock.now)]
    assert due == [("raised", "kiosk-bt-03")]  # still offline after the hold: mailed, once
    store.telemetry.record_status(C, "kiosk-bt-03", StatusReport("online", "birth", 2))
    held.duties.sweep()
    due = sorted((d.event, d.alarm.kiosk_id) for d in store.notices.due(now=clock.now))
    assert due == [("cleared", "kiosk-bt-03"), ("raised", "kiosk-bt-03")]  # the quick ones: never


class RecordingLink:
    """The worker's MQTT link, connected, keeping what the lease holder publishes (topic, retained)."""

    connected = True

    def __init__(self) -> None:
        self.published: list[tuple[str, bool]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> tuple[int, int]:
        self.published.append((topic, retain))
        return (1, len(self.published))


def test_a_center_of_its_own_rule_is_pushed_from_here_while_the_others_push_their_own(
    worker: IngestWorker,
) -> None:
    """A province of bridged centers that also hosts a center without a fleet of its own (its kiosks
    on the province's broker): the store says 'centers', that one center 'here'. Its pushes are
    recorded and published; another center's are refused; the rule per center can be taken back."""
    store = worker.store
    other = "hcm-thu-duc"
    store.registry.add_center(other, "hcm", "Trung tâm Thủ Đức")
    store.configs.set_owner("centers")
    store.configs.set_owner("here", C)
    assert (store.configs.owner(), store.configs.owner(C), store.configs.owner(other)) == (
        "centers", "here", "centers"
    )
    assert store.configs.center_owners() == {C: "here"}
    with pytest.raises(NotFoundError):
        store.configs.set_owner("here", "no-such-center")
    with pytest.raises(ValidationError):
        store.configs.set_owner("province", C)  # type: ignore[arg-type]
    store.configs.record_push(ALL, C, "_center", {"kiosk": {"idle_timeout_s": 90}}, None)
    with pytest.raises(ConflictError):
        store.configs.record_push(ALL, other, "_center", {"kiosk": {"idle_timeout_s": 60}}, None)
    link = RecordingLink()
    worker.link = link  # type: ignore[assignment]
    worker.duties.publish()
    assert link.published == [(f"motcua/v1/{C}/_center/config/set", True)]
    store.configs.set_owner(None, C)  # follows the store's rule again
    assert store.configs.owner(C) == "centers" and store.configs.center_owners() == {}
    with pytest.raises(ConflictError):
        store.configs.record_push(ALL, C, "_center", {"kiosk": {"idle_timeout_s": 60}}, None)


def test_a_store_whose_centers_push_their_own_configuration_publishes_commands_but_no_push(
    worker: IngestWorker,
) -> None:
    """A province (docs/province.md): its commands go out, a push recorded before the store was told
    that each center pushes its own stays unpublished (no second retained publisher), and no new push is
    recorded; told 'here' again, the same push goes out."""
    store = worker.store
    store.configs.record_push(ALL, C, "_center", {"kiosk": {"idle_timeout_s": 90}}, None)
    store.configs.set_owner("centers")
    with pytest.raises(ConflictError):
        store.configs.record_push(ALL, C, "_center", {"kiosk": {"idle_timeout_s": 60}}, None)
    with pytest.raises(ValidationError):
        store.configs.set_owner("province")  # type: ignore[arg-type]
    store.commands.create(ALL, "kiosk-bt-01", "print_test_ticket", {}, None)
    link = RecordingLink()
    worker.link = link  # type: ignore[assignment]
    worker.duties.publish()
    assert link.published == [(f"motcua/v1/{C}/kiosk-bt-01/cmd/req", False)]
    assert [p.version for p in store.outgoing.unpublished()] == [1]
    store.configs.set_owner("here")
    worker.duties.publish()
    assert link.published[1:] == [(f"motcua/v1/{C}/_center/config/set", True)]
