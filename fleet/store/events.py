"""Kiosk events: idempotent on ``event_id`` (delivery is at-least-once) and watched for gaps.

``seq`` grows by one per event within a ``journal_id`` (docs/mqtt.md). Per (kiosk, journal) the store
keeps the highest seq seen; a jump opens a gap [highest+1, seq-1]; a late event inside a gap shrinks
or closes it ('filled'); an ``outbox_dropped`` event closes the range it announces ('dropped'), the
only planned loss. The journal writes that event after the events it dropped, so by the time it arrives
the jump over them has opened the gap it closes. Everything for one event happens in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from fleet.store.base import Part
from fleet.store.models import EventGap, EventOutcome, EventRecord, StoredEvent
from fleet.store.partitions import Partitions
from fleet.store.schema import event_gaps, event_journals, event_keys, events, kiosks
from fleet.store.scope import Scope
from fleet.store.telemetry import Telemetry

DROPPED = "dropped"
FILLED = "filled"


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


class Events(Part):
    def __init__(self, db: Any, partitions: Partitions, telemetry: Telemetry) -> None:
        super().__init__(db)
        self.partitions = partitions
        self.telemetry = telemetry

    def insert_event(
        self, center_id: str, kiosk_id: str, event: EventRecord, received_at: datetime | None = None
    ) -> EventOutcome:
        received = received_at or self.db.now()
        self.partitions.ensure_for(event.occurred_at)  # DDL in its own transaction, normally cached
        with self.db.write() as conn:
            self.telemetry._lock_kiosk(conn, center_id, kiosk_id)
            key = self.db.insert(event_keys).values(
                event_id=event.event_id, kiosk_id=kiosk_id, occurred_at=event.occurred_at
            )
            claimed = conn.execute(
                key.on_conflict_do_nothing(index_elements=[event_keys.c.event_id]).returning(
                    event_keys.c.event_id
                )
            ).scalar()
            if claimed is None:
                return EventOutcome(inserted=False)
            conn.execute(
                insert(events).values(
                    event_id=event.event_id,
                    occurred_at=event.occurred_at,
                    center_id=center_id,
                    kiosk_id=kiosk_id,
                    journal_id=event.journal_id,
                    seq=event.seq,
                    kind=event.kind,
                    received_at=received,
                    replay=event.replay,
                    payload=event.payload,
                )
            )
            outcome = self._track(conn, kiosk_id, event.journal_id, event.seq, received)
            if event.kind == "outbox_dropped":
                first, last = event.payload.get("first_seq"), event.payload.get("last_seq")
                if isinstance(first, int) and isinstance(last, int) and 1 <= first <= last:
                    self._close_range(conn, kiosk_id, event.journal_id, first, last, DROPPED, received)
            return outcome

    def _track(
        self, conn: Connection, kiosk_id: str, journal_id: str, seq: int, now: datetime
    ) -> EventOutcome:
        """Gap detection for one new (not duplicate) event; the kiosk row lock serialises a kiosk."""
        j = event_journals.c
        row = conn.execute(
            select(j.max_seq).where(j.kiosk_id == kiosk_id, j.journal_id == journal_id)
        ).first()
        if row is None:
            conn.execute(
                insert(event_journals).values(
                    kiosk_id=kiosk_id,
                    journal_id=journal_id,
                    max_seq=seq,
                    events=1,
                    first_seen=now,
                    last_seen=now,
                )
            )
            highest = 0  # a journal starts at seq 1: anything below the first seen is missing
        else:
            highest = row.max_seq
            conn.execute(
                update(event_journals)
                .where(j.kiosk_id == kiosk_id, j.journal_id == journal_id)
                .values(max_seq=max(highest, seq), events=j.events + 1, last_seen=now)
            )
        if seq > highest + 1:
            return EventOutcome(
                True, opened=tuple(self._open(conn, kiosk_id, journal_id, highest + 1, seq - 1, now))
            )
        if seq == highest + 1:
            return EventOutcome(True)
        filled = self._close_range(conn, kiosk_id, journal_id, seq, seq, FILLED, now)
        return EventOutcome(True, filled=filled, out_of_order=not filled)

    def _open(
        self, conn: Connection, kiosk_id: str, journal_id: str, first: int, last: int, now: datetime
    ) -> list[EventGap]:
        gap_id = conn.execute(
            insert(event_gaps)
            .values(kiosk_id=kiosk_id, journal_id=journal_id, first_seq=first, last_seq=last, detected_at=now)
            .returning(event_gaps.c.id)
        ).scalar_one()
        opened = [EventGap(gap_id, kiosk_id, journal_id, first, last, now, None, None)]
        return opened

    def _close_range(
        self,
        conn: Connection,
        kiosk_id: str,
        journal_id: str,
        first: int,
        last: int,
        reason: str,
        now: datetime,
    ) -> bool:
        """Take [first, last] out of the open gaps; the covered part is kept as a closed gap."""
        g = event_gaps.c
        overlapping = conn.execute(
            select(event_gaps)
            .where(
                g.kiosk_id == kiosk_id,
                g.journal_id == journal_id,
                g.closed_at.is_(None),
                g.last_seq >= first,
                g.first_seq <= last,
            )
            .order_by(g.first_seq)
        ).all()
        for gap in overlapping:
            lo, hi = max(gap.first_seq, first), min(gap.last_seq, last)
            rest = subtract([(lo, hi)], gap.first_seq, gap.last_seq)
            # the gap row becomes the closed (covered) part; what stays missing gets new open rows
            conn.execute(
                update(event_gaps)
                .where(g.id == gap.id)
                .values(first_seq=lo, last_seq=hi, closed_at=now, closed_reason=reason)
            )
            for a, b in rest:
                conn.execute(
                    insert(event_gaps).values(
                        kiosk_id=kiosk_id,
                        journal_id=journal_id,
                        first_seq=a,
                        last_seq=b,
                        detected_at=gap.detected_at,
                    )
                )
        return bool(overlapping)

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
