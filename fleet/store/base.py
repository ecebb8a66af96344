"""What every part of the store shares: the database handle, row-to-model helpers, the change log."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, Table, bindparam, insert, update

from common.errors import ValidationError
from fleet.store.db import Database
from fleet.store.schema import changes

R = TypeVar("R")

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ValidationError(
            f"{what} {value!r}: expected 2-63 of a-z 0-9 '-' (starting with a letter or digit)"
        )
    return value


def update_rows(conn: Connection, table: Table, values_by_id: Mapping[Any, Mapping[str, Any]]) -> None:
    """Rows of ``table`` by ``id``, each with its own new values: one executemany UPDATE per set of
    columns (a batch's rows mostly change the same ones), not one statement per row."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in values_by_id.items():
        by_columns.setdefault(tuple(sorted(values)), []).append({"row_id": row_id, **values})
    for columns, rows in by_columns.items():
        conn.execute(
            update(table).where(table.c.id == bindparam("row_id")).values({c: bindparam(c) for c in columns}),
            rows,
        )


def log_changes(conn: Connection, at: datetime, items: Iterable[tuple[str, str | None, str]]) -> None:
    """Append to the change log that the live pages follow: (center_id, kiosk_id, topic) each."""
    rows = [{"at": at, "center_id": c, "kiosk_id": k, "topic": t} for c, k, t in items]
    if rows:
        conn.execute(insert(changes), rows)


def mapping(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


def record_of(cls: type[R], row: Row[Any]) -> R:
    """A frozen record whose field names are the row's column names."""
    values = row._mapping
    return cls(*(values[f.name] for f in fields(cls)))  # type: ignore[arg-type]


class Part:
    """A group of store functions over one handle (``store.registry``, ``store.alarms``...)."""

    def __init__(self, db: Database) -> None:
        self.db = db
