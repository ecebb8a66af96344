"""The housekeeping job with an injected clock: hourly health aggregates, retention rules, partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from fleet.store import RetentionPolicy, Scope, Store, open_store
from fleet.store.maintenance import SETTLE, floor_hour
from fleet.store.models import EventRecord, StatusReport
from fleet.store.partitions import DAYS
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
    # raw samples stay for the kept days, then only the hours remain
    policy = RetentionPolicy(health_raw_days=7)
    clock.now = T0 + timedelta(days=7, minutes=30)
    assert one.maintenance.apply_retention(policy)["health_samples"] == 3  # received 03:00, 03:10, 03:20
    assert raw_count(one) == 10
    clock.now = T0 + timedelta(days=8)
    one.maintenance.run(policy)
    assert raw_count(one) == 0
    assert len(one.telemetry.health_hours(ALL, "k1", T0, T0 + timedelta(hours=3))) == 2


def test_raw_samples_not_yet_aggregated_are_never_deleted(one: Store, clock: FakeClock) -> None:
    one.telemetry.record_health("c1", "k1", health(T0, 100))
    clock.now = T0 + timedelta(days=30)
    # retention alone (the aggregation has never run): the sample waits for its hour to be folded
    assert one.maintenance.apply_retention(RetentionPolicy(health_raw_days=1))["health_samples"] == 0
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
    deleted = one.maintenance.apply_retention(policy)
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
    assert report["deleted"]["events_partitions"] == 2
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
    """The same heartbeats into SQLite (one DELETE) and PostgreSQL (dropped days, a DELETE for the day
    the cut falls in), maintenance every 7 hours: the same raw rows kept (those received since the cut),
    the same counts reported, the same hourly aggregates, and on PostgreSQL no partition older than the
    cut's day."""
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
            cut = clock.now - timedelta(days=2)
            kept = sorted((r for r in sent if r[2] >= cut), key=lambda r: (r[2], r[0]))
            raw = _raw(lite)
            assert [(k, a, r) for k, a, r, _ in raw] == kept
            assert _raw(pg_store) == raw
            assert _hours(pg_store) == _hours(lite)
            days = pg_store.health_partitions.existing()
            assert {DAYS.of(r[2]) for r in kept} <= days
            assert not any(day < DAYS.of(cut) for day in days)  # older days went whole
        assert dropped_days >= 2
        # every sample counted once into the hour of its own time, late ones too
        wanted: dict[tuple[str, datetime], int] = {}
        for kiosk, at, received in sent:
            if received < floor_hour(clock.now - SETTLE):
                key = (kiosk, floor_hour(at))
                wanted[key] = wanted.get(key, 0) + 1
        assert {(h[0], h[1]): h[2] for h in _hours(lite)} == wanted
    finally:
        lite.close()
