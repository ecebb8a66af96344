"""Local look-up totals for the technician screen (the event journal forgets events once published).

Counts only: outcome and input source per day. No dossier code is stored, for the same reason the
``lookup`` event leaves it out.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, datetime
from pathlib import Path

from kiosk.dossier.events import LookupOutcome
from kiosk.errors import KioskError

OUTCOMES: tuple[LookupOutcome, ...] = ("found", "not_found", "unavailable", "not_a_dossier")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lookup_totals (
    day TEXT NOT NULL,
    outcome TEXT NOT NULL,
    source TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, outcome, source)
);
"""


class TallyError(KioskError):
    """The look-up totals file cannot be opened or written."""


class LookupTally:
    """Per-day counters of look-up outcomes; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise TallyError(f"cannot open look-up totals {path}: {exc}") from exc

    def record(self, outcome: LookupOutcome, source: str, now: datetime | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown look-up outcome {outcome!r}")
        day = (now or datetime.now().astimezone()).date().isoformat()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO lookup_totals (day, outcome, source, count) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (day, outcome, source) DO UPDATE SET count = count + 1",
                    (day, outcome, source),
                )
            except sqlite3.DatabaseError as exc:
                raise TallyError(f"cannot write look-up totals {self.path}: {exc}") from exc

    def totals(self, day: date | None = None) -> dict[str, int]:
        """Counts per outcome (every outcome present, zero when none), for one day or all days."""
        query = "SELECT outcome, SUM(count) FROM lookup_totals"
        args: list[str] = []
        if day is not None:
            query += " WHERE day = ?"
            args.append(day.isoformat())
        with self._lock:
            rows = self._db.execute(query + " GROUP BY outcome", args).fetchall()
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        counts.update({outcome: int(total) for outcome, total in rows})
        return counts

    def by_source(self, day: date | None = None) -> dict[str, int]:
        query = "SELECT source, SUM(count) FROM lookup_totals"
        args: list[str] = []
        if day is not None:
            query += " WHERE day = ?"
            args.append(day.isoformat())
        with self._lock:
            rows = self._db.execute(query + " GROUP BY source", args).fetchall()
        return {source: int(total) for source, total in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
