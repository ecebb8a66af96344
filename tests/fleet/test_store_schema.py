"""Migrations and the database setup, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from common.errors import ConfigError, StoreError
from fleet.store import Scope, Store, migrate, open_store
from fleet.store.db import Database, normalize_url
from fleet.store.models import EventRecord
from fleet.store.partitions import DAYS, HEALTH
from fleet.store.schema import alarms, commands, health_samples, metadata
from tests.fleet.conftest import FakeClock
from tests.fleet.data import health

if TYPE_CHECKING:
    from fleet.queue.engine import Queue


def partitions_of(db: Database) -> set[str]:
    if not db.is_postgres:
        return set()
    with db.engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE c.relkind IN ('r', 'p')"  # tables: partitioned indexes have children too
                )
            ).scalars()
        )


def test_migrations_create_exactly_the_schema_and_go_back(store_url: str) -> None:
    db = Database(store_url)
    try:
        assert migrate.current(db) == migrate.head()
        # partitions (PostgreSQL: health_samples' days, which 0007 makes) are their parent's, not tables
        # of the schema; their parents are compared
        children = partitions_of(db)
        assert children == set() or db.is_postgres
        with db.engine.connect() as conn:
            diff = compare_metadata(
                # server defaults only on PostgreSQL: SQLite reflects '' and "''" differently (Alembic)
                MigrationContext.configure(
                    conn,
                    opts={
                        "compare_type": True,
                        "compare_server_default": db.is_postgres,
                        "include_name": lambda name, kind, _: not (kind == "table" and name in children),
                    },
                ),
                metadata,
            )
        assert diff == []
        migrate.downgrade(db, "base")
        assert migrate.current(db) is None
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(db)
        assert set(metadata.tables) <= set(inspect(db.engine).get_table_names())
    finally:
        db.close()


def test_open_store_refuses_a_store_that_is_not_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with pytest.raises(StoreError, match="fleet db upgrade"):
        open_store(url)
    store = open_store(url, upgrade=True)  # what `fleet serve` does at start
    store.close()
    open_store(url).close()


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.close()


def test_sqlite_writes_of_one_process_take_turns_in_it_and_still_time_out(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second thread's write waits for the first's in this process, before it takes a connection
    (not asleep in SQLite's busy handler, which polls in steps of up to 100 ms), goes once the first
    ends, and fails as SQLite's would when the wait is too long."""
    import fleet.store.db as db_module

    db = Database(sqlite_url)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE turns (who TEXT)")
    started, ended = threading.Event(), threading.Event()

    def other() -> None:
        started.set()
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO turns VALUES ('second')")
        ended.set()

    with db.write() as conn:
        conn.exec_driver_sql("INSERT INTO turns VALUES ('first')")
        thread = threading.Thread(target=other)
        thread.start()
        assert started.wait(5)
        time.sleep(0.3)
        assert not ended.is_set()
        assert db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # the second has none yet
    assert ended.wait(5)
    thread.join(5)
    with db.read() as conn:
        order = [r[0] for r in conn.exec_driver_sql("SELECT who FROM turns ORDER BY rowid")]
    assert order == ["first", "second"]
    monkeypatch.setattr(db_module, "SQLITE_WRITE_WAIT_S", 0.2)
    failed: list[BaseException] = []

    def too_late() -> None:
        try:
            with db.write():
                pass
        except StoreError as exc:
            failed.append(exc)

    with db.write():
        late = threading.Thread(target=too_late)
        late.start()
        late.join(5)
    assert failed and "held it too long" in str(failed[0])
    db.close()


def test_foreign_keys_and_one_active_alarm_are_enforced_by_the_database(store: Store) -> None:
    now = store.db.now()
    row = {
        "center_id": "nowhere",
        "kiosk_id": "nobody",
        "type": "offline",
        "severity": "major",
        "active": True,
        "started_at": now,
        "updated_at": now,
    }
    with pytest.raises(IntegrityError), store.db.write() as conn:
        conn.execute(insert(alarms).values(**row))  # no such center or kiosk
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    row.update(center_id="c1", kiosk_id="k1")
    with store.db.write() as conn:
        conn.execute(insert(alarms).values(**row))
        conn.execute(insert(alarms).values(**{**row, "active": False}))  # history may repeat
    with pytest.raises(IntegrityError), store.db.write() as conn:
        conn.execute(insert(alarms).values(**row))  # a second active (k1, offline)


def test_store_urls() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("/tmp/x.sqlite").database == "/tmp/x.sqlite"
    with pytest.raises(ConfigError):
        normalize_url("sqlite:///:memory:")
    with pytest.raises(ConfigError):
        normalize_url("mysql://h/db")


def test_naive_times_are_refused(store: Store) -> None:
    from datetime import datetime

    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    with pytest.raises(Exception, match="naive datetime"):
        store.alarms.raise_alarm("k1", "offline", "major", at=datetime(2026, 1, 1))


def _health_rows(db: Database) -> list[tuple[object, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(health_samples).order_by(health_samples.c.id))]


def _placed(db: Database) -> dict[str, set[date]]:
    """health_samples' partitions -> the Vietnam days of the rows each holds (empty: none yet)."""
    with db.engine.connect() as conn:
        found: dict[str, set[date]] = {name: set() for name in partitions_of(db)}
        for name, received in conn.execute(
            text("SELECT tableoid::regclass::text, received_at FROM health_samples")
        ):
            found[name].add(DAYS.of(received))
    return {name: days for name, days in found.items() if name.startswith("health_samples_")}


def test_0007_partitions_health_by_day_on_postgresql_keeping_every_row_and_id(
    pg_blank_url: str, clock: FakeClock
) -> None:
    db = Database(pg_blank_url, clock=clock)
    try:
        migrate.upgrade(db, "0006")
        store = Store(db)  # its parts, on a schema one revision behind (registry only, until upgraded)
        store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
        store.registry.add_center("c1", "hcm", "Trung tâm 1")
        store.registry.add_kiosk("k1", "c1")
        store.registry.add_kiosk("k2", "c1")
        # four Vietnam days of samples, two of them either side of a Vietnam midnight (17:00 UTC)
        times = [datetime(2026, 11, 19, 20, tzinfo=UTC) + timedelta(hours=5 * i) for i in range(16)]
        times += [
            datetime(2026, 11, 21, 16, 59, 59, 999999, tzinfo=UTC),
            datetime(2026, 11, 21, 17, tzinfo=UTC),
        ]
        with db.write() as conn:
            conn.execute(
                insert(health_samples),
                [
                    {"kiosk_id": f"k{1 + i % 2}", "at": t - timedelta(seconds=2), "received_at": t,
                     "cpu_percent": float(i), "memory_used_percent": None if i == 3 else 40.0,
                     "disk_used_percent": 23.0, "temperature_c": 50.0, "outbox_pending": i, "app_up": i != 5}
                    for i, t in enumerate(times)
                ],
            )
            conn.execute(delete(health_samples).where(health_samples.c.cpu_percent == 2.0))  # a hole in ids
        before = _health_rows(db)
        assert len(before) == 17 and before[-1][0] == 18
        migrate.upgrade(db)
        Store(db).check_schema()
        assert _health_rows(db) == before  # every row, every id, every value
        with db.engine.connect() as conn:
            strategy = (
                "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'health_samples'::regclass"
            )
            assert conn.execute(text(strategy)).scalar() == "r"
            key = conn.execute(
                text(
                    "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = 'health_samples'::regclass AND i.indisprimary"
                )
            ).scalar()
            assert key == ["id", "received_at"]
        today = DAYS.of(datetime.now(UTC))
        data_days = {DAYS.of(t) for t in times}
        assert data_days == {date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23)}
        placed = _placed(db)
        # one partition per day with rows, each holding exactly its day, plus today and the two next days
        assert set(placed) == {HEALTH.name(d) for d in data_days | {DAYS.add(today, i) for i in range(3)}}
        assert all(days in (set(), {HEALTH.start_of_name(name)}) for name, days in placed.items())
        assert placed[HEALTH.name(date(2026, 11, 21))] and placed[HEALTH.name(date(2026, 11, 22))]
        # today and tomorrow land in the partitions 0007 made; ids go on after the old ones
        store = Store(db)
        for received in (datetime.now(UTC), datetime.now(UTC) + timedelta(days=1)):
            store.telemetry.record_health("c1", "k1", health(received, 100), received_at=received)
        # a day nobody made ahead (a store whose maintenance stopped): made before the insert
        far = datetime(2027, 3, 1, 12, tzinfo=UTC)
        store.telemetry.record_health("c1", "k2", health(far, 100), received_at=far)
        after = _health_rows(db)
        assert after[:17] == before and [r[0] for r in after[17:]] == [19, 20, 21]
        assert set(_placed(db)[HEALTH.name(date(2027, 3, 1))]) == {date(2027, 3, 1)}
        # and back: an ordinary table with the same rows and ids, then forward again
        migrate.downgrade(db, "0006")
        assert _health_rows(db) == after and partitions_of(db) == set()
        migrate.upgrade(db)
        assert _health_rows(db) == after
        store.telemetry.record_health("c1", "k1", health(far, 100), received_at=far)
        assert _health_rows(db)[-1][0] == 22
    finally:
        db.close()


def _one_kiosk_at(
    revision: str, backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Database:
    """A blank store of ``backend_name`` migrated up to ``revision``, with center c1 and its kiosk k1."""
    url = (
        f"sqlite:///{tmp_path / 'blank.sqlite'}"
        if backend_name == "sqlite"
        else request.getfixturevalue("pg_blank_url")
    )
    db = Database(url, clock=clock)
    migrate.upgrade(db, revision)
    store = Store(db)
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    return db


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0008_marks_the_results_old_versions_kept_for_requests_nobody_here_made(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    """Versions before ``unknown_request`` stored a result of another fleet's request as a command row
    with no requester and no request time: 0008 marks those ``sent_elsewhere``, and only those."""
    db = _one_kiosk_at("0007", backend_name, request, tmp_path, clock)
    try:
        store = Store(db)
        user = store.accounts.add_user("quanly", "hash", "center_manager", center_id="c1")
        row = {"center_id": "c1", "kiosk_id": "k1", "command": "print_test_ticket", "args": {}}
        with db.write() as conn:  # the columns 0007 has (sent_elsewhere is not among them)
            conn.execute(
                insert(commands),
                [
                    {**row, "request_id": "theirs", "requested_by": None, "requested_at": None,
                     "status": "ok", "received_at": clock.now},
                    {**row, "request_id": "ours", "requested_by": user.id, "requested_at": clock.now,
                     "status": "pending", "received_at": None},
                    # one of ours whose requester was not recorded (a script's): still ours
                    {**row, "request_id": "script", "requested_by": None, "requested_at": clock.now,
                     "status": "pending", "received_at": None},
                ],
            )
        migrate.upgrade(db)
        Store(db).check_schema()
        listed = Store(db).commands.for_kiosk(Scope.everything(), "k1")
        found = {c.request_id: c.sent_elsewhere for c in listed}
        assert found == {"theirs": True, "ours": False, "script": False}
        migrate.downgrade(db, "0007")
        migrate.upgrade(db)
    finally:
        db.close()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0009_adds_the_result_code_keeping_the_results_stored_before_it(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    """A result stored before 0009 keeps its reason and has no code (the console goes by the reason for
    it); one stored after it keeps its code; 0009 goes back and forth."""
    db = _one_kiosk_at("0008", backend_name, request, tmp_path, clock)
    try:
        row = {"center_id": "c1", "kiosk_id": "k1", "command": "print_test_ticket", "args": {},
               "requested_at": clock.now}
        with db.write() as conn:  # the columns 0008 has (result_code is not among them)
            conn.execute(
                insert(commands),
                [
                    {**row, "request_id": "before", "status": "error", "received_at": clock.now,
                     "result_reason": "app.print_test_ticket: PrinterPaperOutError: out of paper"},
                    {**row, "request_id": "after", "status": "sent", "received_at": None,
                     "result_reason": None},
                ],
            )
        migrate.upgrade(db)
        store = Store(db)
        store.check_schema()
        outcome = store.commands.record_result(
            "c1", "k1", "after", command="print_test_ticket", status="error", reason="app: cover open",
            result={}, at=clock.now, code="printer_cover_open",
        )
        assert outcome == "stored"
        listed = {c.request_id: (c.result_code, c.result_reason) for c in store.commands.for_kiosk(
            Scope.everything(), "k1")}
        assert listed == {
            "before": (None, "app.print_test_ticket: PrinterPaperOutError: out of paper"),
            "after": ("printer_cover_open", "app: cover open"),
        }
        migrate.downgrade(db, "0008")
        assert "result_code" not in {c["name"] for c in inspect(db.engine).get_columns("commands")}
        migrate.upgrade(db)
        assert Store(db).commands.for_kiosk(Scope.everything(), "k1")[0].result_code is None
    finally:
        db.close()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0010_indexes_the_queue_in_call_order_keeping_the_tickets(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    """0010 adds the two indexes a counter's "next" reads in call order (by class and issue time; the
    booked tickets, only they, by booked time) over the tickets stored before it, and goes back."""
    from fleet.store.queue_tables import queue_tickets

    db = _one_kiosk_at("0009", backend_name, request, tmp_path, clock)
    try:
        row = {"center_id": "c1", "day": "2026-11-23", "service": "HOTICH", "first_service": "HOTICH",
               "issued_at": clock.now, "queued_at": clock.now, "state": "waiting", "updated_at": clock.now}
        with db.write() as conn:
            conn.execute(
                insert(queue_tickets),
                [
                    {**row, "number": "A001", "priority": False, "token": "t1", "appointment_at": None},
                    {**row, "number": "A002", "priority": True, "token": "t2",
                     "appointment_at": clock.now + timedelta(hours=1)},
                ],
            )
        migrate.upgrade(db)
        Store(db).check_schema()
        found = {i["name"]: i for i in inspect(db.engine).get_indexes("queue_tickets")}
        assert found["ix_queue_tickets_call_order"]["column_names"] == [
            "center_id", "day", "state", "priority", "issued_at", "id"
        ]
        booked = found["ix_queue_tickets_booked_order"]
        assert booked["column_names"] == ["center_id", "day", "state", "appointment_at", "issued_at", "id"]
        where = booked["dialect_options"]["postgresql_where" if db.is_postgres else "sqlite_where"]
        assert "appointment_at IS NOT NULL" in str(where)
        with db.read() as conn:  # the rows as they were
            kept = conn.execute(select(queue_tickets.c.number, queue_tickets.c.priority).order_by(
                queue_tickets.c.number)).all()
        assert [tuple(r) for r in kept] == [("A001", False), ("A002", True)]
        migrate.downgrade(db, "0009")
        names = {i["name"] for i in inspect(db.engine).get_indexes("queue_tickets")}
        assert not names & {"ix_queue_tickets_call_order", "ix_queue_tickets_booked_order"}
        migrate.upgrade(db)
        Store(db).check_schema()
    finally:
        db.close()


def _event_indexes(db: Database) -> set[str]:
    """The names of the indexes on ``events`` (PostgreSQL: on the parent and on every partition, each
    partition's named after its own table)."""
    if not db.is_postgres:
        return {str(i["name"]) for i in inspect(db.engine).get_indexes("events")}
    with db.read() as conn:
        rows = conn.execute(text(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid IN (SELECT 'events'::regclass "
            "UNION SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)"
        )).scalars().all()
    return set(rows)


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0011_drops_the_events_journal_index_everywhere_keeping_the_events(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    """0011 drops ``events (kiosk_id, journal_id, seq)`` (no query reads it), on PostgreSQL with every
    monthly partition's copy of it, keeps the events, and its downgrade builds it again."""
    db = _one_kiosk_at("0010", backend_name, request, tmp_path, clock)
    try:
        record = EventRecord(uuid.uuid4().hex, uuid.uuid4().hex, 1, "rating", clock.now, {"level": 4})
        assert Store(db).events.insert_event("c1", "k1", record).inserted  # a month's partition made
        before = _event_indexes(db)
        # PostgreSQL: the parent's and each partition's (the event's month and those made ahead)
        assert sum("journal_id_seq" in name for name in before) >= (2 if db.is_postgres else 1)
        migrate.upgrade(db)
        Store(db).check_schema()
        assert not any("journal_id_seq" in name for name in _event_indexes(db))
        assert [e.event_id for e in Store(db).events.recent(Scope.everything(), "k1")] == [record.event_id]
        migrate.downgrade(db, "0010")
        assert _event_indexes(db) == before
        migrate.upgrade(db)
        Store(db).check_schema()
    finally:
        db.close()


def _ticket_steps(db: Database, clock: FakeClock, kinds: list[str]) -> tuple[Queue, str]:
    """Center c1's service HOTICH and, today, ticket A001's steps of ``kinds`` (a done one served in
    120 s), written as rows; the center's queue and today."""
    from fleet.queue.engine import Queue
    from fleet.store.queue_tables import queue_steps

    queue = Queue(Store(db))
    queue.set_service("c1", "HOTICH", "A", "Hộ tịch")
    day = queue.today(clock.now)
    row = {"center_id": "c1", "day": day, "number": "A001", "service": "HOTICH", "counter": "1"}
    with db.write() as conn:
        conn.execute(
            insert(queue_steps),
            [
                {**row, "seq": n, "event_id": uuid.uuid4().hex, "at": clock.now, "kind": kind,
                 "detail": {"served_s": 120.0} if kind == "done" else {}}
                for n, kind in enumerate(kinds, start=1)
            ],
        )
    return queue, day


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0012_indexes_the_latest_steps_by_day_and_by_service_keeping_the_steps(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    """0012 adds the indexes the hall display's latest calls (today's steps by id) and a service's pace
    (its finished services by time) read, over the steps stored before it, and goes back; the display
    and the pace answer from those steps on either side of it."""
    from fleet.queue.engine import Queue

    db = _one_kiosk_at("0011", backend_name, request, tmp_path, clock)
    try:
        _ticket_steps(db, clock, ["called", "done", "done", "done"])

        def shown() -> tuple[list[str | None], float | None]:
            board = Queue(Store(db)).board("c1")
            return [c.number for c in board.recent], Queue(Store(db)).paces("c1")["HOTICH"].service_s

        assert shown() == (["A001"], 120.0)
        migrate.upgrade(db)
        Store(db).check_schema()
        found = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("queue_steps")}
        assert found["ix_queue_steps_day_order"] == ["center_id", "day", "id"]
        assert found["ix_queue_steps_service_kind_at"] == ["center_id", "service", "kind", "at"]
        assert shown() == (["A001"], 120.0)
        migrate.downgrade(db, "0011")
        names = {i["name"] for i in inspect(db.engine).get_indexes("queue_steps")}
        assert not names & {"ix_queue_steps_day_order", "ix_queue_steps_service_kind_at"}
        assert shown() == (["A001"], 120.0)
        migrate.upgrade(db)
        Store(db).check_schema()
    finally:
        db.close()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0013_indexes_the_steps_by_time_keeping_the_statistics(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    """0013 adds ``queue_steps (center_id, at)``, the range the statistics read, over the steps stored
    before it, and goes back; the statistics are the same on either side of it."""
    from fleet.queue.engine import Queue
    from fleet.queue.stats import compute_groups

    db = _one_kiosk_at("0012", backend_name, request, tmp_path, clock)
    try:
        queue, day = _ticket_steps(db, clock, ["issued", "called", "done"])

        def served() -> list[tuple[str, int, int]]:
            rows = compute_groups(Queue(Store(db)), "c1", day, day, ("service",), 900.0, lang="vi",
                                  zone=queue.zone)["service"]
            return [(r.key, r.arrivals, r.served) for r in rows]

        assert served() == [("HOTICH", 1, 1)]
        migrate.upgrade(db)
        Store(db).check_schema()
        found = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("queue_steps")}
        assert found["ix_queue_steps_center_at"] == ["center_id", "at"]
        assert served() == [("HOTICH", 1, 1)]
        migrate.downgrade(db, "0012")
        names = {i["name"] for i in inspect(db.engine).get_indexes("queue_steps")}
        assert "ix_queue_steps_center_at" not in names
        assert served() == [("HOTICH", 1, 1)]
        migrate.upgrade(db)
        Store(db).check_schema()
    finally:
        db.close()
