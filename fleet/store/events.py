"""Kiosk events: idempotent on ``event_id`` (delivery is at-least-once) and watched for gaps.

``seq`` grows by one per event within a ``journal_id`` (docs/mqtt.md). Per (kiosk, journal) the store
keeps the highest seq seen; a jump opens a gap [highest+1, seq-1]; a late event inside a gap shrinks
or closes it ('filled'); an ``outbox_dropped`` event closes the range it announces ('dropped'), the
only planned loss. The journal writes that event after the events it dropped, so by the time it arrives
the jump over them has opened the gap it closes. Everything for one event happens in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, text, tuple_, update

from common.errors import ConflictError, MotcuaError, NotFoundError
from fleet.store.base import Part
from fleet.store.models import EventGap, EventOutcome, EventRecord, StoredEvent
from fleet.store.partitions import Partitions, month_of
from fleet.store.schema import event_gaps, event_journals, event_keys, events, kiosks
from fleet.store.scope import Scope
from fleet.store.telemetry import Telemetry

DROPPED = "dropped"
FILLED = "filled"
#: (kiosk, journal) pairs per IN list
CLAIM_CHUNK = 500


@dataclass(frozen=True)
class EventInsert:
    """One event for ``insert_events``: the ids from the topic, the record, when it arrived."""

    center_id: str
    kiosk_id: str
    event: EventRecord
    received_at: datetime | None = None


def _aware(when: datetime) -> datetime:
    """What ``UtcDateTime`` checks on the way in, for the statements over arrays that bypass it."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: the store takes aware (UTC) times only")
    return when.astimezone(UTC)


# PostgreSQL: the batch's event ids claimed and its new events inserted by one statement, the rows as
# one JSON document (json.dumps in C; psycopg's text arrays quoted and escaped each payload in Python)
_CLAIM_AND_INSERT_PG = text(
    "WITH input AS (SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(event_id text, "
    "occurred_at timestamptz, center_id text, kiosk_id text, journal_id text, seq bigint, kind text, "
    "received_at timestamptz, replay boolean, payload jsonb)), "
    "claimed AS (INSERT INTO event_keys (event_id, kiosk_id, occurred_at) "
    "SELECT event_id, kiosk_id, occurred_at FROM input "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id) "
    "INSERT INTO events (event_id, occurred_at, center_id, kiosk_id, journal_id, seq, kind, received_at, "
    "replay, payload) "
    "SELECT i.event_id, i.occurred_at, i.center_id, i.kiosk_id, i.journal_id, i.seq, i.kind, "
    "i.received_at, i.replay, i.payload FROM input AS i JOIN claimed USING (event_id) "
    "RETURNING event_id"
)
# the journals as JSON documents too: psycopg dumps a list parameter element by element in Python
# (9 % of the processing thread for these two statements, py-spy)
_JOURNALS_PG = text(
    "SELECT j.kiosk_id, j.journal_id, j.max_seq FROM event_journals AS j "
    "JOIN json_to_recordset(CAST(:keys AS json)) AS w(k text, j text) "
    "ON j.kiosk_id = w.k AND j.journal_id = w.j"
)
_UPDATE_JOURNALS_PG = text(
    "UPDATE event_journals AS j SET max_seq = u.top, events = j.events + u.n, last_seen = u.seen "
    "FROM json_to_recordset(CAST(:rows AS json)) "
    "AS u(k text, j text, top bigint, n bigint, seen timestamptz) "
    "WHERE j.kiosk_id = u.k AND j.journal_id = u.j"
)


def _event_from(row: Any) -> StoredEvent:
    m = row._mapping
    return StoredEvent(
        m["event_id"],
        m["center_id"],
        m["kiosk_id"],
        m["journal_id"],
        m["seq"],
        m["kind"],
        m["occurred_at"],
        m["received_at"],
        m["replay"],
        m["payload"],
    )


def _gap_from(row: Any) -> EventGap:
    m = row._mapping
    return EventGap(
        m["id"],
        m["kiosk_id"],
        m["journal_id"],
        m["first_seq"],
        m["last_seq"],
        m["detected_at"],
        m["closed_at"],
        m["closed_reason"],
    )


def subtract(ranges: Sequence[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """[first, last] minus the given closed ranges, as sorted closed ranges."""
    pieces = [(first, last)]
    for a, b in sorted(ranges):
        nxt = []
        for lo, hi in pieces:
            if b < lo or a > hi:
                nxt.append((lo, hi))
                continue
            if lo < a:
                nxt.append((lo, a - 1))
            if b < hi:
                nxt.append((b + 1, hi))
        pieces = nxt
    return pieces


def _needing_gaps(
    fresh: Sequence[tuple[int, EventInsert]], highest: dict[tuple[str, str], int]
) -> list[tuple[str, str]]:
    """The (kiosk, journal) pairs whose stored open gaps these events may touch: a late seq (at or below
    the stored top) or an announced loss; the others only open gaps."""
    wanted = set()
    for _, item in fresh:
        key = (item.kiosk_id, item.event.journal_id)
        if key in highest and (item.event.seq <= highest[key] or item.event.kind == "outbox_dropped"):
            wanted.add(key)
    return sorted(wanted)


@dataclass
class _GapRow:
    """A gap as the batch leaves it: ``id`` None until inserted; ``changed``: a stored gap altered."""

    key: tuple[str, str]
    first: int
    last: int
    detected_at: datetime
    id: int | None = None
    closed_at: datetime | None = None
    reason: str | None = None
    changed: bool = False
    opened_as: tuple[int, int] = (0, 0)  # the range it was opened with (the outcome reports that)

    def opened(self) -> EventGap:
        assert self.id is not None
        first, last = self.opened_as
        return EventGap(self.id, self.key[0], self.key[1], first, last, self.detected_at, None, None)


class _GapBook:
    """The open gaps of a batch's journals, changed in memory event by event exactly as one event at
    a time changed the table (a jump opens [top+1, seq-1]; a late seq or an announced loss takes its
    range out of the open gaps, the covered part kept as a closed gap, the rest open under its
    detection time), then written by ``Events._write_gaps``: with two workers taking turns at a
    kiosk's events, half of them arrive after a later one, and a statement or two each had made the
    gaps most of a batch's time."""

    def __init__(self, stored: Sequence[Any]) -> None:
        self.rows: list[_GapRow] = []
        self._open: dict[tuple[str, str], list[_GapRow]] = {}
        for r in stored:
            row = _GapRow((r.kiosk_id, r.journal_id), r.first_seq, r.last_seq, r.detected_at, id=r.id)
            self.rows.append(row)
            self._open.setdefault(row.key, []).append(row)

    def open(self, key: tuple[str, str], first: int, last: int, at: datetime) -> _GapRow:
        row = _GapRow(key, first, last, at, opened_as=(first, last))
        self.rows.append(row)
        self._open.setdefault(key, []).append(row)
        return row

    def close(self, key: tuple[str, str], first: int, last: int, reason: str, at: datetime) -> bool:
        """Take [first, last] out of the key's open gaps; whether any overlapped."""
        gaps = self._open.get(key, [])
        overlapping = sorted((g for g in gaps if g.last >= first and g.first <= last), key=lambda g: g.first)
        for gap in overlapping:
            lo, hi = max(gap.first, first), min(gap.last, last)
            rest = subtract([(lo, hi)], gap.first, gap.last)
            gaps.remove(gap)  # the gap becomes the closed (covered) part; what stays missing, new open gaps
            gap.first, gap.last, gap.closed_at, gap.reason, gap.changed = lo, hi, at, reason, True
            for a, b in rest:
                piece = _GapRow(key, a, b, gap.detected_at, opened_as=(a, b))
                self.rows.append(piece)
                gaps.append(piece)
        return bool(overlapping)


class Events(Part):
    def __init__(self, db: Any, partitions: Partitions, telemetry: Telemetry) -> None:
        super().__init__(db)
        self.partitions = partitions
        self.telemetry = telemetry

    def insert_event(
        self, center_id: str, kiosk_id: str, event: EventRecord, received_at: datetime | None = None
    ) -> EventOutcome:
        outcome = self.insert_events([EventInsert(center_id, kiosk_id, event, received_at)])[0]
        if isinstance(outcome, MotcuaError):
            raise outcome
        return outcome

    def insert_events(self, items: Sequence[EventInsert]) -> list[EventOutcome | MotcuaError]:
        """Many events in one transaction, in the order given: what ``claim_events`` then
        ``track_events`` do. Per item: its outcome, or the error that refuses it (an unknown kiosk:
        ``NotFoundError``; a kiosk under another center's id: ``ConflictError``)."""
        if not items:
            return []
        self._ensure_months(items)
        now = self.db.now()
        with self.db.write() as conn:
            return self._track_in(conn, items, self._claim_in(conn, items, now), now)

    def claim_events(self, items: Sequence[EventInsert]) -> list[bool | MotcuaError]:
        """The first half of ``insert_events``: the items checked against the registry (their kiosks'
        centers read, not locked), the event ids claimed with one multi-row ``INSERT … ON CONFLICT DO
        NOTHING`` and the new events inserted. It takes no lock that a kiosk's other writes wait for
        (the events' foreign key takes KEY SHARE locks, which the kiosks' NO KEY UPDATE locks allow), so
        the ingest claims a batch's events before it locks the batch's kiosks, and a second worker's
        batch over the same kiosks waits only for the rest of this one. Per item: True (new), False
        (stored before, or twice in these items) or the error that refuses it. Call ``track_events``
        for them in the same transaction (a ``db.batch()``): new events whose gaps are not followed
        would stay unfollowed, since their redelivery is a duplicate."""
        if not items:
            return []
        self._ensure_months(items)
        now = self.db.now()
        with self.db.write() as conn:
            return self._claim_in(conn, items, now)

    def track_events(
        self, items: Sequence[EventInsert], claims: Sequence[bool | MotcuaError]
    ) -> list[EventOutcome | MotcuaError]:
        """The second half of ``insert_events``: gaps followed for the events ``claim_events`` found
        new, in their order, each (kiosk, journal) read and written once, under the kiosks' row locks
        (taken here in id order, unless the ingest's batch holds them already)."""
        now = self.db.now()
        with self.db.write() as conn:
            return self._track_in(conn, items, claims, now)

    def _ensure_months(self, items: Sequence[EventInsert]) -> None:
        for month in sorted({month_of(item.event.occurred_at) for item in items}):
            self.partitions.ensure(month)  # DDL in its own transaction, before ours takes any lock

    def _claim_in(
        self, conn: Connection, items: Sequence[EventInsert], now: datetime
    ) -> list[bool | MotcuaError]:
        claims: list[bool | MotcuaError] = [False] * len(items)
        owners = self.telemetry.kiosk_centers(conn, {item.kiosk_id for item in items})
        wanted: dict[str, int] = {}  # event_id -> index of its first valid item
        for index, item in enumerate(items):
            owner = owners.get(item.kiosk_id)
            if owner is None:
                claims[index] = NotFoundError(f"kiosk {item.kiosk_id!r} is not in the registry")
            elif owner != item.center_id:
                claims[index] = ConflictError(
                    f"kiosk {item.kiosk_id!r} belongs to center {owner!r}, not {item.center_id!r}"
                )
            elif item.event.event_id not in wanted:  # twice in these very items: the second is not new
                wanted[item.event.event_id] = index
        if self.db.is_postgres:
            claimed = self._claim_and_insert_pg(conn, [items[i] for i in wanted.values()], now)
        else:
            claimed = self._claim(conn, [items[i] for i in wanted.values()])
        fresh = [i for event_id, i in wanted.items() if event_id in claimed]
        for index in fresh:
            claims[index] = True
        if fresh and not self.db.is_postgres:
            conn.execute(
                insert(events),
                [
                    {
                        "event_id": items[i].event.event_id,
                        "occurred_at": items[i].event.occurred_at,
                        "center_id": items[i].center_id,
                        "kiosk_id": items[i].kiosk_id,
                        "journal_id": items[i].event.journal_id,
                        "seq": items[i].event.seq,
                        "kind": items[i].event.kind,
                        "received_at": items[i].received_at or now,
                        "replay": items[i].event.replay,
                        "payload": items[i].event.payload,
                    }
                    for i in fresh
                ],
            )
        return claims

    def _track_in(
        self,
        conn: Connection,
        items: Sequence[EventInsert],
        claims: Sequence[bool | MotcuaError],
        now: datetime,
    ) -> list[EventOutcome | MotcuaError]:
        fresh = [(index, item) for index, (item, claim) in enumerate(zip(items, claims, strict=True))
                 if claim is True]
        tracked: dict[int, EventOutcome] = {}
        if fresh:
            self.telemetry._lock_kiosks(conn, {item.kiosk_id for _, item in fresh})
            tracked = self._track_all(conn, fresh, now)
        return [
            claim if isinstance(claim, MotcuaError) else tracked.get(index, EventOutcome(inserted=False))
            for index, claim in enumerate(claims)
        ]

    def _claim_and_insert_pg(self, conn: Connection, items: Sequence[EventInsert], now: datetime) -> set[str]:
        """PostgreSQL: the event ids of ``items`` not stored before claimed in ``event_keys`` (the
        idempotency key) and those events inserted, in one statement; returns the ids it inserted.
        psycopg's executemany sent a prepared INSERT per row, ~0.1 ms of Python each, and arrays of
        text quoted every payload in Python (docs/fleet.md, "Where the worker's time went")."""
        if not items:
            return set()
        rows = [
            {
                "event_id": i.event.event_id,
                "occurred_at": _aware(i.event.occurred_at).isoformat(),
                "center_id": i.center_id,
                "kiosk_id": i.kiosk_id,
                "journal_id": i.event.journal_id,
                "seq": i.event.seq,
                "kind": i.event.kind,
                "received_at": _aware(i.received_at or now).isoformat(),
                "replay": bool(i.event.replay),
                "payload": i.event.payload,
            }
            for i in items
        ]
        return set(conn.execute(_CLAIM_AND_INSERT_PG, {"rows": json.dumps(rows)}).scalars())

    def _claim(self, conn: Connection, items: Sequence[EventInsert]) -> set[str]:
        """SQLite: the event ids of ``items`` not stored before (``event_keys`` is the idempotency key),
        in one statement executed for many rows: SQLAlchemy sends them as multi-row INSERTs (its
        "insertmanyvalues", RETURNING included) and the compiled statement is cached, which a
        ``.values([...])`` is not."""
        statement = (
            self.db.insert(event_keys)
            .on_conflict_do_nothing(index_elements=[event_keys.c.event_id])
            .returning(event_keys.c.event_id)
        )
        rows = [
            {"event_id": i.event.event_id, "kiosk_id": i.kiosk_id, "occurred_at": i.event.occurred_at}
            for i in items
        ]
        return set(conn.execute(statement, rows).scalars()) if rows else set()

    def _track_all(
        self, conn: Connection, fresh: Sequence[tuple[int, EventInsert]], now: datetime
    ) -> dict[int, EventOutcome]:
        """Gap detection for new events, in their order; each (kiosk, journal) row read and written once."""
        j = event_journals.c
        keys = sorted({(item.kiosk_id, item.event.journal_id) for _, item in fresh})
        highest: dict[tuple[str, str], int] = {}
        if self.db.is_postgres:  # one JSON document: an IN list of pairs is compiled each time
            found = conn.execute(_JOURNALS_PG, {"keys": json.dumps([{"k": k, "j": jid} for k, jid in keys])})
            highest.update({(kiosk, journal): top for kiosk, journal, top in found.all()})  # fetched at once
        else:
            for start in range(0, len(keys), CLAIM_CHUNK):
                chunk = keys[start : start + CLAIM_CHUNK]
                for row in conn.execute(
                    select(j.kiosk_id, j.journal_id, j.max_seq).where(
                        tuple_(j.kiosk_id, j.journal_id).in_(chunk)
                    )
                ):
                    highest[(row.kiosk_id, row.journal_id)] = row.max_seq
        known = set(highest)
        book = _GapBook(self._open_gaps(conn, _needing_gaps(fresh, highest)))
        counts: dict[tuple[str, str], int] = {}
        firsts: dict[tuple[str, str], datetime] = {}
        opened_by: dict[int, list[_GapRow]] = {}
        late: dict[int, bool] = {}  # event index -> whether it filled a gap (seq at or below the top)
        for index, item in fresh:
            key = (item.kiosk_id, item.event.journal_id)
            received = item.received_at or now
            firsts.setdefault(key, received)
            counts[key] = counts.get(key, 0) + 1
            top = highest.get(key, 0)  # a journal starts at seq 1: anything below the first seen is missing
            seq = item.event.seq
            highest[key] = max(top, seq)
            if seq > top + 1:
                opened_by[index] = [book.open(key, top + 1, seq - 1, received)]
            elif seq <= top:
                late[index] = book.close(key, seq, seq, FILLED, received)
            if item.event.kind == "outbox_dropped":
                first, last = item.event.payload.get("first_seq"), item.event.payload.get("last_seq")
                if isinstance(first, int) and isinstance(last, int) and 1 <= first <= last:
                    book.close(key, first, last, DROPPED, received)
        self._write_gaps(conn, book)
        outcomes: dict[int, EventOutcome] = {}
        for index, _ in fresh:
            if index in opened_by:
                outcomes[index] = EventOutcome(True, opened=tuple(row.opened() for row in opened_by[index]))
            elif index in late:
                outcomes[index] = EventOutcome(True, filled=late[index], out_of_order=not late[index])
            else:
                outcomes[index] = EventOutcome(True)
        last_seen = {(item.kiosk_id, item.event.journal_id): item.received_at or now for _, item in fresh}
        new_rows = [
            {"kiosk_id": k, "journal_id": jid, "max_seq": highest[(k, jid)], "events": counts[(k, jid)],
             "first_seen": firsts[(k, jid)], "last_seen": last_seen[(k, jid)]}
            for k, jid in keys if (k, jid) not in known
        ]
        if new_rows:
            conn.execute(insert(event_journals), new_rows)
        old_keys = [key for key in keys if key in known]
        if old_keys and self.db.is_postgres:  # one statement over JSON rows, not a prepared UPDATE per row
            rows = [
                {"k": key[0], "j": key[1], "top": highest[key], "n": counts[key],
                 "seen": _aware(last_seen[key]).isoformat()}
                for key in old_keys
            ]
            conn.execute(_UPDATE_JOURNALS_PG, {"rows": json.dumps(rows)})
            return outcomes
        old_rows = [
            {"k": k, "jid": jid, "top": highest[(k, jid)], "n": counts[(k, jid)], "seen": last_seen[(k, jid)]}
            for k, jid in old_keys
        ]
        if old_rows:
            conn.execute(
                update(event_journals)
                .where(j.kiosk_id == bindparam("k"), j.journal_id == bindparam("jid"))
                .values(
                    max_seq=bindparam("top"), events=j.events + bindparam("n"), last_seen=bindparam("seen")
                ),
                old_rows,
            )
        return outcomes

    def _open_gaps(self, conn: Connection, keys: Sequence[tuple[str, str]]) -> list[Any]:
        """The open gaps of these (kiosk, journal) pairs, in one read (500 pairs at a time)."""
        g = event_gaps.c
        rows: list[Any] = []
        for start in range(0, len(keys), CLAIM_CHUNK):
            chunk = keys[start : start + CLAIM_CHUNK]
            rows.extend(
                conn.execute(
                    select(event_gaps)
                    .where(tuple_(g.kiosk_id, g.journal_id).in_(chunk), g.closed_at.is_(None))
                    .order_by(g.kiosk_id, g.journal_id, g.first_seq, g.id)
                )
            )
        return rows

    def _write_gaps(self, conn: Connection, book: _GapBook) -> None:
        """What the batch's events did to the gaps, in two statements: the stored gaps they changed,
        the gaps they opened or split off (their ids read back for the events' outcomes)."""
        g = event_gaps.c
        changed = [row for row in book.rows if row.id is not None and row.changed]
        if changed:
            conn.execute(
                update(event_gaps)
                .where(g.id == bindparam("b_id"))
                .values(
                    first_seq=bindparam("b_first"),
                    last_seq=bindparam("b_last"),
                    closed_at=bindparam("b_closed"),
                    closed_reason=bindparam("b_reason"),
                ),
                [
                    {"b_id": r.id, "b_first": r.first, "b_last": r.last, "b_closed": r.closed_at,
                     "b_reason": r.reason}
                    for r in changed
                ],
            )
        new = [row for row in book.rows if row.id is None]
        if new:
            ids = conn.execute(
                insert(event_gaps).returning(g.id, sort_by_parameter_order=True),
                [
                    {"kiosk_id": r.key[0], "journal_id": r.key[1], "first_seq": r.first, "last_seq": r.last,
                     "detected_at": r.detected_at, "closed_at": r.closed_at, "closed_reason": r.reason}
                    for r in new
                ],
            ).scalars().all()
            for row, gap_id in zip(new, ids, strict=True):
                row.id = gap_id

    # --- reads ---

    def gaps(self, scope: Scope, kiosk_id: str, *, open_only: bool = True) -> list[EventGap]:
        g = event_gaps.c
        query = (
            select(event_gaps)
            .join(kiosks, kiosks.c.id == g.kiosk_id)
            .where(g.kiosk_id == kiosk_id, scope.centers_filter(kiosks.c.center_id))
            .order_by(g.journal_id, g.first_seq, g.id)
        )
        if open_only:
            query = query.where(g.closed_at.is_(None))
        with self.db.read() as conn:
            return [_gap_from(r) for r in conn.execute(query)]

    def recent(
        self, scope: Scope, kiosk_id: str, *, limit: int | None = 50, kinds: Sequence[str] | None = None
    ) -> list[StoredEvent]:
        query = (
            select(events)
            .where(events.c.kiosk_id == kiosk_id, scope.centers_filter(events.c.center_id))
            .order_by(events.c.occurred_at.desc(), events.c.seq.desc())
        )
        if kinds:
            query = query.where(events.c.kind.in_(list(kinds)))
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            return [_event_from(r) for r in conn.execute(query)]

    def get(self, scope: Scope, event_id: str) -> StoredEvent | None:
        with self.db.read() as conn:
            key = conn.execute(
                select(event_keys.c.occurred_at).where(event_keys.c.event_id == event_id)
            ).first()
            if key is None:
                return None
            row = conn.execute(
                select(events).where(
                    and_(events.c.event_id == event_id, events.c.occurred_at == key.occurred_at),
                    scope.centers_filter(events.c.center_id),
                )
            ).first()
            return _event_from(row) if row else None

    def count(self, scope: Scope, *, kiosk_id: str | None = None) -> int:
        query = select(func.count()).select_from(events).where(scope.centers_filter(events.c.center_id))
        if kiosk_id:
            query = query.where(events.c.kiosk_id == kiosk_id)
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def open_gap_totals(self, scope: Scope, kiosk_ids: Sequence[str]) -> dict[str, int]:
        """Missing events per kiosk (open gaps), for the lists."""
        g = event_gaps.c
        query = (
            select(g.kiosk_id, func.sum(g.last_seq - g.first_seq + 1).label("n"))
            .join(kiosks, kiosks.c.id == g.kiosk_id)
            .where(
                g.closed_at.is_(None),
                g.kiosk_id.in_(list(kiosk_ids)),
                scope.centers_filter(kiosks.c.center_id),
            )
            .group_by(g.kiosk_id)
        )
        with self.db.read() as conn:
            return {r.kiosk_id: int(r.n) for r in conn.execute(query)}
