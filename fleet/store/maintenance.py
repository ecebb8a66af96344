"""The store's housekeeping job: partitions ahead, health aggregation, retention.

Run by ``main.py fleet maintain`` and hourly by ``fleet serve``. Safe to run from several processes at
once: each step takes a lock (PostgreSQL advisory lock; on SQLite the write lock of BEGIN IMMEDIATE).

Health aggregation follows a watermark on ``received_at`` (the center's clock), not on the kiosk's
``at``: every sample is counted exactly once, however late it arrives, into the hour of its own ``at``,
because the hourly rows keep sums and counts that merge. The window stops ``SETTLE`` before now, so a
sample whose transaction began before the window's end has committed before the window is read.

Raw health is kept by whole days of ``received_at`` (Vietnam's, the partitions' days on PostgreSQL):
the cut is a midnight, so PostgreSQL's retention only DROPs day partitions (their rows counted just
before) and SQLite DELETEs exactly the same rows. Events' months go the same way. A DROP whose lock is
not granted within ``ddl_lock_timeout`` is left for the next run (``deferred`` in the report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, delete, func, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from fleet.store.base import Part
from fleet.store.changes import Settings
from fleet.store.db import Database
from fleet.store.partitions import (
    DAYS,
    DDL_LOCK_TIMEOUT,
    Partitions,
    add_months,
    month_of,
    start_of,
)
from fleet.store.schema import (
    alarms,
    audit_log,
    changes,
    commands,
    event_gaps,
    event_keys,
    events,
    health_hourly,
    health_samples,
    kiosk_status,
    login_attempts,
    sessions,
    store_settings,
)
from fleet.store.types import UtcDateTime

SETTLE = timedelta(minutes=5)
WATERMARK = "health_aggregated_until"
LOCK_KEY = 0x666C656574  # "fleet"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept (the rules as code; ``docs/fleet.md`` explains them)."""

    health_raw_days: int = 7  # raw heartbeats; older ones live on as hourly aggregates
    health_hourly_days: int = 400  # a year and a month: this month against the same month last year
    events_months: int = 13  # whole months (partitions on PostgreSQL), counted from the current one
    status_history_days: int = 400
    cleared_alarms_days: int = 400  # active alarms are never deleted, however old
    closed_gaps_days: int = 400  # open gaps stay: they are an unanswered question
    commands_days: int = 180
    login_attempts_days: int = 30
    changes_hours: int = 24  # the live pages only need minutes
    audit_days: int = 5 * 366

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"retention {name} must be a whole number >= 1, got {value!r}")


@dataclass
class Retention:
    """What one retention pass did: rows (or partitions, ``*_partitions``) removed per table, and the
    partitions left for the next run because their DROP was not granted its lock in time."""

    deleted: dict[str, int] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)


class hour_floor(FunctionElement[datetime]):
    """The start of the UTC hour of a stored time, on either backend."""

    type = UtcDateTime()
    name = "hour_floor"
    inherit_cache = True


@compiles(hour_floor, "sqlite")
def _hour_floor_sqlite(element: hour_floor, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps times as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC (fleet.store.types)
    return f"strftime('%Y-%m-%d %H:00:00.000000', {compiler.process(element.clauses, **kw)})"


@compiles(hour_floor, "postgresql")
def _hour_floor_pg(element: hour_floor, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date_trunc('hour', {compiler.process(element.clauses, **kw)})"


def floor_hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _greatest(stored: Any, incoming: Any) -> ColumnElement[Any]:
    """max(a, b) that ignores NULLs the same way on SQLite (max() does not) and PostgreSQL."""
    return case(
        (incoming.is_(None), stored),
        (stored.is_(None), incoming),
        (incoming > stored, incoming),
        else_=stored,
    )


class Maintenance(Part):
    def __init__(
        self, db: Database, partitions: Partitions, settings: Settings, health_partitions: Partitions
    ) -> None:
        super().__init__(db)
        self.partitions = partitions  # events' months
        self.health_partitions = health_partitions  # health_samples' days
        self.settings = settings
        self.ddl_lock_timeout = DDL_LOCK_TIMEOUT  # a partition DROP's or CREATE's longest wait for its lock

    def _lock(self, conn: Connection) -> None:
        if self.db.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})

    def run(self, policy: RetentionPolicy | None = None, *, now: datetime | None = None) -> dict[str, Any]:
        at = now or self.db.now()
        report: dict[str, Any] = {}
        deferred: list[str] = []
        for key, parts in (
            ("partitions_ensured", self.partitions),
            ("health_partitions_ensured", self.health_partitions),
        ):
            made = parts.ensure_ahead(at, lock_timeout=self.ddl_lock_timeout)
            report[key] = [start.isoformat() for start in made]
            if self.db.is_postgres:
                deferred += [parts.layout.name(start) for start in parts.ahead(at) if start not in made]
        report["health_hours"] = self.aggregate_health(now=at)
        retention = self.apply_retention(policy or RetentionPolicy(), now=at)
        report["deleted"] = retention.deleted
        report["deferred"] = deferred + retention.deferred  # partitions whose DDL waits for the next run
        return report

    def aggregate_health(self, *, now: datetime | None = None) -> int:
        """Fold raw samples received since the watermark into ``health_hourly``; returns rows touched."""
        upto = floor_hour((now or self.db.now()) - SETTLE)
        touched = 0
        while True:
            with self.db.write() as conn:
                self._lock(conn)
                mark = self._watermark(conn, upto)
                if mark >= upto:
                    return touched
                end = min(upto, mark + timedelta(hours=1))
                touched += self._fold(conn, mark, end)
                self._set_watermark(conn, end)

    def _watermark(self, conn: Connection, upto: datetime) -> datetime:
        stored = conn.execute(
            select(store_settings.c.value).where(store_settings.c.key == WATERMARK)
        ).scalar()
        if stored is not None:
            return datetime.fromisoformat(stored)
        oldest = conn.execute(select(func.min(health_samples.c.received_at))).scalar()
        return floor_hour(oldest) if oldest is not None else upto

    def _set_watermark(self, conn: Connection, value: datetime) -> None:
        upsert = self.db.insert(store_settings).values(key=WATERMARK, value=value.isoformat())
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[store_settings.c.key], set_={"value": value.isoformat()}
            )
        )

    def _fold(self, conn: Connection, start: datetime, end: datetime) -> int:
        s = health_samples.c
        hour = hour_floor(s.at)
        groups = conn.execute(
            select(
                s.kiosk_id,
                hour.label("hour"),
                func.count().label("samples"),
                func.count(s.cpu_percent).label("cpu_n"),
                func.coalesce(func.sum(s.cpu_percent), 0.0).label("cpu_sum"),
                func.max(s.cpu_percent).label("cpu_max"),
                func.count(s.memory_used_percent).label("memory_n"),
                func.coalesce(func.sum(s.memory_used_percent), 0.0).label("memory_sum"),
                func.max(s.memory_used_percent).label("memory_max"),
                func.max(s.disk_used_percent).label("disk_max"),
                func.count(s.temperature_c).label("temperature_n"),
                func.coalesce(func.sum(s.temperature_c), 0.0).label("temperature_sum"),
                func.max(s.temperature_c).label("temperature_max"),
                func.max(s.outbox_pending).label("outbox_pending_max"),
                func.coalesce(func.sum(case((s.app_up.is_(False), 1), else_=0)), 0).label("app_down_samples"),
            )
            .where(s.received_at >= start, s.received_at < end)
            .group_by(s.kiosk_id, hour)
        ).all()
        if not groups:
            return 0
        stmt = self.db.insert(health_hourly)
        new, old = stmt.excluded, health_hourly.c
        merged = {
            "samples": old.samples + new.samples,
            "cpu_n": old.cpu_n + new.cpu_n,
            "cpu_sum": old.cpu_sum + new.cpu_sum,
            "cpu_max": _greatest(old.cpu_max, new.cpu_max),
            "memory_n": old.memory_n + new.memory_n,
            "memory_sum": old.memory_sum + new.memory_sum,
            "memory_max": _greatest(old.memory_max, new.memory_max),
            "disk_max": _greatest(old.disk_max, new.disk_max),
            "temperature_n": old.temperature_n + new.temperature_n,
            "temperature_sum": old.temperature_sum + new.temperature_sum,
            "temperature_max": _greatest(old.temperature_max, new.temperature_max),
            "outbox_pending_max": _greatest(old.outbox_pending_max, new.outbox_pending_max),
            "app_down_samples": old.app_down_samples + new.app_down_samples,
        }
        conn.execute(
            stmt.on_conflict_do_update(index_elements=[old.kiosk_id, old.hour], set_=merged),
            [dict(g._mapping) for g in groups],
        )
        return len(groups)

    def raw_health_cut(self, policy: RetentionPolicy, *, now: datetime | None = None) -> datetime:
        """Raw heartbeats received before this go: the Vietnam midnight that begins the day of the older
        of now - ``health_raw_days`` and the aggregation's watermark. Whole days (the partitions' days on
        PostgreSQL), so between ``health_raw_days`` and one day more stay; never past the watermark,
        which only moves forward, so every row older than the cut has been folded into its hour."""
        at = now or self.db.now()
        with self.db.read() as conn:
            mark = self._watermark(conn, floor_hour(at - SETTLE))
        return start_of(DAYS.of(min(at - timedelta(days=policy.health_raw_days), mark)))

    def apply_retention(self, policy: RetentionPolicy, *, now: datetime | None = None) -> Retention:
        """Delete what the policy no longer keeps: rows (or partitions) removed per table, and the
        partitions whose DROP was not granted its lock in time (left for the next run)."""
        at = now or self.db.now()

        def days(count: int) -> datetime:
            return at - timedelta(days=count)

        result = Retention()
        deleted = result.deleted
        raw_cut = self.raw_health_cut(policy, now=at)
        # events: whole months, counted from the current one (partition boundaries, Vietnam time)
        first_kept = add_months(month_of(at), -(policy.events_months - 1))
        keys_cut = start_of(first_kept)
        if self.db.is_postgres:
            # raw health: DROP only (the cut is a day's start: no older row is outside a dropped day)
            health = self.health_partitions.drop_before(
                DAYS.of(raw_cut), count_rows=True, lock_key=LOCK_KEY, lock_timeout=self.ddl_lock_timeout
            )
            deleted["health_samples"] = sum(health.rows.values())
            deleted["health_samples_partitions"] = len(health.rows)
            months = self.partitions.drop_before(
                first_kept, lock_key=LOCK_KEY, lock_timeout=self.ddl_lock_timeout
            )
            deleted["events_partitions"] = len(months.rows)
            result.deferred = [self.health_partitions.layout.name(d) for d in health.deferred] + [
                self.partitions.layout.name(m) for m in months.deferred
            ]
            if months.deferred:
                # a month left for the next run keeps its idempotency keys as long as its events
                keys_cut = min(keys_cut, start_of(months.deferred[0]))
        with self.db.write() as conn:
            self._lock(conn)
            rules: list[tuple[str, Any]] = [
                (
                    "health_hourly",
                    delete(health_hourly).where(health_hourly.c.hour < days(policy.health_hourly_days)),
                ),
                (
                    "kiosk_status",
                    delete(kiosk_status).where(kiosk_status.c.received_at < days(policy.status_history_days)),
                ),
                (
                    "alarms",
                    delete(alarms).where(
                        alarms.c.active.is_(False), alarms.c.ended_at < days(policy.cleared_alarms_days)
                    ),
                ),
                (
                    "event_gaps",
                    delete(event_gaps).where(event_gaps.c.closed_at < days(policy.closed_gaps_days)),
                ),
                (
                    "commands",
                    delete(commands).where(
                        func.coalesce(commands.c.requested_at, commands.c.received_at)
                        < days(policy.commands_days)
                    ),
                ),
                ("sessions", delete(sessions).where(sessions.c.expires_at < at)),
                (
                    "login_attempts",
                    delete(login_attempts).where(login_attempts.c.at < days(policy.login_attempts_days)),
                ),
                (
                    "changes",
                    # the newest row stays: SQLite gives a table without rows ids from 1 again, below the
                    # cursor of every open page (a quiet day's prune stopped their streams until reload)
                    delete(changes).where(
                        changes.c.at < at - timedelta(hours=policy.changes_hours),
                        changes.c.id < select(func.max(changes.c.id)).scalar_subquery(),
                    ),
                ),
                ("audit_log", delete(audit_log).where(audit_log.c.at < days(policy.audit_days))),
            ]
            if not self.db.is_postgres:
                rules.append(
                    ("health_samples", delete(health_samples).where(health_samples.c.received_at < raw_cut))
                )
                rules.append(("events", delete(events).where(events.c.occurred_at < keys_cut)))
            rules.append(("event_keys", delete(event_keys).where(event_keys.c.occurred_at < keys_cut)))
            for name, statement in rules:
                deleted[name] = conn.execute(statement).rowcount
        return result
