"""Range partitions on PostgreSQL: ``events`` by month of occurred_at, ``health_samples`` by day of
received_at (declarative range partitioning).

Periods are cut at midnight in Vietnam's time (one zone for the whole country), so a month's report
reads one partition and a day's heartbeats are one table. The store creates partitions ahead
(``ensure_ahead``, at start and by the maintenance job: the current period and two more) and, for a
row outside them (a kiosk clock far off, a store whose maintenance has not run for days), the one it
needs before the insert, in a transaction of its own before the writer's takes any lock. Retention
drops whole partitions. SQLite has no partitions: all of this is a no-op there.

One ``Layout`` says how a parent is cut (its ``Period``) and names its partitions; one ``Partitions``
per parent does the DDL. Migration 0007 builds health's first partitions with the same ``Layout``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fleet.store.db import Database

PARTITION_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


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

    def ensure(self, start: date) -> None:
        """The partition that begins on ``start`` (a period's first date) exists afterwards. DDL in a
        transaction of its own: call it before the writer's transaction takes any lock."""
        if not self.db.is_postgres or start in self._known:
            return
        with self._lock:
            if start in self._known:
                return
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(text(self.layout.create_sql(start)))
            except DBAPIError:
                # two processes raced on the same CREATE ... IF NOT EXISTS: fine if it exists now
                if start not in self.existing():
                    raise
            self._known.add(start)

    def ensure_for(self, when: datetime) -> None:
        self.ensure(self.layout.period.of(when))

    def ensure_covering(self, whens: Iterable[datetime]) -> None:
        """Every partition these times fall in (a batch's: usually one, a set lookup when known)."""
        if not self.db.is_postgres:
            return
        for start in sorted({self.layout.period.of(when) for when in whens}):
            self.ensure(start)

    def ensure_ahead(self, now: datetime, count: int = 2) -> list[date]:
        """The current period and ``count`` more; returns their first dates."""
        if not self.db.is_postgres:
            return []
        period = self.layout.period
        wanted = [period.add(period.of(now), i) for i in range(count + 1)]
        for start in wanted:
            self.ensure(start)
        return wanted

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
        self, start: date, *, count_rows: bool = False, lock_key: int | None = None
    ) -> dict[str, int]:
        """Drop every partition wholly older than the one beginning on ``start`` (retention); returns
        name -> rows it held (counted just before its DROP when ``count_rows``, else 0). Each drop is a
        transaction of its own (DROP locks the parent: held for a moment, not for the caller's whole
        job), under the advisory lock ``lock_key`` if given, so that two processes do not count the
        same partition."""
        dropped: dict[str, int] = {}
        for old in sorted(p for p in self.existing() if p < start):
            name = self.layout.name(old)
            with self.db.engine.begin() as conn:
                if lock_key is not None:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
                if conn.execute(text("SELECT to_regclass(:name)"), {"name": f'"{name}"'}).scalar() is None:
                    self._known.discard(old)
                    continue  # another process dropped it meanwhile
                rows = 0
                if count_rows:
                    rows = int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            self._known.discard(old)
            dropped[name] = rows
        return dropped
