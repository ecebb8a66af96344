"""Monthly partitions of ``events`` on PostgreSQL (declarative range partitioning on occurred_at).

Months are cut at midnight in Vietnam's time (one zone for the whole country), so a month's report
reads one partition. The store creates partitions ahead (``ensure_ahead``, at start and by the
maintenance job) and, for an event outside them (a kiosk clock far off), the one it needs before the
insert. Retention drops whole partitions. SQLite has no partitions: all of this is a no-op there.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fleet.store.db import Database

PARTITION_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PARENT = "events"


def month_of(when: datetime) -> date:
    local = when.astimezone(PARTITION_ZONE)
    return date(local.year, local.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return datetime(month.year, month.month, 1, tzinfo=PARTITION_ZONE).isoformat()


class Partitions:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: set[date] = set()  # a cache only: the catalog is the truth (IF NOT EXISTS)
        self._lock = threading.Lock()

    def ensure(self, month: date) -> None:
        if not self.db.is_postgres or month in self._known:
            return
        with self._lock:
            if month in self._known:
                return
            sql = (
                f'CREATE TABLE IF NOT EXISTS "{partition_name(month)}" PARTITION OF "{PARENT}" '
                f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(next_month(month))}')"
            )
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(text(sql))
            except DBAPIError:
                # two processes raced on the same CREATE ... IF NOT EXISTS: fine if it exists now
                if month not in self.existing():
                    raise
            self._known.add(month)

    def ensure_for(self, when: datetime) -> None:
        self.ensure(month_of(when))

    def ensure_ahead(self, now: datetime, months: int = 2) -> list[date]:
        if not self.db.is_postgres:
            return []
        wanted = [add_months(month_of(now), i) for i in range(months + 1)]
        for month in wanted:
            self.ensure(month)
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
                {"parent": PARENT},
            ).scalars()
            found = set()
            for name in names:
                if len(name) == len(PARENT) + 9 and name.startswith(f"{PARENT}_y"):
                    found.add(date(int(name[-7:-3]), int(name[-2:]), 1))
            return found

    def drop_before(self, month: date) -> list[str]:
        """Drop every partition wholly older than ``month`` (retention)."""
        dropped = []
        for old in sorted(m for m in self.existing() if m < month):
            with self.db.engine.begin() as conn:
                conn.execute(text(f'DROP TABLE IF EXISTS "{partition_name(old)}"'))
            self._known.discard(old)
            dropped.append(partition_name(old))
        return dropped
