"""The kiosk's event journal: what citizens did and what failed, on disk before anything else.

The kiosk app appends events here (one SQLite file in WAL mode, fsync on commit so a power cut loses
nothing committed); the edge agent, a separate process, reads them in sequence order, publishes them
and deletes them only after the broker acknowledged them. The journal IS the agent's durable outbox.

- ``seq`` is the per-kiosk sequence number: AUTOINCREMENT guarantees it is never reused, even after rows
  are deleted. ``journal_id`` names this file's sequence; a journal recreated after corruption gets a new
  id and its ``seq`` restarts, so consumers detect gaps per (kiosk, journal_id).
- ``attempts`` counts how often the agent handed an event to the broker; an event published again after
  an attempt is a *replay* (docs/mqtt.md).
- Bounded: at ``max_events`` (a property of the file, set by the agent from its configuration, so the
  app needs no setting) the oldest events are dropped in chunks (1 %, at least 10) and an
  ``outbox_dropped`` event records the range, so the loss is visible upstream instead of the disk filling.
- A corrupted file is moved aside (``events.sqlite.corrupt-<UTC time>``), a fresh journal starts with a
  ``journal_recovered`` event, and the process keeps going. Another process that still holds the old
  file notices the inode change and reopens.

Events are the contract's typed payloads (``contract.events``), which have no field for personal data;
``append`` also refuses, anywhere in a payload, a key that would name it in any spelling and a value
that looks like it (``common.privacy``; defence in depth). The file is its owner's alone (0600).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import MotcuaError, StoreError
from common.privacy import PERSONAL_KEY_WORDS, find_personal_data
from contract.events import EVENT_KINDS, EventPayload, JournalRecovered, OutboxDropped, payload_json

log = logging.getLogger(__name__)

#: Payload key words that would carry personal data, refused anywhere in a payload in any spelling
#: (``full_name``, ``fullName``, ``ho_ten``, ``ngaySinh``, ``so_cccd``...: ``common.privacy.personal_key``)
PERSONAL_KEYS = PERSONAL_KEY_WORDS

#: kinds the journal writes itself (counts, its own file name, SQLite's error): no citizen input, and a
#: file name stamped to the microsecond would look like an ID number
_OWN_KINDS = frozenset({OutboxDropped.KIND, JournalRecovered.KIND})

DEFAULT_MAX_EVENTS = 200_000


class PrivacyError(MotcuaError):
    """An event payload tried to carry personal data."""

    code = "privacy"


class JournalError(StoreError):
    """The journal file cannot be opened or written."""

    code = "journal"


@dataclass(frozen=True)
class JournalEntry:
    """One stored event, as the agent reads it back."""

    seq: int
    event_id: str
    kind: str
    occurred_at: str  # ISO 8601, UTC
    payload: dict[str, Any]
    #: how many times the agent already handed this event to the broker (> 0: the next send is a replay)
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "kind": self.kind,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class JournalStats:
    """What the agent reports as outbox health."""

    pending: int
    max_events: int
    oldest_seq: int | None
    newest_seq: int | None
    oldest_occurred_at: str | None
    dropped_total: int

    @property
    def fill_ratio(self) -> float:
        return self.pending / self.max_events


def check_no_personal_data(value: Any, path: str = "payload", *, values: bool = True) -> None:
    """Raise PrivacyError if a key anywhere in ``value`` names personal data or, with ``values``, a value
    looks like it (a CCCD/CMND number, an MRZ, a dossier code, a date next to a name, a value of the
    current citizen session's identity). The message says where and why, never the value."""
    found = find_personal_data(value, path, values=values)
    if found is not None:
        raise PrivacyError(f"{found}; events must not carry personal data")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 (or tighten it): whatever the process umask, the journal is its owner's."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]."""
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        elif not out or seq > out[-1][1]:
            out.append((seq, seq))
    return out


class EventJournal:
    """Append-only (for the app) journal of events; safe to share between processes and threads."""

    def __init__(self, path: Path, *, max_events: int | None = None, durable: bool = True) -> None:
        """``max_events``: the bound to store in the file (the agent's ``outbox_max_events``); None keeps
        the file's (default DEFAULT_MAX_EVENTS). ``durable=False`` (the agent) skips fsync on its own
        commits: losing a delete only re-sends an event."""
        if max_events is not None and max_events < 100:
            raise ValueError("max_events must be at least 100")
        self.path = path
        self._wanted_max = max_events
        self.durable = durable
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None
        self.journal_id = ""
        #: set when this process moved a corrupted file aside: (moved_to, error)
        self.recovered: tuple[Path, str] | None = None
        with self._lock:
            self._open()

    # -- opening and recovery -------------------------------------------------------------------------

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise open/recovery between the app and the agent (two processes, one file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _connect(self) -> sqlite3.Connection:
        _private_file(self.path)  # SQLite gives -wal and -shm the mode of the database file
        # check_same_thread=False: the app appends from worker threads; the lock serialises them.
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            if "attempts" not in columns:  # journal written by the first skeleton version
                db.execute("ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check[0] if check else 'no answer'}")
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)", (uuid.uuid4().hex,)
            )
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped_total', '0')")
            if self._wanted_max is not None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('max_events', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(self._wanted_max),),
                )
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> None:
        with self._file_lock():
            try:
                db = self._connect()
            except sqlite3.DatabaseError as exc:
                moved = self._move_aside(str(exc))
                try:
                    db = self._connect()
                except sqlite3.DatabaseError as exc2:
                    raise JournalError(f"cannot open event journal {self.path}: {exc2}") from exc2
                self.recovered = (moved, str(exc))
                self._db = db
                self._inode = os.stat(self.path).st_ino
                self.journal_id = self._meta("journal_id")
                self.max_events = int(self._meta("max_events") or DEFAULT_MAX_EVENTS)
                self._insert(JournalRecovered(moved.name, str(exc)[:200]), None)
                return
            except OSError as exc:
                raise JournalError(f"cannot open event journal {self.path}: {exc}") from exc
        self._db = db
        self._inode = os.stat(self.path).st_ino
        self.journal_id = self._meta("journal_id")
        self.max_events = int(self._meta("max_events") or DEFAULT_MAX_EVENTS)

    def _move_aside(self, error: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        log.error("event journal %s is corrupted (%s); moved aside to %s", self.path, error, target.name)
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                os.replace(side, Path(f"{target}{suffix}"))
        return target

    def _reopen_if_replaced(self) -> None:
        """Another process may have moved a corrupted file aside: follow the path, not the inode."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if inode != self._inode:
            if self._db is not None:
                self._db.close()
            self._open()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"event journal {self.path} is closed")
        return self._db

    def _meta(self, key: str) -> str:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    def recover(self, error: str) -> None:
        """Move a file that failed at run time aside and start a fresh journal (the agent calls this)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            moved: Path | None = None
            with self._file_lock():
                # Another process may have recovered it first: then its fresh file is already there.
                if self.path.exists() and os.stat(self.path).st_ino == self._inode:
                    moved = self._move_aside(error)
            self._inode = None
            self._open()
            if moved is not None:
                self.recovered = (moved, error)
                self._insert(JournalRecovered(moved.name, error[:200]), None)

    # -- writing --------------------------------------------------------------------------------------

    @staticmethod
    def _encode(payload: EventPayload) -> str:
        if payload.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {payload.kind!r}")  # a programming error
        data = payload.to_data()
        check_no_personal_data(data, values=payload.kind not in _OWN_KINDS)
        return payload_json(payload)  # raises ContractError beyond MAX_PAYLOAD_BYTES (a caller's bug)

    def _insert(
        self, payload: EventPayload, occurred_at: str | None, text: str | None = None
    ) -> JournalEntry:
        text = text if text is not None else self._encode(payload)
        event_id = uuid.uuid4().hex
        when = occurred_at or _now_iso()
        cursor = self._conn().execute(
            "INSERT INTO events (event_id, kind, occurred_at, payload) VALUES (?, ?, ?, ?)",
            (event_id, payload.kind, when, text),
        )
        seq = cursor.lastrowid
        if seq is None:
            raise JournalError(f"event journal {self.path}: insert returned no row id")
        return JournalEntry(seq, event_id, payload.kind, when, payload.to_data())

    def _enforce_bound(self, adding: int) -> None:
        """Drop the oldest chunk when the journal would exceed ``max_events`` (inside a transaction)."""
        db = self._conn()
        self.max_events = int(self._meta("max_events") or DEFAULT_MAX_EVENTS)  # the agent may have changed it
        low, high = db.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
        if low is None or high - low + 1 + adding < self.max_events:
            return  # the seq span bounds the row count: no COUNT(*) on the common path
        count = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        excess = count + adding + 1 - self.max_events  # +1: the outbox_dropped marker itself
        if excess <= 0:
            return
        drop = max(excess, self.max_events // 100, 10)  # in chunks, so markers stay rare
        last = db.execute("SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?", (drop - 1,)).fetchone()[0]
        db.execute("DELETE FROM events WHERE seq <= ?", (last,))
        db.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'dropped_total'", (drop,)
        )
        log.error("event journal full (%d events): dropped the oldest %d (seq %d..%d)",
                  self.max_events, drop, low, last)
        self._insert(OutboxDropped(drop, low, last), None)

    def append(self, payload: EventPayload, *, occurred_at: str | None = None) -> JournalEntry:
        """Write one event durably and return it; the caller should not be the UI thread (fsync)."""
        return self.append_many([payload], occurred_at=occurred_at)[0]

    def append_many(
        self, payloads: Iterable[EventPayload], *, occurred_at: str | None = None
    ) -> list[JournalEntry]:
        """Write several events in one transaction (one fsync): all or none."""
        encoded = [(payload, self._encode(payload)) for payload in payloads]
        with self._lock:
            try:
                self._reopen_if_replaced()
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    self._enforce_bound(len(encoded))
                    events = [self._insert(payload, occurred_at, text) for payload, text in encoded]
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"cannot write event journal {self.path}: {exc}") from exc
        return events

    # -- the agent's side -----------------------------------------------------------------------------

    def pending(self, after_seq: int = 0, limit: int = 500) -> list[JournalEntry]:
        """Events not yet deleted, oldest first."""
        rows = self.pending_rows(after_seq, limit)
        return [JournalEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def pending_rows(self, after_seq: int = 0, limit: int = 500) -> list[tuple[int, str, str, str, str, int]]:
        """Like ``pending`` but with the payload as stored JSON text: the agent forwards it untouched."""
        with self._lock:
            try:
                self._reopen_if_replaced()
                return self._conn().execute(
                    "SELECT seq, event_id, kind, occurred_at, payload, attempts FROM events WHERE seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"cannot read event journal {self.path}: {exc}") from exc

    def mark_attempted(self, first_seq: int, last_seq: int) -> None:
        """Record that events in [first, last] go to the broker now, so a later send is a replay."""
        with self._lock:
            try:
                self._conn().execute(
                    "UPDATE events SET attempts = attempts + 1 WHERE seq BETWEEN ? AND ?",
                    (first_seq, last_seq),
                )
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"cannot write event journal {self.path}: {exc}") from exc

    def delete(self, seqs: list[int]) -> None:
        """Forget events the broker acknowledged (one transaction)."""
        if not seqs:
            return
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    # Acknowledged seqs are mostly contiguous: delete by ranges, not row by row.
                    db.executemany("DELETE FROM events WHERE seq BETWEEN ? AND ?", _ranges(seqs))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"cannot write event journal {self.path}: {exc}") from exc

    def count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def stats(self) -> JournalStats:
        with self._lock:
            try:
                db = self._conn()
                pending = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
                low, high = db.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
                oldest = None
                if low is not None:
                    oldest = db.execute("SELECT occurred_at FROM events WHERE seq = ?", (low,)).fetchone()[0]
                dropped = int(self._meta("dropped_total") or 0)
                self.max_events = int(self._meta("max_events") or DEFAULT_MAX_EVENTS)
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"cannot read event journal {self.path}: {exc}") from exc
        return JournalStats(pending, self.max_events, low, high, oldest, dropped)

    def data_version(self) -> int:
        """Changes whenever another connection committed: a cheap 'anything new?' poll."""
        with self._lock:
            return int(self._conn().execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
