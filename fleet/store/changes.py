"""Following the store from any process: the newest change id, and what changed since an id.

On PostgreSQL a change's id comes from a sequence when the row is inserted, not when its transaction
commits: with several writers (ingest workers, web processes) the transaction that took id N can commit
after the one that took N+1, and a reader that moved its cursor to N+1 never saw N. A follower
(``Gaps``) therefore moves its cursor only over ids that are there, or that have been missing for
``GAP_WAIT_S`` (a transaction rolled back: its id never comes); what it finds above a missing id is
handed out at once, and once. Marten's event daemon follows its sequence the same way (a "high water
mark" with a stale-sequence threshold). The writers' alternative, a lock held from the insert to the
COMMIT, serializes every writer's commit (docs/fleet.md, "Change ids in commit order")."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import func, select

from fleet.store.base import Part
from fleet.store.models import Change
from fleet.store.schema import changes, store_settings
from fleet.store.scope import Scope

#: how long a follower waits for a missing change id before it moves past it: longer than any write
#: transaction that logs changes (an ingest batch takes well under a second)
GAP_WAIT_S = 10.0
#: how far back a page looks for a missing id when it picks the id its stream starts from
START_LOOKBACK = 200


@dataclass
class Gaps:
    """A follower's view of the ids it has not passed yet: since when each missing one has been missing
    (monotonic seconds), and which ids above its cursor it has handed out already."""

    wait_s: float = GAP_WAIT_S
    missing: dict[int, float] = field(default_factory=dict)
    sent: set[int] = field(default_factory=set)

    def advance(self, cursor: int, present: set[int], end: int, now: float) -> int:
        """The new cursor: past every id up to ``end`` that is there or missing for ``wait_s``, up to
        the first one still worth waiting for."""
        blocked = False
        for change_id in range(cursor + 1, end + 1):
            if change_id in present:
                if not blocked:
                    cursor = change_id
                continue
            since = self.missing.setdefault(change_id, now)
            if not blocked and now - since >= self.wait_s:
                cursor = change_id  # rolled back, or open far longer than a write takes: move on
            else:
                blocked = True
        self.missing = {i: t for i, t in self.missing.items() if i > cursor}
        return cursor

    def hand_out(self, found: list[Change], cursor: int) -> list[Change]:
        """What of ``found`` was not handed out before; what is above ``cursor`` is remembered."""
        fresh = [c for c in found if c.id not in self.sent]
        self.sent = {i for i in self.sent.union(c.id for c in fresh) if i > cursor}
        return fresh


class Changes(Part):
    def latest_id(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(changes.c.id), 0))).scalar_one())

    def stream_start(self) -> int:
        """The id a page drawn now streams from (read **before** its rows): below the first id missing
        among the newest ``START_LOOKBACK``, so that a change whose transaction has not committed yet
        comes through the stream (its ``Gaps`` waits for it). A stream re-sends what came after, which
        is harmless (the same markup)."""
        with self.db.read() as conn:
            bounds = conn.execute(select(func.min(changes.c.id), func.max(changes.c.id))).one()
            oldest, newest = (int(v or 0) for v in bounds)
            low = max(newest - START_LOOKBACK, oldest - 1, 0)
            ids = conn.execute(select(changes.c.id).where(changes.c.id > low).order_by(changes.c.id))
            expected = low + 1
            for (change_id,) in ids:
                if change_id != expected:
                    return expected - 1  # the last id before the first one missing
                expected += 1
            return newest

    def since(
        self,
        scope: Scope,
        after_id: int,
        *,
        center_id: str | None = None,
        kiosk_id: str | None = None,
        limit: int = 500,
        gaps: Gaps | None = None,
    ) -> tuple[list[Change], int]:
        """Changes after ``after_id`` that the scope may see, and the id to continue from (which moves
        past changes of other centers too, so a quiet center does not rescan a busy one's). With
        ``gaps`` (a live stream's): the id to continue from stops before a missing id (see the module
        doc), and what was handed out already above it is not handed out again."""
        with self.db.read() as conn:
            if gaps is not None:
                # ids below the oldest row were pruned (a day old), not in flight: nothing to wait for
                # (a stream resuming from an id of yesterday would otherwise wait GAP_WAIT_S per window)
                oldest = conn.execute(select(func.min(changes.c.id))).scalar()
                if oldest is not None and after_id < oldest - 1:
                    after_id = int(oldest) - 1
            conditions = [changes.c.id > after_id]
            newest = conn.execute(select(func.max(changes.c.id)).where(*conditions)).scalar()
            if newest is None:
                return [], after_id
            end = min(int(newest), after_id + limit)
            window = [*conditions, changes.c.id <= end]
            conditions = [*window, scope.centers_filter(changes.c.center_id)]
            if center_id:
                conditions.append(changes.c.center_id == center_id)
            if kiosk_id:
                conditions.append(changes.c.kiosk_id == kiosk_id)
            rows = conn.execute(select(changes).where(*conditions).order_by(changes.c.id))
            found = [Change(r.id, r.at, r.center_id, r.kiosk_id, r.topic) for r in rows]
            if gaps is None:
                return found, end
            present = set(conn.execute(select(changes.c.id).where(*window)).scalars())
        upto = gaps.advance(after_id, present, end, time.monotonic())
        return gaps.hand_out(found, upto), upto


class Settings(Part):
    """Small values every process must share (the cookie signing key, the job's watermark)."""

    def get(self, key: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(select(store_settings.c.value).where(store_settings.c.key == key)).scalar()

    def set(self, key: str, value: str) -> None:
        with self.db.write() as conn:
            upsert = self.db.insert(store_settings).values(key=key, value=value)
            conn.execute(
                upsert.on_conflict_do_update(index_elements=[store_settings.c.key], set_={"value": value})
            )

    def delete(self, key: str) -> None:
        with self.db.write() as conn:
            conn.execute(store_settings.delete().where(store_settings.c.key == key))

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """Every key that starts with ``prefix`` (without it) -> its value."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(store_settings.c.key, store_settings.c.value).where(
                    func.substr(store_settings.c.key, 1, len(prefix)) == prefix
                )
            )
            return {row.key[len(prefix):]: row.value for row in rows}

    def get_or_create(self, key: str, make: str) -> str:
        """The stored value, or ``make`` stored now; the first process to write wins for all."""
        with self.db.write() as conn:
            insert_row = self.db.insert(store_settings).values(key=key, value=make)
            conn.execute(insert_row.on_conflict_do_nothing(index_elements=[store_settings.c.key]))
            return str(
                conn.execute(select(store_settings.c.value).where(store_settings.c.key == key)).scalar_one()
            )
