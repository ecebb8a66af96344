"""The database handle: one engine per URL, SQLite or PostgreSQL, and how transactions begin.

SQLite (a file): WAL so readers never wait for the writer, foreign keys on, a busy timeout, and every
write transaction starts with ``BEGIN IMMEDIATE``: two processes that both read then write would
otherwise deadlock on the lock upgrade (SQLITE_BUSY) instead of waiting their turn.
PostgreSQL: psycopg 3, sessions in UTC.

``batch()`` makes one write transaction the ambient one of the calling thread: every ``write()`` inside
it is a SAVEPOINT on that transaction (a store call that fails undoes only its own part) and every
``read()`` reads in it (it sees the batch's own writes). The ingest stores hundreds of messages per
commit this way (docs/fleet.md, "Batches"); everything else keeps one transaction per call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from common.errors import ConfigError, StoreError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def normalize_url(text: str | Path) -> URL:
    """A store URL: ``sqlite:///path``, ``postgresql://...`` (psycopg 3), or a plain file path."""
    raw = str(text)
    if "://" not in raw:
        raw = f"sqlite:///{Path(raw).expanduser().resolve()}"
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(f"--db: not a database URL: {text!r}") from exc
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:":
            raise ConfigError("--db: SQLite needs a file (several processes share the store)")
        return url
    raise ConfigError(f"--db: only sqlite:/// and postgresql:// are supported, got {url.drivername!r}")


#: how long a write waits for SQLite's write lock (its busy timeout; also this process's turn: ``_writer``)
SQLITE_WRITE_WAIT_S = 30


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, echo=echo, connect_args={"check_same_thread": False, "timeout": SQLITE_WRITE_WAIT_S}
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # pysqlite's own transaction handling would BEGIN lazily (DEFERRED); we issue BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_WRITE_WAIT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgres_engine(url: URL, echo: bool, pre_ping: bool) -> Engine:
    return create_engine(
        url,
        echo=echo,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=pre_ping,
        connect_args={"options": "-c timezone=UTC", "connect_timeout": 10},
    )


class Database:
    """An engine plus the few things that differ by backend; ``clock`` is injectable for tests."""

    def __init__(
        self, url: str | Path | URL, *, clock: Clock = utc_now, echo: bool = False, pre_ping: bool = True
    ) -> None:
        """``pre_ping``: PostgreSQL connections are tried with a round trip at every checkout, so that one
        left dead by a database restart is replaced unseen. Off, the first statement on such a connection
        fails (a ``StoreError``; SQLAlchemy then replaces every pooled connection): for a caller that
        retries anyway, as the ingest does its batches, a round trip per transaction for nothing."""
        self.url = url if isinstance(url, URL) else normalize_url(url)
        self.clock = clock
        if self.url.get_backend_name() == "sqlite":
            self.engine = _sqlite_engine(self.url, echo)
        else:
            self.engine = _postgres_engine(self.url, echo, pre_ping)
        self.dialect = self.engine.dialect.name
        self._ambient = threading.local()  # the batch transaction of this thread, if any
        self._sqlite_writer = threading.RLock() if self.dialect == "sqlite" else None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def now(self) -> datetime:
        when = self.clock()
        if when.tzinfo is None:
            raise ValueError("the store's clock must return aware datetimes")
        return when.astimezone(UTC)

    def _batch_conn(self) -> Connection | None:
        conn: Connection | None = getattr(self._ambient, "conn", None)
        return conn

    @contextmanager
    def batch(self) -> Iterator[Connection]:
        """One write transaction for many store calls of this thread (see the module doc); commits at
        the end, rolls everything back on an exception."""
        if self._batch_conn() is not None:
            raise RuntimeError("a store batch is already open on this thread")
        try:
            with self._writer(), self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    self._ambient.conn = conn
                    self._ambient.memo = {}
                    try:
                        yield conn
                    finally:
                        self._ambient.conn = None
                        self._ambient.memo = None
        except OperationalError as exc:
            raise StoreError(f"database {self.safe_url()}: {exc.orig}") from exc

    def batch_memo(self) -> dict[str, Any] | None:
        """A dict that lives as long as this thread's ``batch()`` (None outside one): what a part learnt
        under locks the batch's transaction holds until its end, so that it need not ask again (the
        kiosks the ingest locked up front: ``Telemetry.lock_kiosks``)."""
        memo: dict[str, Any] | None = getattr(self._ambient, "memo", None)
        return memo

    @contextmanager
    def read(self) -> Iterator[Connection]:
        ambient = self._batch_conn()
        if ambient is not None:
            yield ambient
            return
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.safe_url()}: {exc.orig}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; on SQLite it takes the write lock at BEGIN (see module doc). Inside a
        ``batch()``, a savepoint of the batch's transaction."""
        ambient = self._batch_conn()
        if ambient is not None:
            try:
                with ambient.begin_nested():
                    yield ambient
            except OperationalError as exc:
                raise StoreError(f"database {self.safe_url()}: {exc.orig}") from exc
            return
        try:
            with self._writer(), self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.safe_url()}: {exc.orig}") from exc

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """SQLite: this process's write transactions one at a time. SQLite's own wait for its write
        lock (the busy timeout) sleeps and retries, in steps of up to 100 ms, so threads of one process
        writing at once spent much of their time asleep (five counters calling 1,000 tickets over HTTP:
        59.5 -> 49.2 s); other processes still wait that way. Reentrant, so that a write opened inside
        another on one thread (outside a batch) still fails by SQLite's busy timeout instead of waiting
        for itself forever. PostgreSQL: nothing (row locks)."""
        writer = self._sqlite_writer
        if writer is None:
            yield
            return
        if not writer.acquire(timeout=SQLITE_WRITE_WAIT_S):
            raise StoreError(f"database {self.safe_url()}: another write of this process held it too long")
        try:
            yield
        finally:
            writer.release()

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_nothing/do_update``."""
        return postgresql.insert(table) if self.is_postgres else sqlite.insert(table)

    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()
