"""The app's event journal: what citizens did and what failed, on disk before anything else.

The kiosk app appends events here (one SQLite file in WAL mode, fsync on commit so a power cut loses
nothing committed); the edge agent, a separate process, reads them in sequence order, publishes them
and deletes them only after the broker acknowledged them. ``seq`` is the per-kiosk sequence number:
AUTOINCREMENT guarantees it is never reused, even after rows are deleted.

Personal data from ID cards never goes into an event: ``append`` refuses payload keys that name it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

#: Event kinds the app emits (docs/mqtt.md describes their payloads).
EVENT_KINDS = frozenset(
    {
        "ticket_issued",
        "ticket_voided",
        "lookup",
        "rating",
        "card_read",
        "device_fault",
        "device_recovered",
        "app_error",
        "session_ended",
        "app_started",
    }
)

#: Payload keys that would carry personal data; refused anywhere in a payload.
PERSONAL_KEYS = frozenset(
    {
        "id_number",
        "document_number",
        "full_name",
        "name",
        "citizen_name",
        "birth_date",
        "date_of_birth",
        "photo",
        "face",
        "mrz",
        "place_of_origin",
        "place_of_residence",
        "address",
        "father_name",
        "mother_name",
        "spouse_name",
        "old_id_number",
        "phone",
    }
)


class PrivacyError(KioskError):
    """An event payload tried to carry personal data."""


class JournalError(KioskError):
    """The journal file cannot be opened or written."""


@dataclass(frozen=True)
class Event:
    seq: int
    event_id: str
    kind: str
    occurred_at: str  # ISO 8601, UTC
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "kind": self.kind,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
        }


def _check_no_personal_data(value: Any, path: str = "payload") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in PERSONAL_KEYS:
                raise PrivacyError(f"{path}.{key} would carry personal data; events must not")
            _check_no_personal_data(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_no_personal_data(item, f"{path}[{index}]")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""


class EventJournal:
    """Append-only (for the app) journal of events; safe to share between processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: the app appends from worker threads; the lock serialises them.
            self._db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open event journal {path}: {exc}") from exc

    def append(self, kind: str, payload: Mapping[str, Any] | None = None) -> Event:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        body = dict(payload or {})
        _check_no_personal_data(body)
        event_id = uuid.uuid4().hex
        occurred_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT INTO events (event_id, kind, occurred_at, payload) VALUES (?, ?, ?, ?)",
                    (event_id, kind, occurred_at, text),
                )
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"cannot write event journal {self.path}: {exc}") from exc
        seq = cursor.lastrowid
        assert seq is not None
        return Event(seq, event_id, kind, occurred_at, body)

    def pending(self, after_seq: int = 0, limit: int = 500) -> list[Event]:
        """Events not yet deleted, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, kind, occurred_at, payload FROM events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def delete(self, seqs: list[int]) -> None:
        """Forget events the broker acknowledged."""
        with self._lock:
            self._db.executemany("DELETE FROM events WHERE seq = ?", [(s,) for s in seqs])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
