"""Fixtures for the fleet: a store on each backend (SQLite file, and a database of a throwaway
PostgreSQL cluster this session starts itself), an injectable clock, a small filled fleet."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from fleet.store import Store, open_store
from fleet.store.db import Database
from fleet.store.migrate import upgrade
from tests.conftest import ARTIFACTS
from tests.fleet.pg import Cluster, throwaway_cluster

BACKENDS = ("sqlite", "postgresql")
START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam
_numbers = itertools.count()
TIMINGS: dict[str, float] = {}


class FakeClock:
    """The store's clock in tests: set or advanced by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        TIMINGS["postgres_cluster_start_s"] = cluster.start_s
        yield cluster


@pytest.fixture(scope="session")
def pg_template(pg_cluster: Cluster) -> str:
    """A migrated database that every PostgreSQL test copies (CREATE DATABASE ... TEMPLATE: ~15 ms)."""
    with psycopg.connect(pg_cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE DATABASE fleet_template")
    db = Database(pg_cluster.url("fleet_template"))
    started = time.perf_counter()
    upgrade(db)
    TIMINGS["postgres_migrate_s"] = time.perf_counter() - started
    db.close()
    return "fleet_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet-template") / "fleet.sqlite"
    db = Database(path)
    upgrade(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def _new_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        target = tmp_path / f"fleet-{next(_numbers)}.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    return _throwaway_database(request, f"t{next(_numbers)}", request.getfixturevalue("pg_template"))


def _throwaway_database(request: pytest.FixtureRequest, name: str, template: str | None = None) -> str:
    """A database of the session's PostgreSQL cluster (a copy of ``template``, or empty), dropped when
    the test ends."""
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))

    def drop() -> None:
        with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    request.addfinalizer(drop)
    return cluster.url(name)


@pytest.fixture
def pg_blank_url(request: pytest.FixtureRequest) -> str:
    """An empty database (no migration run) of the session's PostgreSQL cluster: for migration tests
    that start from an older revision."""
    return _throwaway_database(request, f"blank{next(_numbers)}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty store on the parametrized backend."""
    return _new_url(backend, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _new_url("sqlite", request, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    opened = open_store(store_url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def pg_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A store on PostgreSQL only, for what only PostgreSQL has (partitions)."""
    opened = open_store(_new_url("postgresql", request, tmp_path), clock=clock)
    yield opened
    opened.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if TIMINGS:
        import json

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "fleet").mkdir(exist_ok=True)
        (ARTIFACTS / "fleet" / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
