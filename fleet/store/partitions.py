"""Range partitions on PostgreSQL: ``events`` by month of occurred_at, ``health_samples`` by day of
received_at (declarative range partitioning).

Periods are cut at midnight in Vietnam's time (one zone for the whole country), so a month's report
reads one partition and a day's heartbeats are one table. The store creates partitions ahead
(``ensure_ahead``, at start and by the maintenance job: the current period and two more) and, for a
row outside them (a kiosk clock far off, a store whose maintenance has not run for days), the one it
needs before the insert, in a transaction of its own before the writer's takes any lock. Retention
drops whole partitions, each DROP waiting at most ``DDL_LOCK_TIMEOUT`` for its lock (else it is left
for the next run). SQLite has no partitions: all of this is a no-op there.

One ``Layout`` says how a parent is cut (its ``Period``) and names its partitions; one ``Partitions``
per parent does the DDL. Migration 0007 builds health's first partitions with the same ``Layout``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from fleet.store.db import Database

log = logging.getLogger(__name__)

PARTITION_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# how long retention's DROP of a partition, or a CREATE of one ahead, waits for its ACCESS EXCLUSIVE lock
# on the parent before it gives up until the next run: inserts queue behind the waiting DDL, so this is
# also their longest stall
DDL_LOCK_TIMEOUT = timedelta(seconds=3)
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout


def month_of(when: datetime) -> date:
    local = when.astimezone(PARTITION_ZONE)
    return date(local.year, local.month, 1)


def next_month(month: date) -> date:
    return add_months(month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def day_of(when: datetime) -> date:
    return when.astimezone(PARTITION_ZONE).date()


def start_of(period: date) -> datetime:
    """The instant a period (a month's or a day's first date) begins: midnight in Vietnam."""
    return datetime(period.year, period.month, period.day, tzinfo=PARTITION_ZONE)


@dataclass(frozen=True)
class Period:
    """How long one partition is: its start for a time, the start ``count`` periods later, and the
    suffix of its name (``y2026m11`` for a month, ``y2026m11d23`` for a day)."""

    kind: str  # "month" or "day"

    def of(self, when: datetime) -> date:
        return month_of(when) if self.kind == "month" else day_of(when)

    def add(self, start: date, count: int) -> date:
        return add_months(start, count) if self.kind == "month" else start + timedelta(days=count)

    def suffix(self, start: date) -> str:
        month = f"y{start.year:04d}m{start.month:02d}"
        return month if self.kind == "month" else f"{month}d{start.day:02d}"

    def parse(self, suffix: str) -> date | None:
        pattern = r"y(\d{4})m(\d{2})" if self.kind == "month" else r"y(\d{4})m(\d{2})d(\d{2})"
        found = re.fullmatch(pattern, suffix)
        if found is None:
            return None
        parts = [int(g) for g in found.groups()]
        return date(parts[0], parts[1], parts[2] if len(parts) == 3 else 1)


MONTHS = Period("month")
DAYS = Period("day")


@dataclass(frozen=True)
class Layout:
    """A partitioned parent: its name and its period."""

    parent: str
    period: Period

    def name(self, start: date) -> str:
        return f"{self.parent}_{self.period.suffix(start)}"

    def start_of_name(self, name: str) -> date | None:
        prefix = f"{self.parent}_"
        return self.period.parse(name[len(prefix) :]) if name.startswith(prefix) else None

    def create_sql(self, start: date) -> str:
        """The DDL of one partition (idempotent): from the period's first midnight to the next's."""
        upper = self.period.add(start, 1)
        return (
            f'CREATE TABLE IF NOT EXISTS "{self.name(start)}" PARTITION OF "{self.parent}" '
            f"FOR VALUES FROM ('{start_of(start).isoformat()}') TO ('{start_of(upper).isoformat()}')"
        )


EVENTS = Layout("events", MONTHS)
HEALTH = Layout("health_samples", DAYS)


def _set_lock_timeout(conn: Connection, timeout: timedelta) -> None:
    """``SET LOCAL lock_timeout``: for the rest of this transaction only."""
    milliseconds = max(1, round(timeout.total_seconds() * 1000))
    conn.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": f"{milliseconds}ms"})


def _is_lock_timeout(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


@dataclass
class Dropped:
    """What ``Partitions.drop_before`` did: partitions dropped (name -> rows they held, 0 when not
    counted) and the first dates of those it left because their lock was not granted in time."""

    rows: dict[str, int] = field(default_factory=dict)
    deferred: list[date] = field(default_factory=list)


def partition_name(month: date) -> str:
    """The name of the events partition of a month (``events_y2026m11``)."""
    return EVENTS.name(month)


class Partitions:
    """The partitions of one parent (``EVENTS`` unless told): created ahead or on demand, dropped by
    retention."""

    def __init__(self, db: Database, layout: Layout = EVENTS) -> None:
        self.db = db
        self.layout = layout
        self._known: set[date] = set()  # a cache only: the catalog is the truth (IF NOT EXISTS)
        self._lock = threading.Lock()

    def ensure(self, start: date, *, lock_timeout: timedelta | None = None) -> bool:
        """The partition that begins on ``start`` (a period's first date) exists afterwards. DDL in a
        transaction of its own: call it before the writer's transaction takes any lock.

        ``CREATE TABLE ... PARTITION OF`` takes an ACCESS EXCLUSIVE lock on the parent, as a DROP does:
        with ``lock_timeout`` (partitions made ahead, not needed yet) it waits at most that long for it
        and returns False when not granted (logged; the next run tries again). Without (a partition an
        insert needs now) it waits as long as it must."""
        if not self.db.is_postgres or start in self._known:
            return True
        with self._lock:
            if start in self._known:
                return True
            try:
                with self.db.engine.begin() as conn:
                    if lock_timeout is not None:
                        _set_lock_timeout(conn, lock_timeout)
                    conn.execute(text(self.layout.create_sql(start)))
            except DBAPIError as error:
                if lock_timeout is not None and _is_lock_timeout(error):
                    log.warning(
                        "partition %s not created ahead: its lock on %s was not granted within %.1f s "
                        "(a long transaction is reading the table); left for the next run",
                        self.layout.name(start),
                        self.layout.parent,
                        lock_timeout.total_seconds(),
                    )
                    return False
                # two processes raced on the same CREATE ... IF NOT EXISTS: fine if it exists now
                if start not in self.existing():
                    raise
            self._known.add(start)
            return True

    def ensure_for(self, when: datetime) -> None:
        self.ensure(self.layout.period.of(when))

    def ensure_covering(self, whens: Iterable[datetime]) -> None:
        """Every partition these times fall in (a batch's: usually one, a set lookup when known)."""
        if not self.db.is_postgres:
            return
        for start in sorted({self.layout.period.of(when) for when in whens}):
            self.ensure(start)

    def ahead(self, now: datetime, count: int = 2) -> list[date]:
        """The first dates of the current period and ``count`` more."""
        period = self.layout.period
        return [period.add(period.of(now), i) for i in range(count + 1)]

    def ensure_ahead(
        self, now: datetime, count: int = 2, *, lock_timeout: timedelta | None = DDL_LOCK_TIMEOUT
    ) -> list[date]:
        """The current period and ``count`` more, a CREATE waiting at most ``lock_timeout`` for its lock;
        returns the first dates of those that exist afterwards. After a CREATE that timed out the rest are
        left for the next run too (the same lock on the same parent: one wait per run)."""
        if not self.db.is_postgres:
            return []
        made: list[date] = []
        for start in self.ahead(now, count):
            if not self.ensure(start, lock_timeout=lock_timeout):
                break
            made.append(start)
        return made

    def existing(self) -> set[date]:
        if not self.db.is_postgres:
            return set()
        with self.db.engine.connect() as conn:
            names = conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent"
                ),
                {"parent": self.layout.parent},
            ).scalars()
            return {start for name in names if (start := self.layout.start_of_name(name)) is not None}

    def drop_before(
        self,
        start: date,
        *,
        count_rows: bool = False,
        lock_key: int | None = None,
        lock_timeout: timedelta = DDL_LOCK_TIMEOUT,
    ) -> Dropped:
        """Drop every partition wholly older than the one beginning on ``start`` (retention), oldest
        first. Each drop is a transaction of its own (DROP locks the parent: held for a moment, not for
        the caller's whole job), under the advisory lock ``lock_key`` if given, so that two processes do
        not count the same partition; rows are counted just before the DROP when ``count_rows``.

        The DROP's lock on the parent waits at most ``lock_timeout`` (``SET LOCAL lock_timeout``): a long
        reader of the parent (a report) would otherwise keep it waiting, and every insert queued behind
        it. When it is not granted in time the partition is left for the next run and so are the rest
        (they need the same lock on the same parent: one wait per run, not one per partition)."""
        dropped = Dropped()
        if not self.db.is_postgres:
            return dropped
        old = sorted(p for p in self.existing() if p < start)
        for index, period in enumerate(old):
            name = self.layout.name(period)
            try:
                with self.db.engine.begin() as conn:
                    if lock_key is not None:
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
                    # after the advisory lock: that one only waits for another maintenance run
                    _set_lock_timeout(conn, lock_timeout)
                    found = conn.execute(text("SELECT to_regclass(:name)"), {"name": f'"{name}"'}).scalar()
                    if found is None:
                        self._known.discard(period)
                        continue  # another process dropped it meanwhile
                    rows = 0
                    if count_rows:
                        rows = int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
                    conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            except DBAPIError as error:
                if not _is_lock_timeout(error):
                    raise
                dropped.deferred.extend(old[index:])
                log.warning(
                    "retention: partition %s not dropped: its lock on %s was not granted within %.1f s "
                    "(a long transaction is reading the table); left, with %d older-than-kept after it, "
                    "for the next run",
                    name,
                    self.layout.parent,
                    lock_timeout.total_seconds(),
                    len(old) - index - 1,
                )
                break
            self._known.discard(period)
            dropped.rows[name] = rows
        return dropped
