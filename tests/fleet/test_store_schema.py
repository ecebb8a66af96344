"""Migrations and the database setup, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from common.errors import ConfigError, StoreError
from fleet.store import Store, migrate, open_store
from fleet.store.db import Database, normalize_url
from fleet.store.schema import alarms, metadata


def partitions_of(db: Database) -> set[str]:
    if not db.is_postgres:
        return set()
    with db.engine.connect() as conn:
        return set(conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits")).scalars())


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
