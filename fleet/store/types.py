"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zone type: times are stored there as naive UTC text (SQLAlchemy's fixed-width
format, so text order is time order) and come back aware; PostgreSQL stores ``timestamptz``. Either
way the store only ever hands out aware UTC datetimes and refuses naive ones on the way in, so a local
time can never slip in unnoticed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store takes aware (UTC) times only")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON on SQLite (text), JSONB on PostgreSQL (indexable, compact)
Json = JSON().with_variant(JSONB(), "postgresql")

#: 64-bit surrogate keys; on SQLite an INTEGER PRIMARY KEY so it is the rowid (autoincrement works)
BigId = BigInteger().with_variant(Integer(), "sqlite")
