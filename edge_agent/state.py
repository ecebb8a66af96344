"""The agent's own durable state (``<data_dir>/agent-state.sqlite``), apart from the app's journal.

- Counters: ``boot`` (one per agent start) and ``bdseq`` (one per connection attempt; the Will and the
  birth of that connection carry it, so the fleet tells a late Will from a fresh birth). A fresh state
  file seeds both from the clock (ms), so they keep growing even after the file was lost.
- The command ledger: every request id seen, whether it was executed and its result. A command is
  executed at most once; a redelivered request gets its stored result again; one interrupted by a crash
  is answered with an error instead of running twice.
- Applied configuration versions per scope (center, kiosk), and the last refusal.

A corrupted file is moved aside and recreated (logged); the agent keeps running.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import StoreError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    request_id TEXT PRIMARY KEY,
    command TEXT,
    state TEXT NOT NULL,            -- started | done
    result TEXT,                    -- command-result JSON once done
    published INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS config (
    scope TEXT PRIMARY KEY,         -- center | kiosk
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateError(StoreError):
    """The agent's state file cannot be used even after recreating it."""

    code = "agent_state"


class AgentState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.recovered_from: Path | None = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            target = path.with_name(f"{path.name}.corrupt-{stamp}")
            log.error("agent state %s is corrupted (%s); moved aside to %s", path, exc, target.name)
            os.replace(path, target)
            for suffix in ("-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(Path(f"{path}{suffix}"), Path(f"{target}{suffix}"))
            self.recovered_from = target
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc2:
                raise StateError(f"cannot open agent state {path}: {exc2}") from exc2

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check[0] if check else 'no answer'}")
            seed = int(time.time() * 1000)  # milliseconds: still increasing after the file was lost
            for name in ("boot", "bdseq"):
                db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES (?, ?)", (name, seed))
        except BaseException:
            db.close()
            raise
        return db

    def next_counter(self, name: str) -> int:
        with self._lock:
            self._db.execute("UPDATE counters SET value = value + 1 WHERE name = ?", (name,))
            return int(self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    # -- command ledger -------------------------------------------------------------------------------

    def command_seen(self, request_id: str) -> tuple[str, dict[str, Any] | None] | None:
        """(state, stored result) of a request id, or None when it is new."""
        with self._lock:
            row = self._db.execute(
                "SELECT state, result FROM commands WHERE request_id = ?", (request_id,)
            ).fetchone()
        if row is None:
            return None
        return str(row[0]), (json.loads(row[1]) if row[1] else None)

    def command_started(self, request_id: str, command: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO commands (request_id, command, state, received_at) VALUES (?, ?, 'started', ?)",
                (request_id, command, time.time()),
            )

    def command_done(self, request_id: str, command: str | None, result: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO commands (request_id, command, state, result, received_at) "
                "VALUES (?, ?, 'done', ?, ?) ON CONFLICT(request_id) DO UPDATE SET "
                "state = 'done', result = excluded.result, published = 0",
                (request_id, command, json.dumps(result, ensure_ascii=False), time.time()),
            )

    def command_published(self, request_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE commands SET published = 1 WHERE request_id = ?", (request_id,))

    def unpublished_results(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT result FROM commands WHERE state = 'done' AND published = 0 ORDER BY received_at"
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def prune_commands(self, older_than_s: float = 30 * 86400) -> None:
        """Forget request ids older than any redelivery can be (the broker session expires long before)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM commands WHERE published = 1 AND received_at < ?", (time.time() - older_than_s,)
            )

    # -- configuration ---------------------------------------------------------------------------------

    def config(self, scope: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            row = self._db.execute("SELECT version, body FROM config WHERE scope = ?", (scope,)).fetchone()
        return (int(row[0]), json.loads(row[1])) if row else (0, {})

    def set_config(self, scope: str, version: int, body: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO config (scope, version, body) VALUES (?, ?, ?) "
                "ON CONFLICT(scope) DO UPDATE SET version = excluded.version, body = excluded.body",
                (scope, version, json.dumps(body, ensure_ascii=False)),
            )

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
