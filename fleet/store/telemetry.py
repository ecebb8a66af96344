"""What kiosks report about themselves: status (birth, stop, Will), heartbeats, device health.

The rule for status (docs/mqtt.md): the status with the highest ``bdseq`` wins, so a late Will of an
old connection cannot mark a live kiosk offline. The center's own verdict 'silent' (no heartbeat for
3 x heartbeat_s) is taken back by the next heartbeat of the same connection.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from common.errors import ConflictError, NotFoundError
from fleet.store.base import Part, log_changes
from fleet.store.models import (
    DeviceChange,
    HealthHour,
    HealthOutcome,
    HealthReport,
    StatusChange,
    StatusOutcome,
    StatusReport,
)
from fleet.store.schema import (
    device_health,
    health_hourly,
    health_samples,
    kiosk_health,
    kiosk_status,
    kiosks,
)
from fleet.store.scope import Scope

SILENT = "silent"
SILENCE_FACTOR = 3  # offline after 3 missed heartbeats


def status_wins(
    cur_state: str, cur_reason: str | None, cur_bdseq: int | None, new_state: str, new_bdseq: int | None
) -> bool:
    """Does a status report replace the stored one? (highest bdseq wins; see the module doc)"""
    if cur_bdseq is None:
        return True
    if new_bdseq is None:  # the center's own verdict about the current connection
        new_bdseq = cur_bdseq
    if new_bdseq != cur_bdseq:
        return new_bdseq > cur_bdseq
    if cur_state == "online" and new_state == "offline":
        return True  # the connection of that bdseq ended (clean stop or Will)
    # the same connection is alive after all: a heartbeat after our 'silent' verdict
    return cur_state == "offline" and cur_reason == SILENT and new_state == "online"


def _status_from(row: Any) -> StatusChange:
    m = row._mapping
    return StatusChange(
        m["id"],
        m["kiosk_id"],
        m["state"],
        m["reason"],
        m["bdseq"],
        m["boot"],
        m["at"],
        m["received_at"],
        m["applied"],
    )


class Telemetry(Part):
    def _lock_kiosk(self, conn: Connection, center_id: str, kiosk_id: str) -> Any:
        """The kiosk's row, locked for this transaction; refuses kiosks that are not ours."""
        query = select(
            kiosks.c.id,
            kiosks.c.center_id,
            kiosks.c.state,
            kiosks.c.state_reason,
            kiosks.c.bdseq,
            kiosks.c.heartbeat_s,
        ).where(kiosks.c.id == kiosk_id)
        if self.db.is_postgres:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"kiosk {kiosk_id!r} is not in the registry")
        if row.center_id != center_id:
            # the certificate vouches for the kiosk id, not the center (docs/mqtt.md, access control)
            raise ConflictError(f"kiosk {kiosk_id!r} belongs to center {row.center_id!r}, not {center_id!r}")
        return row

    def _lock_kiosks(self, conn: Connection, kiosk_ids: set[str]) -> dict[str, str]:
        """Rows of several kiosks locked for this transaction, in id order (so that two transactions
        locking overlapping sets wait for each other instead of deadlocking); kiosk id -> center id of
        those in the registry."""
        query = select(kiosks.c.id, kiosks.c.center_id).where(kiosks.c.id.in_(sorted(kiosk_ids)))
        query = query.order_by(kiosks.c.id)
        if self.db.is_postgres:
            query = query.with_for_update()
        return {row.id: row.center_id for row in conn.execute(query)}

    def lock_kiosks(self, kiosk_ids: set[str]) -> None:
        """Inside a ``db.batch()``: lock every kiosk the batch will touch up front, in id order; later
        row locks of the same kiosks in the batch are then already held (no deadlock between workers)."""
        if kiosk_ids and self.db.is_postgres:
            with self.db.write() as conn:
                self._lock_kiosks(conn, kiosk_ids)

    def record_status(
        self, center_id: str, kiosk_id: str, report: StatusReport, received_at: datetime | None = None
    ) -> StatusOutcome:
        """Store a ``status/1`` (every one goes to the history; only a winner changes the kiosk)."""
        received = received_at or self.db.now()
        with self.db.write() as conn:
            row = self._lock_kiosk(conn, center_id, kiosk_id)
            return self._apply_status(conn, row, report, received, always_log=True)

    def _apply_status(
        self, conn: Connection, row: Any, report: StatusReport, received: datetime, *, always_log: bool
    ) -> StatusOutcome:
        wins = status_wins(row.state, row.state_reason, row.bdseq, report.state, report.bdseq)
        changed = wins and report.state != row.state
        if always_log or wins:
            conn.execute(
                insert(kiosk_status).values(
                    kiosk_id=row.id,
                    state=report.state,
                    reason=report.reason,
                    bdseq=report.bdseq,
                    boot=report.boot,
                    at=report.at,
                    received_at=received,
                    applied=wins,
                )
            )
        if not wins:
            return StatusOutcome(False, False, row.state, row.state)
        values: dict[str, Any] = {"state": report.state, "state_reason": report.reason}
        if report.bdseq is not None:
            values["bdseq"] = report.bdseq
        if report.boot is not None:
            values["boot"] = report.boot
        if changed:
            values["state_since"] = received
        if report.state == "online":
            values["last_seen"] = received
            values["offline_after"] = received + timedelta(seconds=SILENCE_FACTOR * row.heartbeat_s)
        else:
            values["offline_after"] = None
        if report.reason == "birth":
            values.update(
                agent_version=report.agent_version, app_version=report.app_version, hardware=report.hardware
            )
            versions = report.config_versions or {}
            values.update(
                config_center_version=versions.get("center"), config_kiosk_version=versions.get("kiosk")
            )
        conn.execute(update(kiosks).where(kiosks.c.id == row.id).values(**values))
        if report.reason == "birth" and report.hardware:
            states = report.hardware.get("devices") or {}
            self._apply_devices(
                conn,
                row.id,
                {name: {"state": s} for name, s in states.items() if isinstance(s, str)},
                received,
                merge=True,
            )
        log_changes(conn, received, [(row.center_id, row.id, "kiosk")])
        return StatusOutcome(True, changed, row.state, report.state)

    def record_health(
        self, center_id: str, kiosk_id: str, report: HealthReport, received_at: datetime | None = None
    ) -> HealthOutcome:
        """Store a heartbeat: a sample, the latest payload, each device's state; liveness."""
        received = received_at or self.db.now()
        with self.db.write() as conn:
            row = self._lock_kiosk(conn, center_id, kiosk_id)
            conn.execute(
                insert(health_samples).values(
                    kiosk_id=kiosk_id,
                    at=report.at,
                    received_at=received,
                    cpu_percent=report.cpu_percent,
                    memory_used_percent=report.memory_used_percent,
                    disk_used_percent=report.disk_used_percent,
                    temperature_c=report.temperature_c,
                    outbox_pending=report.outbox_pending,
                    app_up=report.app_up,
                )
            )
            stale = report.bdseq is not None and row.bdseq is not None and report.bdseq < row.bdseq
            if stale:  # a heartbeat of an older connection, delivered late: a sample, nothing more
                return HealthOutcome((), None)
            upsert = self.db.insert(kiosk_health).values(
                kiosk_id=kiosk_id,
                at=report.at,
                received_at=received,
                bdseq=report.bdseq,
                payload=report.payload,
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[kiosk_health.c.kiosk_id],
                    set_={
                        "at": report.at,
                        "received_at": received,
                        "bdseq": report.bdseq,
                        "payload": report.payload,
                    },
                )
            )
            changes = self._apply_devices(conn, kiosk_id, report.devices, received, merge=False)
            status = None
            if row.state != "online" or (report.bdseq is not None and report.bdseq != row.bdseq):
                outcome = self._apply_status(
                    conn, row, StatusReport("online", "heartbeat", report.bdseq), received, always_log=False
                )
                status = outcome if outcome.applied else None
            if row.state == "online" or status is not None:
                conn.execute(
                    update(kiosks)
                    .where(kiosks.c.id == kiosk_id)
                    .values(
                        last_seen=received,
                        offline_after=received + timedelta(seconds=SILENCE_FACTOR * row.heartbeat_s),
                    )
                )
            if changes and status is None:
                log_changes(conn, received, [(center_id, kiosk_id, "kiosk")])
            return HealthOutcome(tuple(changes), status)

    def _apply_devices(
        self,
        conn: Connection,
        kiosk_id: str,
        devices: dict[str, dict[str, Any]],
        now: datetime,
        *,
        merge: bool,
    ) -> list[DeviceChange]:
        current = {
            r.device: r.state
            for r in conn.execute(
                select(device_health.c.device, device_health.c.state).where(
                    device_health.c.kiosk_id == kiosk_id
                )
            )
        }
        changes: list[DeviceChange] = []
        for name, info in sorted(devices.items()):
            state = str(info.get("state"))
            detail = {k: v for k, v in info.items() if k != "state"} or None
            old = current.get(name)
            if old is None:
                conn.execute(
                    insert(device_health).values(
                        kiosk_id=kiosk_id, device=name, state=state, detail=detail, since=now, updated_at=now
                    )
                )
            else:
                values: dict[str, Any] = {"state": state, "updated_at": now}
                if not merge or detail is not None:
                    values["detail"] = detail
                if old != state:
                    values["since"] = now
                conn.execute(
                    update(device_health)
                    .where(device_health.c.kiosk_id == kiosk_id, device_health.c.device == name)
                    .values(**values)
                )
            if old != state:
                changes.append(DeviceChange(name, old, state))
        if not merge:  # a heartbeat lists every device; one that disappeared is gone from the kiosk
            gone = set(current) - set(devices)
            if gone:
                conn.execute(
                    device_health.delete().where(
                        device_health.c.kiosk_id == kiosk_id, device_health.c.device.in_(sorted(gone))
                    )
                )
        return changes

    def mark_silent(self, now: datetime | None = None) -> list[str]:
        """Online kiosks whose heartbeats stopped (3 x heartbeat_s): offline, reason 'silent'."""
        at = now or self.db.now()
        with self.db.write() as conn:
            gone = conn.execute(
                update(kiosks)
                .where(kiosks.c.state == "online", kiosks.c.offline_after < at)
                .values(state="offline", state_reason=SILENT, state_since=at, offline_after=None)
                .returning(kiosks.c.id, kiosks.c.center_id, kiosks.c.bdseq, kiosks.c.boot)
            ).all()
            if gone:
                conn.execute(
                    insert(kiosk_status),
                    [
                        {
                            "kiosk_id": r.id,
                            "state": "offline",
                            "reason": SILENT,
                            "bdseq": r.bdseq,
                            "boot": r.boot,
                            "at": None,
                            "received_at": at,
                            "applied": True,
                        }
                        for r in gone
                    ],
                )
                log_changes(conn, at, [(r.center_id, r.id, "kiosk") for r in gone])
        return sorted(r.id for r in gone)

    def set_heartbeat(self, kiosk_id: str, heartbeat_s: int) -> None:
        """After a pushed ``agent.heartbeat_s``: the silence limit follows the kiosk's own rhythm."""
        with self.db.write() as conn:
            conn.execute(update(kiosks).where(kiosks.c.id == kiosk_id).values(heartbeat_s=heartbeat_s))

    # --- reads for the web ---

    def _visible(self, conn: Connection, scope: Scope, kiosk_id: str) -> None:
        found = conn.execute(
            select(kiosks.c.id).where(kiosks.c.id == kiosk_id, scope.centers_filter(kiosks.c.center_id))
        ).first()
        if found is None:
            raise NotFoundError(f"kiosk {kiosk_id!r} not found")

    def status_history(self, scope: Scope, kiosk_id: str, *, limit: int | None = 100) -> list[StatusChange]:
        query = (
            select(kiosk_status).where(kiosk_status.c.kiosk_id == kiosk_id).order_by(kiosk_status.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            self._visible(conn, scope, kiosk_id)
            return [_status_from(r) for r in conn.execute(query)]

    def latest_health(self, scope: Scope, kiosk_id: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            self._visible(conn, scope, kiosk_id)
            return conn.execute(
                select(kiosk_health.c.payload).where(kiosk_health.c.kiosk_id == kiosk_id)
            ).scalar()

    def health_samples(
        self, scope: Scope, kiosk_id: str, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            self._visible(conn, scope, kiosk_id)
            rows = conn.execute(
                select(health_samples)
                .where(
                    health_samples.c.kiosk_id == kiosk_id,
                    health_samples.c.at >= since,
                    health_samples.c.at < until,
                )
                .order_by(health_samples.c.at)
            )
            return [dict(r._mapping) for r in rows]

    def health_hours(self, scope: Scope, kiosk_id: str, since: datetime, until: datetime) -> list[HealthHour]:
        h = health_hourly.c
        with self.db.read() as conn:
            self._visible(conn, scope, kiosk_id)
            rows = conn.execute(
                select(health_hourly)
                .where(h.kiosk_id == kiosk_id, h.hour >= since, h.hour < until)
                .order_by(h.hour)
            )

            def avg(total: float, n: int) -> float | None:
                return total / n if n else None

            return [
                HealthHour(
                    r.kiosk_id,
                    r.hour,
                    r.samples,
                    avg(r.cpu_sum, r.cpu_n),
                    r.cpu_max,
                    avg(r.memory_sum, r.memory_n),
                    r.memory_max,
                    r.disk_max,
                    avg(r.temperature_sum, r.temperature_n),
                    r.temperature_max,
                    r.outbox_pending_max,
                    r.app_down_samples,
                )
                for r in rows
            ]
