"""A batch's rows as one JSON parameter on PostgreSQL: ``json_to_recordset(CAST(:rows AS json)) AS
rows(col type, ...)``, a table SQLAlchemy statements can select from, join and update from.

Why: a multi-row statement with a parameter per value (SQLAlchemy's "insertmanyvalues", an IN list of
tuples) has a text that changes with the batch's size and, past 50 parameters, psycopg converts it
again on every execution and never prepares it (``MAX_CACHED_STATEMENT_PARAMS``): profiled, the queue's
write of an ingest batch spent most of its time there. One JSON document is one parameter, dumped by
``json.dumps`` in C, and the statement's text is constant (compiled once, prepared by the server).

The values go in as JSON: times as ISO 8601 text (aware, converted to UTC as ``UtcDateTime`` would:
these statements bypass its bind processing) and parsed by the column's type in the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Text, bindparam, cast, column, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

#: the record's column types by kind (PostgreSQL parses each JSON value with it)
TEXT: TypeEngine[Any] = Text()
BIGINT: TypeEngine[Any] = BigInteger()
BOOLEAN: TypeEngine[Any] = Boolean()
TIMESTAMPTZ: TypeEngine[Any] = DateTime(timezone=True)
JSONB_VALUE: TypeEngine[Any] = JSONB()


def recordset(name: str, columns: Sequence[tuple[str, TypeEngine[Any]]]) -> TableValuedAlias:
    """``json_to_recordset(CAST(:name AS json)) AS name(...)``; bind ``name`` to ``rows_json(...)``."""
    rows = func.json_to_recordset(cast(bindparam(name), JSON))
    return rows.table_valued(*(column(c, t) for c, t in columns)).render_derived(name=name, with_types=True)


def rows_json(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, TypeEngine[Any]]]) -> str:
    """The rows' values of ``columns`` as one JSON document (times aware, in UTC)."""
    names = [name for name, _ in columns]
    return json.dumps([{name: _plain(row.get(name)) for name in names} for row in rows])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store takes aware (UTC) times only")
        return value.astimezone(UTC).isoformat()
    return value
