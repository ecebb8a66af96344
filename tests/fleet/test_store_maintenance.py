"""The housekeeping job with an injected clock: hourly health aggregates, retention rules, partitions."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from fleet.store import RetentionPolicy, Scope, Store, open_store
from fleet.store.maintenance import SETTLE, floor_hour
from fleet.store.models import EventRecord, StatusReport
from fleet.store.partitions import DAYS, DDL_LOCK_TIMEOUT, start_of
from fleet.store.schema import health_hourly, health_samples
from fleet.store.telemetry import HealthInsert
from tests.fleet.conftest import FakeClock
from tests.fleet.data import birth, health

ALL = Scope.everything()
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def one(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    store.registry.add_kiosk("k2", "c1")
    store.telemetry.record_status("c1", "k1", birth(100, T0))
    return store


def raw_count(store: Store) -> int:
    with store.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(health_samples)).scalar_one())


def test_heartbeats_fold_into_hours_exactly_once_and_raw_goes_after_the_kept_days(
    one: Store, clock: FakeClock
) -> None:
    # 03:00-04:59 UTC: one heartbeat every 10 minutes, cpu 10, 20, ... ; temperature missing in one
    for i in range(12):
        clock.now = T0 + timedelta(minutes=10 * i)
        report = health(clock.now, 100, cpu=10.0 * (i + 1), temperature=50.0 + i)
        if i == 3:
            report = health(clock.now, 100, cpu=40.0)
            report.payload["temperature_c"] = None
            from fleet.store.models import HealthReport

            report = HealthReport.from_payload(report.payload, clock.now)
        one.telemetry.record_health("c1", "k1", report)
    clock.now = T0 + timedelta(hours=2, minutes=4)  # 05:04: the 04:00 hour is not settled yet
    assert one.maintenance.aggregate_health() == 1
    clock.now = T0 + timedelta(hours=2, minutes=6)
    assert one.maintenance.aggregate_health() == 1
    assert one.maintenance.aggregate_health() == 0  # nothing new: nothing counted twice
    hours = one.telemetry.health_hours(ALL, "k1", T0, T0 + timedelta(hours=3))
    assert [(h.hour, h.samples) for h in hours] == [(T0, 6), (T0 + timedelta(hours=1), 6)]
    first = hours[0]
    assert first.cpu_avg == pytest.approx(35.0) and first.cpu_max == 60.0
    assert (
        first.temperature_avg == pytest.approx((50 + 51 + 52 + 54 + 55) / 5) and first.temperature_max == 55.0
    )
    assert (first.memory_max, first.disk_max, first.app_down_samples) == (41.2, 23.0, 0)
    # a late sample of 03:xx, received now, merges into its hour's sums
    clock.now = T0 + timedelta(hours=2, minutes=30)
    one.telemetry.record_health(
        "c1", "k1", health(T0 + timedelta(minutes=5), 100, cpu=100.0, temperature=80.0)
    )
    clock.now = T0 + timedelta(hours=3, minutes=6)
    one.maintenance.aggregate_health()
    merged = one.telemetry.health_hours(ALL, "k1", T0, T0 + timedelta(hours=1))[0]
    assert merged.samples == 7 and merged.cpu_max == 100.0 and merged.cpu_avg == pytest.approx(310.0 / 7)
    assert merged.temperature_max == 80.0
    # raw samples stay for the kept days, whole days of the center (received 10:00-12:30 on 23 Nov in
    # Vietnam): 7 days after the first ones only a part of that day is 7 days old, so all of it stays
    policy = RetentionPolicy(health_raw_days=7)
    clock.now = T0 + timedelta(days=7, minutes=30)
    assert one.maintenance.apply_retention(policy).deleted["health_samples"] == 0
    assert raw_count(one) == 13
    midnight = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 Dec 00:00 in Vietnam: 23 Nov ended 7 days ago
    clock.now = midnight
    # the watermark stops it too: aggregated only up to 06:00 UTC on 23 Nov, so that day is not cut yet
    assert one.maintenance.apply_retention(policy).deleted["health_samples"] == 0
    clock.now = midnight - timedelta(minutes=1)
    assert one.maintenance.run(policy)["deleted"]["health_samples"] == 0  # aggregated, a minute early
    clock.now = midnight
    assert one.maintenance.run(policy)["deleted"]["health_samples"] == 13
    assert raw_count(one) == 0
    assert len(one.telemetry.health_hours(ALL, "k1", T0, T0 + timedelta(hours=3))) == 2


def test_raw_samples_not_yet_aggregated_are_never_deleted(one: Store, clock: FakeClock) -> None:
    one.telemetry.record_health("c1", "k1", health(T0, 100))
    clock.now = T0 + timedelta(days=30)
    # retention alone (the aggregation has never run): the sample waits for its hour to be folded
    assert one.maintenance.apply_retention(RetentionPolicy(health_raw_days=1)).deleted["health_samples"] == 0
    report = one.maintenance.run(RetentionPolicy(health_raw_days=1))
    assert report["health_hours"] == 1 and report["deleted"]["health_samples"] == 1


def test_each_retention_rule_keeps_the_new_and_removes_the_old(one: Store, clock: FakeClock) -> None:
    policy = RetentionPolicy(
        health_hourly_days=10,
        status_history_days=10,
        cleared_alarms_days=10,
        closed_gaps_days=10,
        commands_days=10,
        login_attempts_days=10,
        changes_hours=1,
        audit_days=10,
        events_months=2,
    )
    old = T0
    journal = "j1"
    clock.now = old
    one.telemetry.record_status("c1", "k1", StatusReport("offline", "lost", 100))
    one.alarms.raise_alarm("k1", "printer", "minor")
    one.alarms.clear_alarm("k1", "printer")
    one.alarms.raise_alarm("k1", "offline", "major")  # stays active: never deleted
    one.events.insert_event("c1", "k1", EventRecord("e-old-1", journal, 1, "app_started", old, {}))
    one.events.insert_event("c1", "k1", EventRecord("e-old-3", journal, 3, "app_started", old, {}))
    one.events.insert_event("c1", "k1", EventRecord("e-old-2", journal, 2, "app_started", old, {}))  # closes
    one.events.insert_event("c1", "k2", EventRecord("e-k2-5", journal, 5, "app_started", old, {}))  # open gap
    one.commands.create(ALL, "k1", "restart_app", {}, None)
    one.accounts.record_attempt("quanly", "10.0.0.5", False)
    one.audit.record("login.failed", username="quanly")
    one.accounts.create_session(
        "s-old",
        one.accounts.add_user("quanly", "h", "viewer", center_id="c1").id,
        "c",
        expires_at=old + timedelta(hours=1),
        address=None,
        user_agent=None,
    )
    one.maintenance.aggregate_health(now=old + timedelta(days=1))
    clock.now = old + timedelta(days=11)
    new = clock.now
    one.telemetry.record_status("c1", "k1", birth(101, new))
    one.alarms.raise_alarm("k1", "printer", "minor")
    one.alarms.clear_alarm("k1", "printer")
    one.events.insert_event("c1", "k1", EventRecord("e-new", "j2", 1, "app_started", new, {}))
    one.commands.create(ALL, "k1", "restart_app", {}, None)
    one.accounts.record_attempt("quanly", "10.0.0.5", False)
    one.audit.record("login.failed", username="quanly")
    deleted = one.maintenance.apply_retention(policy).deleted
    assert deleted["kiosk_status"] == 2  # the first birth and the Will; the new birth stays
    assert [h.reason for h in one.telemetry.status_history(ALL, "k1")] == ["birth"]
    assert deleted["alarms"] == 1
    assert sorted((a.type, a.active) for a in one.alarms.page(ALL, active=None).items) == [
        ("offline", True),
        ("printer", False),
    ]
    assert deleted["event_gaps"] == 1 and len(one.events.gaps(ALL, "k2")) == 1
    assert (deleted["commands"], deleted["login_attempts"], deleted["audit_log"], deleted["sessions"]) == (
        1,
        1,
        1,
        1,
    )
    assert deleted["changes"] > 0 and one.changes.since(ALL, 0)[0]
    # events: 23 Nov is in the window of 2 months from 4 Dec (Nov + Dec) -> kept
    assert one.events.count(ALL) == 5
    clock.now = datetime(2027, 1, 2, tzinfo=UTC)
    one.maintenance.apply_retention(policy)
    assert [e.event_id for e in one.events.recent(ALL, "k1", limit=None)] == ["e-new"]
    assert one.events.get(ALL, "e-old-1") is None
    # the idempotency key went with it: the same old event may be stored again (it is simply old data)
    assert one.events.insert_event(
        "c1", "k1", EventRecord("e-old-1", journal, 1, "app_started", old, {})
    ).inserted


def test_old_months_are_dropped_as_partitions_on_postgresql(pg_store: Store, clock: FakeClock) -> None:
    store = pg_store
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    for seq, month in enumerate((8, 9, 10, 11), start=1):
        store.events.insert_event(
            "c1",
            "k1",
            EventRecord(f"e{month}", "j", seq, "app_started", datetime(2026, month, 10, tzinfo=UTC), {}),
        )
    report = store.maintenance.run(RetentionPolicy(events_months=2), now=clock.now)  # 23 Nov: keep Oct, Nov
    assert report["partitions_ensured"] == ["2026-11-01", "2026-12-01", "2027-01-01"]
    assert report["deleted"]["events_partitions"] == 2 and report["deferred"] == []
    with store.db.engine.connect() as conn:
        names = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"
                )
            ).scalars()
        )
    assert names == {"events_y2026m10", "events_y2026m11", "events_y2026m12", "events_y2027m01"}
    assert [e.event_id for e in store.events.recent(ALL, "k1", limit=None)] == ["e11", "e10"]


def test_retention_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(health_raw_days=0)


def _raw(store: Store) -> list[tuple[object, ...]]:
    s = health_samples.c
    with store.db.read() as conn:
        query = select(s.kiosk_id, s.at, s.received_at, s.cpu_percent).order_by(s.received_at, s.kiosk_id)
        return [tuple(r) for r in conn.execute(query)]


def _hours(store: Store) -> list[tuple[object, ...]]:
    with store.db.read() as conn:
        rows = conn.execute(select(health_hourly).order_by(health_hourly.c.kiosk_id, health_hourly.c.hour))
        return [tuple(r) for r in rows]


def test_day_partitions_remove_exactly_what_the_delete_removes(
    pg_store: Store, sqlite_url: str, clock: FakeClock
) -> None:
    """The same heartbeats into SQLite (one DELETE) and PostgreSQL (dropped days only), maintenance every
    7 hours: the same raw rows kept (those received since the Vietnam midnight of the day 2 days ago:
    whole days, none deleted out of a kept day), the same counts reported, the same hourly aggregates,
    and on PostgreSQL no partition older than the cut's day."""
    lite = open_store(sqlite_url, clock=clock)
    stores = (lite, pg_store)
    try:
        for store in stores:
            store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
            store.registry.add_center("c1", "hcm", "Trung tâm 1")
            store.registry.add_kiosk("k1", "c1")
            store.registry.add_kiosk("k2", "c1")
        policy = RetentionPolicy(health_raw_days=2)
        sent: list[tuple[str, datetime, datetime]] = []  # (kiosk, at, received_at)
        start = datetime(2026, 11, 20, 14, 10, tzinfo=UTC)  # 21:10 in Vietnam
        dropped_days = 0
        older_kept = 0  # steps that kept rows older than now - 2 days (the rest of the cut's day)
        for step in range(16):  # 16 x 7 h: about four and a half days
            batch = []
            for minute in range(0, 7 * 60, 25):
                received = start + timedelta(hours=7 * step, minutes=minute)
                for kiosk in ("k1", "k2"):
                    at = received - timedelta(seconds=3)
                    if minute == 50 and kiosk == "k2":
                        at -= timedelta(hours=20)  # a heartbeat held back by the kiosk: an old hour
                    sent.append((kiosk, at, received))
                    cpu = float(len(sent) % 97)  # whole numbers: float sums are exact in any order
                    batch.append(HealthInsert("c1", kiosk, health(at, 100, cpu=cpu), received))
            clock.now = start + timedelta(hours=7 * (step + 1))
            reports = []
            for store in stores:
                assert not any(isinstance(o, Exception) for o in store.telemetry.record_healths(batch))
                reports.append(store.maintenance.run(policy))
            assert reports[0]["health_hours"] == reports[1]["health_hours"] > 0
            assert reports[0]["deleted"]["health_samples"] == reports[1]["deleted"]["health_samples"]
            dropped_days += reports[1]["deleted"]["health_samples_partitions"]
            cut = start_of(DAYS.of(clock.now - timedelta(days=2)))
            kept = sorted((r for r in sent if r[2] >= cut), key=lambda r: (r[2], r[0]))
            older_kept += any(r[2] < clock.now - timedelta(days=2) for r in kept)
            raw = _raw(lite)
            assert [(k, a, r) for k, a, r, _ in raw] == kept
            assert _raw(pg_store) == raw
            assert _hours(pg_store) == _hours(lite)
            days = pg_store.health_partitions.existing()
            assert {DAYS.of(r[2]) for r in kept} <= days
            assert not any(day < DAYS.of(cut) for day in days)  # older days went whole
        assert dropped_days >= 2 and older_kept >= 2
        # every sample counted once into the hour of its own time, late ones too
        wanted: dict[tuple[str, datetime], int] = {}
        for kiosk, at, received in sent:
            if received < floor_hour(clock.now - SETTLE):
                key = (kiosk, floor_hour(at))
                wanted[key] = wanted.get(key, 0) + 1
        assert {(h[0], h[1]): h[2] for h in _hours(lite)} == wanted
    finally:
        lite.close()


class Reader:
    """Another connection's open transaction that has read ``parent`` (a long report): it holds the
    parent's ACCESS SHARE lock until ``end``."""

    def __init__(self, store: Store, parent: str) -> None:
        self.conn = store.db.engine.connect()
        self.transaction = self.conn.begin()
        self.conn.execute(text(f"SELECT count(*) FROM {parent}")).scalar_one()

    def end(self) -> None:
        if self.conn.closed:
            return
        self.transaction.rollback()
        self.conn.close()


def run_beside(
    store: Store, policy: RetentionPolicy, reader: Reader, insert: Any, limit: float
) -> tuple[dict[str, Any], float, list[float]]:
    """``store.maintenance.run(policy)`` in a thread while another one inserts every 50 ms (and at least
    twice); the reader is ended after ``limit`` seconds whatever happens (a run that waits for it fails
    the test, it does not hang it). Returns the run's report, its seconds and the inserts' seconds."""
    box: list[tuple[dict[str, Any], float]] = []
    latencies: list[float] = []
    done = threading.Event()

    def retention() -> None:
        started = time.perf_counter()
        try:
            box.append((store.maintenance.run(policy), time.perf_counter() - started))
        finally:
            done.set()

    def inserts() -> None:
        # at least two measured: under load the first insert may be the one that waits out the DDL's
        # lock_timeout, and the run is over when it returns (CI once saw a single 3.06 s insert)
        while not done.is_set() or len(latencies) < 2:
            started = time.perf_counter()
            insert()
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)

    threads = [threading.Thread(target=retention), threading.Thread(target=inserts)]
    try:
        for thread in threads:
            thread.start()
        finished = done.wait(limit)
    finally:
        reader.end()
        done.wait(60)
        for thread in threads:
            thread.join(60)
    assert finished, "the maintenance run waited for the reader past its lock_timeout"
    assert box, "the maintenance run failed"
    return box[0][0], box[0][1], latencies


def _fleet(store: Store) -> None:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")


@pytest.mark.parametrize("parent", ["health_samples", "events"])
def test_a_drop_that_waits_for_a_reader_is_left_for_the_next_run(
    pg_store: Store, clock: FakeClock, parent: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction reads the parent (a long report) and holds its lock: the DROP of the old partition
    gives up after DDL_LOCK_TIMEOUT, the run carries on (the other parent's partition dropped, the
    DELETEs done) and reports the partition deferred; inserts into the current partitions wait at most
    that long meanwhile; once the reader ends, the next run drops it."""
    store = pg_store
    _fleet(store)
    old_day = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)  # 10:00 on 18 Nov in Vietnam
    clock.now = old_day
    old_beats = [old_day + timedelta(minutes=m) for m in range(0, 60, 10)]
    batch = [HealthInsert("c1", "k1", health(at, 100), at) for at in old_beats]
    assert not any(isinstance(o, Exception) for o in store.telemetry.record_healths(batch))
    august = EventRecord("e-aug", "j", 1, "app_started", datetime(2026, 8, 10, tzinfo=UTC), {})
    assert store.events.insert_event("c1", "k1", august).inserted
    store.audit.record("login.failed", username="quanly")
    clock.now = T0  # 23 Nov: 18 Nov's day and August's month are out of the policy below
    policy = RetentionPolicy(health_raw_days=2, events_months=2, audit_days=1)
    store.maintenance.aggregate_health()
    store.partitions.ensure_ahead(T0)  # the CREATEs ahead are done: only the DROP meets the reader
    store.health_partitions.ensure_ahead(T0)
    blocked = {"health_samples": "health_samples_y2026m11d18", "events": "events_y2026m08"}[parent]
    timeout = DDL_LOCK_TIMEOUT.total_seconds()
    seq = iter(range(2, 10_000))

    def insert() -> None:  # into the blocked parent's current partition
        if parent == "health_samples":
            outcome = store.telemetry.record_healths([HealthInsert("c1", "k1", health(T0, 100), T0)])
            assert not any(isinstance(o, Exception) for o in outcome)
        else:
            n = next(seq)
            assert store.events.insert_event("c1", "k1", EventRecord(f"e{n}", "j", n, "app_started", T0, {}))

    reader = Reader(store, parent)
    report, elapsed, latencies = run_beside(store, policy, reader, insert, timeout + 5)
    assert timeout * 0.9 <= elapsed < timeout + 2  # waited for its lock, then gave up
    assert report["deferred"] == [blocked]
    assert report["deleted"]["audit_log"] == 1  # the rest of the retention ran
    if parent == "health_samples":
        assert report["deleted"]["events_partitions"] == 1
        assert (report["deleted"]["health_samples_partitions"], report["deleted"]["health_samples"]) == (0, 0)
    else:
        assert report["deleted"]["health_samples_partitions"] == 1
        assert (report["deleted"]["events_partitions"], report["deleted"]["event_keys"]) == (0, 0)
        # its idempotency keys stay as long as its events: the same old event is still a duplicate
        assert not store.events.insert_event("c1", "k1", august).inserted
    # inserts queued behind the waiting DROP, for at most its lock_timeout (they do queue: it is a bound)
    assert len(latencies) >= 2 and 0.5 < max(latencies) < timeout + 1
    warned = [r for r in caplog.records if r.levelname == "WARNING" and blocked in r.getMessage()]
    assert warned and "next run" in warned[0].getMessage()
    kind = store.health_partitions if parent == "health_samples" else store.partitions
    assert kind.layout.start_of_name(blocked) in kind.existing()
    # the reader is gone: the next run drops it
    again = store.maintenance.run(policy)
    assert again["deferred"] == []
    assert kind.layout.start_of_name(blocked) not in kind.existing()
    if parent == "health_samples":
        assert again["deleted"]["health_samples"] == len(old_beats)
    else:
        assert (again["deleted"]["events_partitions"], again["deleted"]["event_keys"]) == (1, 1)
    print(f"{parent}: run {elapsed:.2f} s, longest of {len(latencies)} inserts {max(latencies):.2f} s")


def test_partitions_made_ahead_wait_for_a_reader_at_most_the_lock_timeout(
    pg_store: Store, clock: FakeClock
) -> None:
    """``CREATE TABLE ... PARTITION OF`` locks the parent as a DROP does: the hourly run's days ahead
    meet the reader too. The first CREATE gives up after DDL_LOCK_TIMEOUT, the days after it wait for
    the next run (one wait per run), the run carries on; heartbeats into today's partition are stored
    meanwhile; the next run makes the days."""
    store = pg_store
    _fleet(store)
    store.health_partitions.ensure(DAYS.of(T0))  # today's exists (the heartbeats need it), not the next
    timeout = DDL_LOCK_TIMEOUT.total_seconds()

    def insert() -> None:
        outcome = store.telemetry.record_healths([HealthInsert("c1", "k1", health(T0, 100), T0)])
        assert not any(isinstance(o, Exception) for o in outcome)

    reader = Reader(store, "health_samples")
    report, elapsed, latencies = run_beside(store, RetentionPolicy(), reader, insert, timeout + 5)
    assert timeout * 0.9 <= elapsed < timeout + 2
    assert report["health_partitions_ensured"] == ["2026-11-23"]
    assert report["deferred"] == ["health_samples_y2026m11d24", "health_samples_y2026m11d25"]
    assert report["partitions_ensured"] == ["2026-11-01", "2026-12-01", "2027-01-01"]  # events: not read
    assert len(latencies) >= 2 and max(latencies) < timeout + 1
    again = store.maintenance.run(RetentionPolicy())
    assert again["deferred"] == [] and len(again["health_partitions_ensured"]) == 3
    assert {DAYS.add(DAYS.of(T0), i) for i in range(3)} <= store.health_partitions.existing()
    print(f"ahead: run {elapsed:.2f} s, longest of {len(latencies)} inserts {max(latencies):.2f} s")


def test_the_change_log_keeps_its_newest_row_so_ids_never_start_again(one: Store, clock: FakeClock) -> None:
    """A quiet day prunes every change; SQLite then gives ids from 1 again, below the cursor of every
    open page, whose stream stopped until reloaded. The newest row stays, so the next id is higher."""
    clock.now = T0
    one.alarms.raise_alarm("k1", "printer", "minor")
    one.alarms.clear_alarm("k1", "printer")
    newest = one.changes.latest_id()
    clock.now = T0 + timedelta(days=2)
    assert one.maintenance.apply_retention(RetentionPolicy(changes_hours=1)).deleted["changes"] > 0
    assert [c.id for c in one.changes.since(ALL, 0)[0]] == [newest]
    one.alarms.raise_alarm("k1", "printer", "minor")
    assert one.changes.latest_id() > newest
