"""The statements the store runs and the database's plan of each (SQLite's ``EXPLAIN QUERY PLAN``,
PostgreSQL's ``EXPLAIN``): for tests that pin which index a query uses, and for bench/counter_bench.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from fleet.store.db import Database


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any

    def where(self) -> str:
        """What follows the column list (``FROM ... WHERE ... ORDER BY ...``), on one line."""
        return " ".join(self.sql.split()).split(" FROM ", 1)[-1]


@contextmanager
def statements(db: Database) -> Iterator[list[Statement]]:
    """The SELECTs run on ``db`` meanwhile, as sent to the driver."""
    seen: list[Statement] = []

    def before(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, _many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            seen.append(Statement(sql, params))

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def plan_of(
    db: Database, statement: Statement, *, analyze: bool = False, settings: Sequence[str] = ()
) -> list[str]:
    """The plan's lines; ``analyze`` (PostgreSQL) runs the statement; ``settings`` (PostgreSQL) are
    ``SET LOCAL`` first. In a transaction rolled back afterwards (a ``FOR UPDATE`` locks nothing)."""
    if db.is_postgres:
        options = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF" if analyze else "COSTS OFF"
        prefix = f"EXPLAIN ({options}) "
    else:
        prefix = "EXPLAIN QUERY PLAN "
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for setting in settings:
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute(prefix + statement.sql, statement.params)
        rows = cursor.fetchall()
        raw.rollback()
    finally:
        raw.close()
    # SQLite: (id, parent, notused, detail); PostgreSQL: one text column
    return [str(row[0] if db.is_postgres else row[-1]) for row in rows]
