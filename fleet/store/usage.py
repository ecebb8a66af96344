"""What citizens did and how the kiosks held up, per center and for a province: the figures of the
usage pages and the reports (docs/reports.md). Every figure is aggregated in SQL (GROUP BY over the
indexed ``events (center_id, kind, occurred_at)``, the queue's tables and the alarms); Python only
adds up the few aggregate rows that come back. Every function takes a ``Scope``, and every row says
its center, so a province's total is the sum of its centers' rows.

Local days and hours: the center's zone must keep one UTC offset over the period (Vietnam has had
+07:00 without summer time since 1975); the offset is added in SQL before cutting days and hours, the
same on SQLite (``strftime``) and PostgreSQL (``to_char`` of the UTC time, sessions are in UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
)

from common.errors import ValidationError
from fleet.store.alarms import _alarm_from, _select
from fleet.store.base import Part
from fleet.store.commands import CENTER_TARGET
from fleet.store.models import Alarm
from fleet.store.queue_tables import queue_ratings, queue_services, queue_steps, queue_tickets
from fleet.store.schema import alarms, changes, config_pushes, events, kiosks, users
from fleet.store.scope import Scope
from fleet.store.types import UtcDateTime

MAX_DAYS = 366
#: alarm types that mean "this part of the kiosk was not usable", and what they count against
AVAILABILITY_TYPES = ("offline", "app_down", "printer", "receipt_printer", "card_reader", "scanner")
RATING_GROUPINGS = ("level", "reason", "counter", "officer")
ALARM_LIMIT = 20_000  # alarms listed in one report (a month of a province is far below)


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, and the center's UTC offset that cuts it into local days and hours."""

    start: datetime
    end: datetime
    offset_s: int
    first_day: date
    last_day: date

    @classmethod
    def days(cls, first: date, last: date, zone: tzinfo) -> Period:
        if last < first:
            raise ValidationError(f"period: {last} is before {first}")
        if (last - first).days + 1 > MAX_DAYS:
            raise ValidationError(f"period: at most {MAX_DAYS} days ({first} to {last})")
        start = datetime.combine(first, time(), zone)
        end = datetime.combine(last + timedelta(days=1), time(), zone)
        offsets = {start.utcoffset(), end.utcoffset()}
        if len(offsets) != 1 or None in offsets:
            raise ValidationError(f"period: the time zone changes its UTC offset between {first} and {last}")
        offset = start.utcoffset()
        assert offset is not None
        return cls(start, end, int(offset.total_seconds()), first, last)

    @classmethod
    def month(cls, text: str, zone: tzinfo) -> Period:
        """``2026-11``: the whole calendar month in the center's zone."""
        try:
            year, month = (int(part) for part in text.split("-"))
            first = date(year, month, 1)
        except ValueError:
            raise ValidationError(f"month {text[:20]!r}: expected YYYY-MM, e.g. 2026-11") from None
        following = date(year + month // 12, month % 12 + 1, 1)
        return cls.days(first, following - timedelta(days=1), zone)

    @property
    def day_count(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def day_labels(self) -> list[str]:
        return [(self.first_day + timedelta(days=i)).isoformat() for i in range(self.day_count)]


# --- rows out --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketCount:
    center_id: str
    service: str
    bucket: str  # a local day "2026-11-23", or a local hour "08"
    issued: int
    voided: int


@dataclass(frozen=True)
class WaitingCount:
    center_id: str
    service: str
    waiting: int
    oldest_issued_at: datetime | None


@dataclass(frozen=True)
class OutcomeCount:
    """Look-ups per outcome or card reads per result: how many, and their time (ms) when known."""

    center_id: str
    outcome: str
    count: int
    mean_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class RatingCount:
    """Ratings of one (key, scale, level): the key is a level label, a reason, a counter or an officer."""

    center_id: str
    key: str
    scale: int
    level: int
    count: int

    @property
    def satisfied(self) -> bool:
        """The two satisfied levels: the top two of the scale (4-5 of 5, 3-4 of 4, 2-3 of 3)."""
        return self.level >= self.scale - 1


@dataclass(frozen=True)
class Downtime:
    """How long one kiosk (``offline``, ``app_down``) or one device of it was down in the period."""

    center_id: str
    kiosk_id: str
    type: str
    alarms: int
    down_s: float


@dataclass(frozen=True)
class KioskSpan:
    """A kiosk and the seconds of the period it existed (registered) up to now."""

    center_id: str
    kiosk_id: str
    label: str
    span_s: float


@dataclass(frozen=True)
class RatingGroup:
    key: str
    count: int
    satisfied: int
    mean_score: float | None  # 0-100: (level - 1) / (scale - 1), averaged

    @property
    def satisfied_percent(self) -> float | None:
        return None if not self.count else 100.0 * self.satisfied / self.count


def officer_labels(names: dict[tuple[str, str], str]) -> dict[str, str]:
    """``Usage.officer_names`` as the ratings by officer show them, per key: "Nguyễn Văn An
    (canbo01.bt)", the key kept beside the name (two officers may share a name)."""
    return {key: f"{name} ({key})" for (_, key), name in names.items()}


def rating_groups(rows: Iterable[RatingCount]) -> list[RatingGroup]:
    """Aggregate rows (a few per key) into one line per key, largest first."""
    counts: dict[str, list[float]] = {}
    for row in rows:
        acc = counts.setdefault(row.key, [0, 0, 0.0])
        acc[0] += row.count
        acc[1] += row.count if row.satisfied else 0
        acc[2] += row.count * (row.level - 1) / max(1, row.scale - 1) * 100.0
    groups = [
        RatingGroup(key, int(n), int(sat), (score / n) if n else None)
        for key, (n, sat, score) in counts.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.key))


# --- SQL helpers, the two dialects ----------------------------------------------------------------


class _Sql:
    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def local(self, column: Any, offset_s: int, pattern: str) -> ColumnElement[str]:
        """The local day ('day'), hour ('hour') or both ('day_hour') of a UTC time column, as text."""
        shift = int(offset_s)
        if self.postgres:
            fmt = {"day": "YYYY-MM-DD", "hour": "HH24", "day_hour": "YYYY-MM-DD HH24"}[pattern]
            shifted = func.timezone("UTC", column) + literal_column(f"interval '{shift} seconds'")
            return func.to_char(shifted, fmt)
        fmt = {"day": "%Y-%m-%d", "hour": "%H", "day_hour": "%Y-%m-%d %H"}[pattern]
        return func.strftime(fmt, column, f"{shift:+d} seconds")

    def text(self, key: str) -> ColumnElement[str]:
        """A payload field as text."""
        return events.c.payload[key].as_string()

    def number(self, key: str) -> ColumnElement[float]:
        return events.c.payload[key].as_float()

    def seconds(self, later: Any, earlier: Any) -> ColumnElement[float]:
        if self.postgres:
            return cast(func.extract("epoch", later - earlier), Float)
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0

    def latest(self, a: Any, b: Any) -> ColumnElement[Any]:
        return func.greatest(a, b) if self.postgres else func.max(a, b)

    def earliest(self, a: Any, b: Any) -> ColumnElement[Any]:
        return func.least(a, b) if self.postgres else func.min(a, b)


def _when(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UtcDateTime())


class Usage(Part):
    """``store.usage``: the figures of the usage pages and the reports."""

    @property
    def _sql(self) -> _Sql:
        return _Sql(self.db.is_postgres)

    def _events(
        self, scope: Scope, period: Period, kinds: Sequence[str], center_id: str | None
    ) -> list[ColumnElement[bool]]:
        where = [
            events.c.kind.in_(kinds),
            events.c.occurred_at >= period.start,
            events.c.occurred_at < period.end,
            scope.centers_filter(events.c.center_id),
        ]
        if center_id is not None:
            where.append(events.c.center_id == center_id)
        return where

    def _rows(self, query: Select[Any]) -> list[Any]:
        with self.db.read() as conn:
            return list(conn.execute(query))

    # --- tickets ---

    def tickets(
        self, scope: Scope, period: Period, *, by: str = "day", center_id: str | None = None
    ) -> list[TicketCount]:
        """Numbers printed (``ticket_issued``) and taken but not printed (``ticket_voided``) per
        center, service and local day, hour of day, or both (``day_hour``: "2026-11-23 08", one scan
        for both tables of the page and the report, ``split_day_hour``)."""
        if by not in ("day", "hour", "day_hour"):
            raise ValidationError(f"tickets by {by!r}: expected day, hour or day_hour")
        sql = self._sql
        bucket = sql.local(events.c.occurred_at, period.offset_s, by).label("bucket")
        service = sql.text("service").label("service")
        issued = func.sum(case((events.c.kind == "ticket_issued", 1), else_=0)).label("issued")
        voided = func.sum(case((events.c.kind == "ticket_voided", 1), else_=0)).label("voided")
        query = (
            select(events.c.center_id, service, bucket, issued, voided)
            .where(*self._events(scope, period, ("ticket_issued", "ticket_voided"), center_id))
            .group_by(events.c.center_id, service, bucket)
            .order_by(events.c.center_id, bucket, service)
        )
        return [
            TicketCount(r.center_id, r.service or "?", r.bucket, int(r.issued), int(r.voided))
            for r in self._rows(query)
        ]

    def waiting(self, scope: Scope, day: date, *, center_id: str | None = None) -> list[WaitingCount]:
        """Numbers waiting now in the queue (``queue_tickets``) per center and service."""
        where = [
            queue_tickets.c.day == day.isoformat(),
            queue_tickets.c.state == "waiting",
            scope.centers_filter(queue_tickets.c.center_id),
        ]
        if center_id is not None:
            where.append(queue_tickets.c.center_id == center_id)
        query = (
            select(
                queue_tickets.c.center_id,
                queue_tickets.c.service,
                func.count().label("waiting"),
                func.min(queue_tickets.c.issued_at).label("oldest"),
            )
            .where(*where)
            .group_by(queue_tickets.c.center_id, queue_tickets.c.service)
            .order_by(queue_tickets.c.center_id, queue_tickets.c.service)
        )
        return [WaitingCount(r.center_id, r.service, int(r.waiting), r.oldest) for r in self._rows(query)]

    def service_names(
        self, scope: Scope, *, center_id: str | None = None, language: str = "vi"
    ) -> dict[tuple[str, str], str]:
        """(center, service code) -> the service's name: Vietnamese, or with ``language="en"`` English
        (the Vietnamese where it has none). The queue's service table names a code first; a code it
        does not describe (a center without the queue) takes its name from the center's configuration
        pushes (``_pushed_names``). Two queries, both in the scope."""
        where = [scope.centers_filter(queue_services.c.center_id)]
        if center_id is not None:
            where.append(queue_services.c.center_id == center_id)
        names = queue_services.c
        query = select(names.center_id, names.code, names.name_vi, names.name_en).where(*where)
        out = {
            (r.center_id, r.code): (r.name_en if language == "en" and r.name_en else r.name_vi)
            for r in self._rows(query)
        }
        pushed = self._pushed_names(scope, center_id, "services", lambda v: _service_entries(v, language))
        for key, name in pushed.items():
            out.setdefault(key, name)  # the queue's own name wins where both exist
        return out

    def officer_names(self, scope: Scope, *, center_id: str | None = None) -> dict[tuple[str, str], str]:
        """(center, officer key) -> the officer's name, for the ratings by officer: the queue's
        officers are keyed by their user name (their account's display name), the kiosk's ratings
        of an official by the id of the center's pushed ``officials`` list (its ``name``); the
        account wins where both use one key. A key named by neither is left out (shown as itself)."""
        u = users.c
        where = [scope.centers_filter(u.center_id), u.display_name != ""]
        if center_id is not None:
            where.append(u.center_id == center_id)
        out = {
            (r.center_id, r.username): r.display_name
            for r in self._rows(select(u.center_id, u.username, u.display_name).where(*where))
        }
        for key, name in self._pushed_names(scope, center_id, "officials", _official_entries).items():
            out.setdefault(key, name)
        return out

    def _pushed_names(
        self,
        scope: Scope,
        center_id: str | None,
        section: str,
        entries: Callable[[Any], Iterator[tuple[str, str]]],
    ) -> dict[tuple[str, str], str]:
        """(center, key) -> name from a list ``section`` (``services``, ``officials``) the centers
        pushed to their kiosks, ``entries`` reading (key, name) out of it.

        A push's body is its target's whole pushed configuration (the config page writes the previous
        body with one section changed), so per target, the center-wide ``_center`` or one kiosk, the
        newest push that carries the list is read: a later push that cleared the section does not
        unname the keys of the events recorded under it. A key takes the center-wide push's name,
        else that of the newest kiosk push naming it. One query; a body that is not JSON, or an entry
        that is not well formed, is skipped."""
        p = config_pushes.c
        where = [scope.centers_filter(p.center_id), self._has_list(p.body, section)]
        if center_id is not None:
            where.append(p.center_id == center_id)
        newest = select(func.max(p.id)).where(*where).group_by(p.center_id, p.target).scalar_subquery()
        query = select(p.id, p.center_id, p.target, p.body[section].label("entries")).where(
            p.id.in_(newest), scope.centers_filter(p.center_id)
        )
        rows = sorted(self._rows(query), key=lambda r: (r.target != CENTER_TARGET, -r.id))
        out: dict[tuple[str, str], str] = {}
        for r in rows:
            for key, name in entries(r.entries):
                out.setdefault((r.center_id, key), name)
        return out

    def _has_list(self, body: Any, section: str) -> ColumnElement[bool]:
        """The stored body has a list under ``section``. On SQLite the body is text that could be
        broken: ``json_type`` would raise on it, so it is only asked of valid JSON (CASE evaluates in
        order)."""
        if self.db.is_postgres:
            return func.jsonb_typeof(body[section]) == "array"
        kind = case((func.json_valid(body) == 1, func.json_type(body, f"$.{section}")), else_=None)
        return kind == "array"

    # --- look-ups and card reads ---

    def lookups(self, scope: Scope, period: Period, *, center_id: str | None = None) -> list[OutcomeCount]:
        return self._outcomes(scope, period, "lookup", "outcome", "latency_ms", center_id)

    def card_reads(self, scope: Scope, period: Period, *, center_id: str | None = None) -> list[OutcomeCount]:
        return self._outcomes(scope, period, "card_read", "result", "duration_ms", center_id)

    def _outcomes(
        self, scope: Scope, period: Period, kind: str, field: str, ms_field: str, center_id: str | None
    ) -> list[OutcomeCount]:
        sql = self._sql
        outcome, ms = sql.text(field).label("outcome"), sql.number(ms_field)
        query = (
            select(
                events.c.center_id,
                outcome,
                func.count().label("n"),
                func.avg(ms).label("mean_ms"),
                func.max(ms).label("max_ms"),
            )
            .where(*self._events(scope, period, (kind,), center_id))
            .group_by(events.c.center_id, outcome)
            .order_by(events.c.center_id, func.count().desc())
        )
        return [
            OutcomeCount(
                r.center_id,
                r.outcome or "?",
                int(r.n),
                None if r.mean_ms is None else float(r.mean_ms),
                None if r.max_ms is None else float(r.max_ms),
            )
            for r in self._rows(query)
        ]

    # --- ratings ---

    def ratings(
        self, scope: Scope, period: Period, *, by: str = "level", center_id: str | None = None
    ) -> list[RatingCount]:
        """Ratings grouped by ``level``, ``reason``, ``counter`` or ``officer`` (``rating_breakdown``)."""
        if by not in RATING_GROUPINGS:
            raise ValidationError(f"ratings by {by!r}: expected level, reason, counter or officer")
        return self.rating_breakdown(scope, period, center_id=center_id)[by]

    def rating_breakdown(
        self, scope: Scope, period: Period, *, center_id: str | None = None
    ) -> dict[str, list[RatingCount]]:
        """Ratings per ``level`` (key: the kiosk's level word; the phone's are ``phone``), ``reason``
        (the kiosk's reasons, each counted), ``counter`` and ``officer``, from three aggregate queries.

        Sources: the kiosks' ``rating`` events, and the queue's ratings (``queue_ratings``: the phone
        page's, and the kiosk ratings of a ticket that the queue tied to its counter and officer).
        Counted once in each grouping: level and reason from the events (plus the phone's levels),
        counter and officer from the queue plus the kiosk ratings aimed at a counter or an official."""
        sql = self._sql
        where = self._events(scope, period, ("rating",), center_id)
        level = cast(sql.number("level"), Integer).label("level")
        scale = cast(sql.number("scale"), Integer).label("scale")
        key, kind, target = sql.text("level_key"), sql.text("target_kind"), sql.text("target_id")
        kiosk = (
            select(
                events.c.center_id,
                key.label("key"),
                kind.label("kind"),
                target.label("target"),
                scale,
                level,
                func.count().label("n"),
            )
            .where(*where)
            .group_by(events.c.center_id, key, kind, target, scale, level)
        )
        q_where = [
            queue_ratings.c.at >= period.start,
            queue_ratings.c.at < period.end,
            scope.centers_filter(queue_ratings.c.center_id),
        ]
        if center_id is not None:
            q_where.append(queue_ratings.c.center_id == center_id)
        q = queue_ratings.c
        queued = (
            select(q.center_id, q.via, q.counter, users.c.username, q.scale, q.level, func.count().label("n"))
            .select_from(queue_ratings.outerjoin(users, users.c.id == q.user_id))
            .where(*q_where)
            .group_by(q.center_id, q.via, q.counter, users.c.username, q.scale, q.level)
        )
        reasons = self._reasons(
            where, cast(sql.number("scale"), Integer), cast(sql.number("level"), Integer)
        ).subquery()
        reason_rows = select(
            reasons.c.center_id, reasons.c.key, reasons.c.scale, reasons.c.level, func.count().label("n")
        ).group_by(reasons.c.center_id, reasons.c.key, reasons.c.scale, reasons.c.level)
        out: dict[str, dict[tuple[str, str, int, int], int]] = {by: {} for by in RATING_GROUPINGS}

        def add(by: str, center: str, name: str | None, row_scale: Any, row_level: Any, n: int) -> None:
            if not row_scale:
                return  # a payload without a scale cannot say what satisfied means
            slot = (center, name or "?", int(row_scale), int(row_level or 0))
            out[by][slot] = out[by].get(slot, 0) + int(n)

        for r in self._rows(kiosk):
            add("level", r.center_id, r.key, r.scale, r.level, r.n)
            if r.kind == "counter":
                add("counter", r.center_id, r.target, r.scale, r.level, r.n)
            elif r.kind == "official":
                add("officer", r.center_id, r.target, r.scale, r.level, r.n)
        for r in self._rows(queued):
            if r.via == "phone":
                add("level", r.center_id, "phone", r.scale, r.level, r.n)
            if r.counter is not None:
                add("counter", r.center_id, r.counter, r.scale, r.level, r.n)
            if r.username is not None:
                add("officer", r.center_id, r.username, r.scale, r.level, r.n)
        for r in self._rows(reason_rows):
            add("reason", r.center_id, r.key, r.scale, r.level, r.n)
        return {
            by: [RatingCount(c, k, sc, lv, n) for (c, k, sc, lv), n in sorted(counts.items())]
            for by, counts in out.items()
        }

    def _reasons(self, where: list[ColumnElement[bool]], scale: Any, level: Any) -> Select[Any]:
        """One row per reason of each rating event (the JSON array unnested in SQL)."""
        if self.db.is_postgres:
            reason = func.jsonb_array_elements_text(events.c.payload["reasons"]).table_valued("value")
            return (
                select(
                    events.c.center_id,
                    reason.c.value.label("key"),
                    scale.label("scale"),
                    level.label("level"),
                )
                .select_from(events.join(reason, literal(True)))
                .where(*where, func.jsonb_typeof(events.c.payload["reasons"]) == "array")
            )
        reason = func.json_each(events.c.payload, "$.reasons").table_valued("value")
        return (
            select(
                events.c.center_id, reason.c.value.label("key"), scale.label("scale"), level.label("level")
            )
            .select_from(events.join(reason, literal(True)))
            .where(*where)
        )

    # --- availability and alarms ---

    def kiosk_spans(self, scope: Scope, period: Period, *, center_id: str | None = None) -> list[KioskSpan]:
        """Every kiosk of the scope and how much of the period (up to now) it was registered."""
        sql, now = self._sql, self.db.now()
        end = _when(min(period.end, max(now, period.start)))
        start = sql.latest(_when(period.start), kiosks.c.created_at)
        span = sql.seconds(end, start).label("span")
        where = [scope.centers_filter(kiosks.c.center_id), kiosks.c.created_at < period.end]
        if center_id is not None:
            where.append(kiosks.c.center_id == center_id)
        query = (
            select(kiosks.c.center_id, kiosks.c.id, kiosks.c.label, span)
            .where(*where)
            .order_by(kiosks.c.center_id, kiosks.c.id)
        )
        return [
            KioskSpan(r.center_id, r.id, r.label, max(0.0, round(float(r.span or 0), 3)))
            for r in self._rows(query)
        ]

    def downtime(self, scope: Scope, period: Period, *, center_id: str | None = None) -> list[Downtime]:
        """Per kiosk and alarm type (``AVAILABILITY_TYPES``): the alarms that overlapped the period and
        their time inside it (an active alarm counts up to now). One alarm is active per (kiosk, type)
        at a time, so the sum never counts a second twice."""
        sql, now = self._sql, self.db.now()
        start = _when(period.start)
        end = _when(min(period.end, max(now, period.start)))
        began = sql.latest(alarms.c.started_at, start)
        ended = sql.earliest(func.coalesce(alarms.c.ended_at, end), end)
        where = [
            *self._alarms_overlap(scope, period, center_id),
            alarms.c.kiosk_id.is_not(None),
            alarms.c.type.in_(AVAILABILITY_TYPES),
        ]
        down = func.sum(sql.seconds(ended, began)).label("down")
        query = (
            select(alarms.c.center_id, alarms.c.kiosk_id, alarms.c.type, func.count().label("n"), down)
            .where(*where)
            .group_by(alarms.c.center_id, alarms.c.kiosk_id, alarms.c.type)
            .order_by(alarms.c.center_id, alarms.c.kiosk_id, alarms.c.type)
        )
        return [
            Downtime(r.center_id, r.kiosk_id, r.type, int(r.n), max(0.0, round(float(r.down or 0), 3)))
            for r in self._rows(query)
        ]

    def _alarms_overlap(
        self, scope: Scope, period: Period, center_id: str | None
    ) -> list[ColumnElement[bool]]:
        where = [
            scope.centers_filter(alarms.c.center_id),
            alarms.c.started_at < period.end,
            or_(alarms.c.ended_at.is_(None), alarms.c.ended_at > period.start),
        ]
        if center_id is not None:
            where.append(alarms.c.center_id == center_id)
        return where

    def alarms(
        self, scope: Scope, period: Period, *, center_id: str | None = None, limit: int = ALARM_LIMIT
    ) -> list[Alarm]:
        """The alarms active at some time of the period (kiosks' and the centers' own), oldest first."""
        query = (
            _select()
            .where(*self._alarms_overlap(scope, period, center_id))
            .order_by(alarms.c.started_at, alarms.c.id)
            .limit(limit)
        )
        return [_alarm_from(r) for r in self._rows(query)]

    def alarm_counts(self, scope: Scope, period: Period) -> dict[str, int]:
        """Alarms active at some time of the period, per center (the province's table)."""
        query = (
            select(alarms.c.center_id, func.count().label("n"))
            .where(*self._alarms_overlap(scope, period, None))
            .group_by(alarms.c.center_id)
        )
        return {r.center_id: int(r.n) for r in self._rows(query)}

    # --- live ---

    def watermark(self, scope: Scope, *, center_id: str | None = None) -> tuple[Any, ...]:
        """Something that changes whenever a figure of the usage page may have: the newest event
        received, the newest change-log row (alarms, kiosk states), the queue's newest step (a ticket
        issued, called, done...) and rating. Cheap (max over indexes), asked by the page's live
        stream every few seconds."""

        def scoped(column: Any) -> list[ColumnElement[bool]]:
            where = [scope.centers_filter(column)]
            if center_id is not None:
                where.append(column == center_id)
            return where

        query = select(
            select(func.max(events.c.received_at)).where(*scoped(events.c.center_id)).scalar_subquery(),
            select(func.max(changes.c.id)).where(*scoped(changes.c.center_id)).scalar_subquery(),
            select(func.max(queue_steps.c.id)).where(*scoped(queue_steps.c.center_id)).scalar_subquery(),
            select(func.max(queue_ratings.c.id)).where(*scoped(queue_ratings.c.center_id)).scalar_subquery(),
        )
        with self.db.read() as conn:
            row = conn.execute(query).one()
        return tuple(row)


def _official_entries(officials: Any) -> Iterator[tuple[str, str]]:
    """(id, name) of each well-formed entry of a pushed ``officials`` list (``contract.config``'s
    ``Official``); anything else is skipped, never raised on."""
    if not isinstance(officials, list):
        return
    for entry in officials:
        if not isinstance(entry, dict):
            continue
        official_id, name = entry.get("id"), entry.get("name")
        if isinstance(official_id, str) and official_id and isinstance(name, str) and name:
            yield official_id, name


def _service_entries(services: Any, language: str) -> Iterator[tuple[str, str]]:
    """(code, name) of each well-formed entry of a pushed ``services`` list (``contract.config``'s
    ``ServiceArea``: ``code``, ``name_vi``, ``name_en``); anything else is skipped, never raised on."""
    if not isinstance(services, list):
        return
    for entry in services:
        if not isinstance(entry, dict):
            continue
        code, vi, en = entry.get("code"), entry.get("name_vi"), entry.get("name_en")
        if not isinstance(code, str) or not code or not isinstance(vi, str) or not vi:
            continue
        yield code, (en if language == "en" and isinstance(en, str) and en else vi)


def split_day_hour(rows: Iterable[TicketCount]) -> tuple[list[TicketCount], list[TicketCount]]:
    """``tickets(by="day_hour")`` rows added up per day and per hour of day (both sorted)."""
    days: dict[tuple[str, str, str], list[int]] = {}
    hours: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        day, hour = r.bucket.split(" ")
        for acc in (
            days.setdefault((r.center_id, day, r.service), [0, 0]),
            hours.setdefault((r.center_id, hour, r.service), [0, 0]),
        ):
            acc[0] += r.issued
            acc[1] += r.voided

    def out(groups: dict[tuple[str, str, str], list[int]]) -> list[TicketCount]:
        return [TicketCount(c, s, b, n[0], n[1]) for (c, b, s), n in sorted(groups.items())]

    return out(days), out(hours)


def availability_percent(span_s: float, down_s: float) -> float | None:
    return None if span_s <= 0 else max(0.0, 100.0 * (1.0 - min(down_s, span_s) / span_s))


def sum_by(rows: Iterable[Any], key: Any, *fields: str) -> dict[Any, list[float]]:
    """Add up ``fields`` of aggregate rows per ``key(row)`` (a province's total of its centers)."""
    out: dict[Any, list[float]] = {}
    for row in rows:
        acc = out.setdefault(key(row), [0.0] * len(fields))
        for i, name in enumerate(fields):
            acc[i] += getattr(row, name) or 0
    return out


__all__ = [
    "AVAILABILITY_TYPES",
    "Downtime",
    "KioskSpan",
    "OutcomeCount",
    "Period",
    "RatingCount",
    "RatingGroup",
    "TicketCount",
    "Usage",
    "WaitingCount",
    "availability_percent",
    "rating_groups",
    "sum_by",
]
