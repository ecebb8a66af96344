"""A migrated blank store for a bench that drives the store in-process: SQLite in the bench's work
folder, or PostgreSQL in a throwaway cluster of its own (tests/fleet/pg.py), never a system server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleet.store import Store, open_store
from fleet.store.db import Clock, Database, utc_now
from fleet.store.migrate import upgrade


@contextmanager
def blank_store(backend: str, work: Path, clock: Clock = utc_now) -> Iterator[tuple[str, Store]]:
    """The store's URL and the store, migrated to the head; closed (the cluster stopped) after."""
    with _blank_url(backend, work) as url:
        db = Database(url)
        upgrade(db)
        db.close()
        store = open_store(url, clock=clock)
        try:
            yield url, store
        finally:
            store.close()


@contextmanager
def _blank_url(backend: str, work: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{work / 'bench.sqlite'}"
        return
    import psycopg

    from tests.fleet.pg import throwaway_cluster

    with throwaway_cluster() as cluster:
        with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        yield cluster.url("bench")
