"""Satisfaction ratings (đánh giá mức độ hài lòng): the scale, what a rating is about, and the book.

The ``RatingBook`` decides whether a tap counts, so managers can trust the totals: one rating per
ticket or dossier (kept in SQLite, so a restart does not reopen the door), and repeated taps on the
same target within ``repeat_interval_s`` are not counted (measured from the last tap, so a child
tapping every 4 s adds nothing). Refused taps are counted apart, by reason, for the technician screen.
The book never tells anyone at a counter what a citizen answered: it only keeps totals.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from common.errors import ConfigError
from contract.config import DEFAULT_REASONS as _DEFAULT_REASONS
from contract.config import RatingSection
from contract.events import Rating
from kiosk.dossier import InvalidDossierCode, parse_dossier_code
from kiosk.errors import KioskError

TargetKind = Literal["center", "ticket", "dossier", "counter", "official"]
TARGET_KINDS: tuple[str, ...] = ("center", "ticket", "dossier", "counter", "official")
#: Targets that can be rated once only.
UNIQUE_KINDS = frozenset({"ticket", "dossier"})
NotCountedReason = Literal["duplicate", "too_soon"]


class RatingError(KioskError):
    """A rating the flow should never have produced (level off the scale, unknown reason)."""

    code = "rating"


class RatingStoreError(KioskError):
    """The ratings file cannot be opened or written."""


@dataclass(frozen=True)
class RatingLevel:
    """One answer on the scale; ``value`` 1 is the worst, N the best; ``face`` names the icon."""

    value: int
    key: str
    label_vi: str
    label_en: str
    face: str
    negative: bool

    def label(self, lang: str) -> str:
        return self.label_vi if lang == "vi" else self.label_en


@dataclass(frozen=True)
class Choice:
    """A criterion or a reason: a stable code and its labels."""

    code: str
    label_vi: str
    label_en: str

    def label(self, lang: str) -> str:
        return self.label_vi if lang == "vi" else self.label_en


_VERY_SATISFIED = ("very_satisfied", "Rất hài lòng", "Very satisfied", "face_very_happy")
_SATISFIED = ("satisfied", "Hài lòng", "Satisfied", "face_happy")
_NEUTRAL = ("neutral", "Bình thường", "Neither satisfied nor dissatisfied", "face_neutral")
_DISSATISFIED = ("dissatisfied", "Không hài lòng", "Dissatisfied", "face_sad")
_VERY_DISSATISFIED = ("very_dissatisfied", "Rất không hài lòng", "Very dissatisfied", "face_very_sad")

#: Levels worst first, per scale size; the screen shows them best first (``RatingScale.levels``).
_SCALES: dict[int, tuple[tuple[str, str, str, str], ...]] = {
    3: (_DISSATISFIED, _NEUTRAL, _SATISFIED),
    4: (_VERY_DISSATISFIED, _DISSATISFIED, _SATISFIED, _VERY_SATISFIED),
    5: (_VERY_DISSATISFIED, _DISSATISFIED, _NEUTRAL, _SATISFIED, _VERY_SATISFIED),
}

#: Optional criteria the citizen may rate on the same scale.
DEFAULT_CRITERIA: tuple[Choice, ...] = (
    Choice("staff_attitude", "Thái độ phục vụ của cán bộ", "Staff attitude"),
    Choice("time_taken", "Thời gian giải quyết", "Time taken"),
    Choice("guidance", "Hướng dẫn rõ ràng", "Clear guidance"),
    Choice("visits", "Số lần phải đi lại", "Number of visits needed"),
    Choice("facilities", "Cơ sở vật chất", "Facilities"),
)

#: Reasons offered after a negative answer: the contract's one default set (the center may push others).
DEFAULT_REASONS: tuple[Choice, ...] = tuple(Choice(r.code, r.label_vi, r.label_en) for r in _DEFAULT_REASONS)


@dataclass(frozen=True)
class RatingScale:
    """The configured scale: levels (best first), optional criteria, reasons after a negative answer."""

    levels: tuple[RatingLevel, ...]
    criteria: tuple[Choice, ...] = ()
    reasons: tuple[Choice, ...] = DEFAULT_REASONS

    @classmethod
    def build(
        cls,
        levels: int = 4,
        criteria: Iterable[Choice | tuple[str, str, str]] = (),
        reasons: Iterable[Choice | tuple[str, str, str]] = DEFAULT_REASONS,
    ) -> RatingScale:
        """From configuration values: 3, 4 (default: four faces) or 5 levels."""
        if levels not in _SCALES:
            raise ConfigError(f"rating.levels: expected 3, 4 or 5, got {levels!r}")
        worst_first = _SCALES[levels]
        built = tuple(
            RatingLevel(value, key, vi, en, face, negative=value <= levels // 2)
            for value, (key, vi, en, face) in enumerate(worst_first, start=1)
        )

        def choices(items: Iterable[Choice | tuple[str, str, str]], name: str) -> tuple[Choice, ...]:
            result = tuple(item if isinstance(item, Choice) else Choice(*item) for item in items)
            codes = [c.code for c in result]
            if len(set(codes)) != len(codes):
                raise ConfigError(f"rating.{name}: a code is used twice in {codes}")
            return result

        return cls(tuple(reversed(built)), choices(criteria, "criteria"), choices(reasons, "reasons"))

    @classmethod
    def from_config(cls, section: RatingSection) -> RatingScale:
        """The scale a kiosk's ``[rating]`` (its file, or the center's push) asks for."""
        return cls.build(section.levels, reasons=[(r.code, r.label_vi, r.label_en) for r in section.reasons])

    @property
    def size(self) -> int:
        return len(self.levels)

    def level(self, value: int) -> RatingLevel:
        for level in self.levels:
            if level.value == value:
                return level
        raise RatingError(f"level {value} is not on the {self.size}-level scale")


@dataclass(frozen=True)
class RatingTarget:
    """What a rating is about. ``ref`` is the ticket ``center/day/number`` (from the ticket QR), the
    dossier code, the counter number, or the official's id from the center's list; "center" when
    the citizen rated without linking anything."""

    kind: TargetKind
    ref: str

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise RatingError(f"unknown rating target kind {self.kind!r}")
        if not self.ref or len(self.ref) > 100 or any(ord(c) < 32 for c in self.ref):
            raise RatingError(f"rating target {self.kind} needs a short printable reference")

    @classmethod
    def of(cls, kind: str, ref: str) -> RatingTarget:
        """The normalised target, so the same ticket or dossier typed or scanned is one key."""
        if kind == "dossier":
            return cls.dossier(ref)
        if kind == "ticket":
            return cls.ticket(ref)
        if kind not in TARGET_KINDS:
            raise RatingError(f"unknown rating target kind {kind!r}")
        return cls(kind, ref.strip())  # type: ignore[arg-type]

    @classmethod
    def dossier(cls, code: str) -> RatingTarget:
        """Normalised, so a typed lower-case code and the scanned one are the same dossier."""
        try:
            return cls("dossier", parse_dossier_code(code).text)
        except InvalidDossierCode as exc:
            raise RatingError(f"not a dossier code: {exc.message}") from exc

    @classmethod
    def ticket(cls, ref: str) -> RatingTarget:
        """``center/day/number`` from the ticket QR; compared case-insensitively (typed numbers)."""
        return cls("ticket", ref.strip().upper())

    @property
    def unique(self) -> bool:
        return self.kind in UNIQUE_KINDS


@dataclass(frozen=True)
class RatingOutcome:
    """Whether the tap counted, and if not why: ``duplicate`` (target already rated) or ``too_soon``."""

    counted: bool
    reason: NotCountedReason | None = None
    rating_id: int | None = None


@dataclass(frozen=True)
class RatingTotals:
    """Local totals for the technician screen (``day`` None: since the book was created)."""

    scale: int
    counted: int
    by_level: dict[int, int]
    by_target_kind: dict[str, int]
    reasons: dict[str, int]
    criteria: dict[str, dict[int, int]]
    not_counted: dict[str, int] = field(default_factory=dict)

    @property
    def satisfied_share(self) -> float | None:
        """Share of counted ratings in the upper half of the scale (None with no ratings)."""
        if not self.counted:
            return None
        positive = sum(n for value, n in self.by_level.items() if value > self.scale // 2)
        return positive / self.counted


_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    scale INTEGER NOT NULL,
    level INTEGER NOT NULL,
    target_kind TEXT NOT NULL,
    target_ref TEXT NOT NULL,
    reasons TEXT NOT NULL,
    criteria TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_per_ticket_or_dossier
    ON ratings (target_kind, target_ref) WHERE target_kind IN ('ticket', 'dossier');
CREATE TABLE IF NOT EXISTS taps (
    target_kind TEXT NOT NULL,
    target_ref TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (target_kind, target_ref)
);
CREATE TABLE IF NOT EXISTS not_counted (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


class RatingBook:
    """Ratings on disk (SQLite); thread-safe. ``submit`` returns whether the tap counted and why not."""

    def __init__(self, path: Path, scale: RatingScale | None = None, repeat_interval_s: float = 5.0) -> None:
        self.path = path
        self.scale = scale or RatingScale.build()
        self.repeat_interval_s = repeat_interval_s
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise RatingStoreError(f"cannot open ratings file {path}: {exc}") from exc

    def configure(self, scale: RatingScale, repeat_interval_s: float) -> None:
        """Follow a new rating scale (pushed by the center) without a restart; totals are per scale."""
        with self._lock:
            self.scale = scale
            self.repeat_interval_s = repeat_interval_s

    def submit(
        self,
        level: int,
        *,
        scale: int | None = None,
        reasons: Iterable[str] = (),
        criteria: Mapping[str, int] | None = None,
        target: RatingTarget | None = None,
        target_kind: str | None = None,
        target_id: str | None = None,
        now: datetime | None = None,
    ) -> RatingOutcome:
        """Record one rating if it counts.

        Give ``target``, or ``target_kind``/``target_id`` (the flow's form); neither rates the center.
        """
        scale_now, repeat_s = self.scale, self.repeat_interval_s  # one scale for the whole tap
        if target is None:
            target = RatingTarget.of(target_kind or "center", target_id or "center")
        if scale is not None and scale != scale_now.size:
            raise RatingError(f"rating on a {scale}-level scale; the book is set for {scale_now.size}")
        scale_now.level(level)  # raises when off the scale
        reason_codes = sorted(set(reasons))
        known_reasons = {r.code for r in scale_now.reasons}
        unknown = [r for r in reason_codes if r not in known_reasons]
        if unknown:
            raise RatingError(f"unknown rating reasons {unknown}")
        criteria = dict(criteria or {})
        known_criteria = {c.code for c in scale_now.criteria}
        for code, value in criteria.items():
            if code not in known_criteria:
                raise RatingError(f"unknown rating criterion {code!r}")
            scale_now.level(value)
        moment = now or datetime.now().astimezone()
        ts, day = moment.timestamp(), moment.date().isoformat()
        with self._lock:
            try:
                return self._submit_locked(
                    level, reason_codes, criteria, target, ts, day, scale_now.size, repeat_s
                )
            except sqlite3.DatabaseError as exc:
                raise RatingStoreError(f"cannot write ratings file {self.path}: {exc}") from exc

    def _submit_locked(
        self,
        level: int,
        reasons: Sequence[str],
        criteria: dict[str, int],
        target: RatingTarget,
        ts: float,
        day: str,
        scale_size: int,
        repeat_interval_s: float,
    ) -> RatingOutcome:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            verdict: NotCountedReason | None = None
            if target.unique and db.execute(
                "SELECT 1 FROM ratings WHERE target_kind = ? AND target_ref = ?", (target.kind, target.ref)
            ).fetchone():
                verdict = "duplicate"
            else:
                last = db.execute(
                    "SELECT ts FROM taps WHERE target_kind = ? AND target_ref = ?", (target.kind, target.ref)
                ).fetchone()
                if last is not None and 0 <= ts - last[0] < repeat_interval_s:
                    verdict = "too_soon"
            db.execute(
                "INSERT OR REPLACE INTO taps (target_kind, target_ref, ts) VALUES (?, ?, ?)",
                (target.kind, target.ref, ts),
            )
            if verdict is not None:
                db.execute(
                    "INSERT INTO not_counted (ts, day, target_kind, reason) VALUES (?, ?, ?, ?)",
                    (ts, day, target.kind, verdict),
                )
                db.execute("COMMIT")
                return RatingOutcome(False, verdict)
            cursor = db.execute(
                "INSERT INTO ratings (ts, day, scale, level, target_kind, target_ref, reasons, criteria) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ts, day, scale_size, level, target.kind, target.ref, json.dumps(list(reasons)),
                 json.dumps(criteria, sort_keys=True)),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return RatingOutcome(True, None, cursor.lastrowid)

    def already_rated(self, target: RatingTarget) -> bool:
        """For the screen: say "already rated" before the citizen taps a face."""
        if not target.unique:
            return False
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM ratings WHERE target_kind = ? AND target_ref = ?", (target.kind, target.ref)
            ).fetchone()
        return row is not None

    def totals(self, day: date | None = None) -> RatingTotals:
        """Counts on the current scale (ratings made on another scale before a change are left out)."""
        where = "WHERE scale = ?"
        args: list[Any] = [self.scale.size]
        if day is not None:
            where += " AND day = ?"
            args.append(day.isoformat())
        with self._lock:
            rows = self._db.execute(
                f"SELECT level, target_kind, reasons, criteria FROM ratings {where}", args
            ).fetchall()
            skipped_where = "WHERE day = ?" if day is not None else ""
            skipped_args = [day.isoformat()] if day is not None else []
            skipped = self._db.execute(
                f"SELECT reason, COUNT(*) FROM not_counted {skipped_where} GROUP BY reason", skipped_args
            ).fetchall()
        by_level = {level.value: 0 for level in self.scale.levels}
        by_kind: dict[str, int] = {}
        reasons: dict[str, int] = {}
        criteria: dict[str, dict[int, int]] = {}
        for level, kind, reasons_json, criteria_json in rows:
            by_level[level] = by_level.get(level, 0) + 1
            by_kind[kind] = by_kind.get(kind, 0) + 1
            for code in json.loads(reasons_json):
                reasons[code] = reasons.get(code, 0) + 1
            for code, value in json.loads(criteria_json).items():
                bucket = criteria.setdefault(code, {})
                bucket[value] = bucket.get(value, 0) + 1
        return RatingTotals(self.scale.size, len(rows), by_level, by_kind, reasons, criteria,
                            {reason: count for reason, count in skipped})

    def close(self) -> None:
        with self._lock:
            self._db.close()


def rating_event(
    level: int,
    scale: RatingScale,
    target: RatingTarget,
    reasons: Iterable[str] = (),
    criteria: Mapping[str, int] | None = None,
) -> Rating:
    """The ``rating`` event: the answer and what it is about, nothing about the citizen.

    A dossier target is sent without its code (a dossier code leads to a person): the fleet counts
    ratings about dossiers, it does not need to know which one.
    """
    size = scale.size
    return Rating(
        level=level,
        scale=3 if size == 3 else 5 if size == 5 else 4,
        level_key=scale.level(level).key,
        target_kind=target.kind,
        target_id=None if target.kind == "dossier" else target.ref,
        reasons=sorted(set(reasons)),
        criteria=dict(sorted((criteria or {}).items())),
    )
