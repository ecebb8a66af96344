"""What the MQTT ingest keeps about itself: each worker's counters, what it refused, the leases that
let one process at a time publish and notify, and the set queries its periodic sweeps run.

Everything is in the store, not in a process's memory: a worker on another machine, the status page
and ``fleet ingest status`` all read the same rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update

from fleet.store.base import Part
from fleet.store.models import Refusal, WorkerStatus
from fleet.store.schema import alarms, event_gaps, ingest_refusals, ingest_workers, kiosks, leases
from fleet.store.scope import Scope


def _refusal_from(row: Any) -> Refusal:
    m = row._mapping
    return Refusal(
        m["id"],
        m["center_id"],
        m["kiosk_id"],
        m["reason"],
        m["count"],
        m["first_at"],
        m["last_at"],
        m["detail"],
    )


class Ingest(Part):
    # --- workers ---

    def worker_beat(
        self,
        worker_id: str,
        *,
        host: str,
        pid: int,
        started_at: datetime,
        stats: dict[str, Any],
        stopped: bool = False,
    ) -> None:
        now = self.db.now()
        values = {
            "host": host[:200],
            "pid": pid,
            "started_at": started_at,
            "updated_at": now,
            "stopped_at": now if stopped else None,
            "stats": stats,
        }
        with self.db.write() as conn:
            upsert = self.db.insert(ingest_workers).values(id=worker_id[:128], **values)
            conn.execute(upsert.on_conflict_do_update(index_elements=[ingest_workers.c.id], set_=values))

    def workers(self, *, since: datetime | None = None) -> list[WorkerStatus]:
        """Workers that reported since ``since`` (default: the last day), newest first."""
        cutoff = since or self.db.now() - timedelta(days=1)
        with self.db.read() as conn:
            rows = conn.execute(
                select(ingest_workers)
                .where(ingest_workers.c.updated_at >= cutoff)
                .order_by(ingest_workers.c.id)
            )
            return [
                WorkerStatus(r.id, r.host, r.pid, r.started_at, r.updated_at, r.stopped_at, r.stats)
                for r in rows
            ]

    # --- refusals ---

    def refuse(
        self,
        center_id: str,
        kiosk_id: str,
        reason: str,
        *,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Count one refused message; returns the count so far (1: the first time, worth a log line)."""
        now = at or self.db.now()
        key = {"center_id": center_id[:64], "kiosk_id": kiosk_id[:64], "reason": reason[:32]}
        text = detail[:500] if detail else None
        with self.db.write() as conn:
            upsert = self.db.insert(ingest_refusals).values(
                **key, count=1, first_at=now, last_at=now, detail=text
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[
                        ingest_refusals.c.center_id,
                        ingest_refusals.c.kiosk_id,
                        ingest_refusals.c.reason,
                    ],
                    set_={"count": ingest_refusals.c.count + 1, "last_at": now, "detail": text},
                )
            )
            return int(
                conn.execute(
                    select(ingest_refusals.c.count).where(
                        *(ingest_refusals.c[k] == v for k, v in key.items())
                    )
                ).scalar_one()
            )

    def refusals(self, scope: Scope, *, limit: int = 200) -> list[Refusal]:
        """Refusals a scope may see: those naming one of its centers in the topic, or one of its kiosks
        (a kiosk of ours that published under another center's id)."""
        r = ingest_refusals.c
        condition = or_(
            scope.centers_filter(r.center_id),
            r.kiosk_id.in_(select(kiosks.c.id).where(scope.centers_filter(kiosks.c.center_id))),
        )
        with self.db.read() as conn:
            rows = conn.execute(
                select(ingest_refusals).where(condition).order_by(r.last_at.desc(), r.id.desc()).limit(limit)
            )
            return [_refusal_from(row) for row in rows]

    # --- leases ---

    def acquire_lease(self, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None) -> bool:
        """Take or renew the lease ``name`` for ``ttl``; False while another holder's lease runs."""
        at = now or self.db.now()
        with self.db.write() as conn:
            conn.execute(
                self.db.insert(leases)
                .values(name=name, holder=holder, expires_at=at + ttl)
                .on_conflict_do_nothing(index_elements=[leases.c.name])
            )
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at < at))
                .values(holder=holder, expires_at=at + ttl)
            ).rowcount
            return bool(taken)

    def release_lease(self, name: str, holder: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
            ).first()
            return (row.holder, row.expires_at) if row else None

    # --- what the sweeps compare ---

    def offline_mismatches(self) -> tuple[list[tuple[str, str | None]], list[str]]:
        """Kiosks offline without an active ``offline`` alarm (id, reason), and kiosks online that still
        have one: the sweep that keeps alarms true to the registry whatever a crash interrupted."""
        k, a = kiosks.c, alarms.c
        has_alarm = exists().where(a.kiosk_id == k.id, a.type == "offline", a.active)
        with self.db.read() as conn:
            to_raise = [
                (r.id, r.state_reason)
                for r in conn.execute(select(k.id, k.state_reason).where(k.state == "offline", ~has_alarm))
            ]
            to_clear = [r.id for r in conn.execute(select(k.id).where(k.state == "online", has_alarm))]
        return to_raise, to_clear

    def open_gap_kiosks(self, older_than: datetime) -> dict[str, int]:
        """Kiosks with gaps open since before ``older_than``: missing events each (a gap opened by two
        workers storing seq n+1 before n closes within milliseconds and must not raise an alarm)."""
        g = event_gaps.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(g.kiosk_id, func.sum(g.last_seq - g.first_seq + 1).label("n"))
                .where(g.closed_at.is_(None), g.detected_at < older_than)
                .group_by(g.kiosk_id)
            )
            return {r.kiosk_id: int(r.n) for r in rows}

    def kiosks_with_open_gaps(self, kiosk_ids: list[str]) -> set[str]:
        if not kiosk_ids:
            return set()
        g = event_gaps.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(g.kiosk_id).where(and_(g.closed_at.is_(None), g.kiosk_id.in_(kiosk_ids))).distinct()
            )
            return {r.kiosk_id for r in rows}
