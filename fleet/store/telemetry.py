"""What kiosks report about themselves: status (birth, stop, Will), heartbeats, device health.

The rule for status (docs/mqtt.md): the status with the highest ``bdseq`` wins, so a late Will of an
old connection cannot mark a live kiosk offline. The center's own verdict 'silent' (no heartbeat for
3 x heartbeat_s) is taken back by the next heartbeat of the same connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from common.errors import ConflictError, MotcuaError, NotFoundError
from fleet.store.base import Part, log_changes, update_rows
from fleet.store.db import Database
from fleet.store.models import (
    DeviceChange,
    HealthHour,
    HealthOutcome,
    HealthReport,
    StatusChange,
    StatusOutcome,
    StatusReport,
)
from fleet.store.partitions import Partitions
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
#: ``db.batch_memo()`` key: kiosk id -> its center id (None: not in the registry), locked by the batch
_LOCKED_KIOSKS = "telemetry.locked_kiosks"
SILENCE_FACTOR = 3  # offline after 3 missed heartbeats


def status_wins(
    cur_state: str,
    cur_reason: str | None,
    cur_bdseq: int | None,
    new_state: str,
    new_bdseq: int | None,
    new_reason: str | None = None,
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
    if cur_reason == "heartbeat" and new_state == "online" and new_reason == "birth":
        # the connection's heartbeat (QoS 0) overtook its birth (QoS 1): the birth still brings the
        # versions and hardware of that connection
        return True
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


@dataclass(frozen=True)
class HealthInsert:
    """One heartbeat for ``record_healths``: the ids from the topic, the report, when it arrived."""

    center_id: str
    kiosk_id: str
    report: HealthReport
    received_at: datetime | None = None


@dataclass(frozen=True)
class StatusInsert:
    """One ``status/1`` for ``record_statuses``: the ids from the topic, the report, when it arrived."""

    center_id: str
    kiosk_id: str
    report: StatusReport
    received_at: datetime | None = None


@dataclass(frozen=True)
class _Device:
    state: str
    detail: dict[str, Any] | None
    since: datetime
    updated_at: datetime


class _KioskRow:
    """A kiosk's row as the batch goes: the state a later heartbeat of the same batch must see."""

    def __init__(self, row: Any) -> None:
        self.id: str = row.id
        self.center_id: str = row.center_id
        self.state: str = row.state
        self.state_reason: str | None = row.state_reason
        self.bdseq: int | None = row.bdseq
        self.heartbeat_s: int = row.heartbeat_s


class _StatusWrites:
    """What a run's applied statuses change, written by a few statements at the end of the run
    (``Telemetry._flush_statuses``) instead of ~6 per status: the kiosks' rows (the values of a kiosk's
    statuses merged in order: a later one's columns win, as sequential updates would), the device
    states births report (merged over the stored devices, in order), the change log."""

    def __init__(self) -> None:
        self.kiosks: dict[str, dict[str, Any]] = {}
        self.births: list[tuple[str, dict[str, str], datetime]] = []  # (kiosk, device states, received)
        self.logged: list[tuple[str, str | None, str]] = []


def _merge_birth_devices(current: dict[str, _Device], states: dict[str, str], now: datetime) -> None:
    """A birth names devices and their states only: each one's detail is kept, its ``since`` moves only
    when its state changes, and devices it does not name stay (``_apply_devices(merge=True)``)."""
    for name, state in sorted(states.items()):
        old = current.get(name)
        if old is None:
            current[name] = _Device(state, None, now, now)
        else:
            current[name] = _Device(state, old.detail, old.since if old.state == state else now, now)


def _sample(kiosk_id: str, report: HealthReport, received: datetime) -> dict[str, Any]:
    return {
        "kiosk_id": kiosk_id,
        "at": report.at,
        "received_at": received,
        "cpu_percent": report.cpu_percent,
        "memory_used_percent": report.memory_used_percent,
        "disk_used_percent": report.disk_used_percent,
        "temperature_c": report.temperature_c,
        "outbox_pending": report.outbox_pending,
        "app_up": report.app_up,
    }


def _merge_devices(
    current: dict[str, _Device], reported: dict[str, dict[str, Any]], now: datetime
) -> list[DeviceChange]:
    """A heartbeat lists every device (one that is missing is gone from the kiosk): ``current`` becomes
    what it reports; the changes of state, as ``_apply_devices`` reports them."""
    changes: list[DeviceChange] = []
    for name, info in sorted(reported.items()):
        state = str(info.get("state"))
        detail = {k: v for k, v in info.items() if k != "state"} or None
        old = current.get(name)
        since = old.since if old is not None and old.state == state else now
        current[name] = _Device(state, detail, since, now)
        if old is None or old.state != state:
            changes.append(DeviceChange(name, old.state if old else None, state))
    for name in set(current) - set(reported):
        del current[name]
    return changes


class Telemetry(Part):
    def __init__(self, db: Database, health_partitions: Partitions) -> None:
        super().__init__(db)
        self.health_partitions = health_partitions  # health_samples' days (PostgreSQL)

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
        if self.db.is_postgres:  # NO KEY UPDATE: inserts of the kiosk's events (foreign key) go on
            query = query.with_for_update(key_share=True)
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
        those in the registry. Kiosks the batch locked up front (``lock_kiosks``) are not asked again."""
        return self._centers_of(conn, kiosk_ids, lock=True)

    def kiosk_centers(self, conn: Connection, kiosk_ids: set[str]) -> dict[str, str]:
        """Kiosk id -> center id of those in the registry, read without locking them (what the batch
        locked up front answers from its memo)."""
        return self._centers_of(conn, kiosk_ids, lock=False)

    def _centers_of(self, conn: Connection, kiosk_ids: set[str], *, lock: bool) -> dict[str, str]:
        memo = self.db.batch_memo()
        held: dict[str, str | None] | None = memo.get(_LOCKED_KIOSKS) if memo is not None else None
        if held is not None and kiosk_ids <= held.keys():
            return {k: owner for k in kiosk_ids if (owner := held[k]) is not None}
        ordered = sorted(kiosk_ids)
        query = select(kiosks.c.id, kiosks.c.center_id).order_by(kiosks.c.id)
        if self.db.is_postgres:  # one array parameter: an IN list of hundreds of ids is compiled each time
            query = query.where(kiosks.c.id == any_(bindparam("ids", type_=ARRAY(Text))))
            if lock:
                # NO KEY UPDATE: another worker's inserts of these kiosks' events (their foreign key's
                # KEY SHARE lock) need not wait for this transaction (``Events.claim_events``)
                query = query.with_for_update(key_share=True)
            rows = conn.execute(query, {"ids": ordered})
        else:
            rows = conn.execute(query.where(kiosks.c.id.in_(ordered)))
        # fetched at once: iterating a result fetches row by row (psycopg's fetchone per kiosk); 600
        # kiosks locked: 4.7 -> 3.0 ms of CPU, the same wall time
        return {kiosk: center for kiosk, center in rows.all()}

    def lock_kiosks(self, kiosk_ids: set[str]) -> None:
        """Inside a ``db.batch()``: lock every kiosk the batch will touch up front, in id order; later
        row locks of the same kiosks in the batch are then already held (no deadlock between workers),
        and ``_lock_kiosks`` of these kiosks answers from what this read found (the rows stay locked,
        so their center cannot change, until the batch ends)."""
        if kiosk_ids and self.db.is_postgres:
            with self.db.write() as conn:
                owners = self._lock_kiosks(conn, kiosk_ids)
            # remembered only now: locks taken in a savepoint that is rolled back are released with it
            memo = self.db.batch_memo()
            if memo is not None:
                held = memo.setdefault(_LOCKED_KIOSKS, {})
                held.update(dict.fromkeys(kiosk_ids))
                held.update(owners)

    def record_status(
        self, center_id: str, kiosk_id: str, report: StatusReport, received_at: datetime | None = None
    ) -> StatusOutcome:
        """Store a ``status/1`` (every one goes to the history; only a winner changes the kiosk)."""
        received = received_at or self.db.now()
        with self.db.write() as conn:
            row = self._lock_kiosk(conn, center_id, kiosk_id)
            return self._apply_status(conn, row, report, received, always_log=True)

    def record_statuses(self, items: Sequence[StatusInsert]) -> list[StatusOutcome | MotcuaError]:
        """Many ``status/1`` in one write, in the order given (the ingest's batch), each applied as
        ``record_status`` does, but the kiosks' rows read (and locked) once and the history written by one
        statement at the end: a broker hands every worker all retained statuses at each connect, ~6
        statements each one by one. Per item: its outcome, or the error that refuses it."""
        if not items:
            return []
        now = self.db.now()
        results: list[StatusOutcome | MotcuaError] = []
        writes = _StatusWrites()
        with self.db.write() as conn:
            ids = sorted({item.kiosk_id for item in items})
            rows = {r.id: _KioskRow(r) for r in conn.execute(*self._kiosk_query(ids))}
            history: list[dict[str, Any]] = []
            for item in items:
                row = rows.get(item.kiosk_id)
                if row is None:
                    results.append(NotFoundError(f"kiosk {item.kiosk_id!r} is not in the registry"))
                    continue
                if row.center_id != item.center_id:
                    results.append(ConflictError(
                        f"kiosk {item.kiosk_id!r} belongs to center {row.center_id!r}, not {item.center_id!r}"
                    ))
                    continue
                report = item.report
                outcome = self._apply_status(
                    conn, row, report, item.received_at or now, always_log=True, history=history,
                    writes=writes,
                )
                if outcome.applied:  # a later status of the same kiosk in this run compares with this one
                    row.state, row.state_reason = report.state, report.reason
                    row.bdseq = report.bdseq if report.bdseq is not None else row.bdseq
                results.append(outcome)
            if history:
                conn.execute(insert(kiosk_status), history)
            self._flush_statuses(conn, writes)
        return results

    def _flush_statuses(self, conn: Connection, writes: _StatusWrites) -> None:
        """A run's applied statuses: the kiosks' rows by one statement per set of columns (a burst of
        births: one), the births' devices read and written once, the change log once."""
        update_rows(conn, kiosks, writes.kiosks)
        if writes.births:
            stored = self._devices_of(conn, sorted({kiosk for kiosk, _, _ in writes.births}))
            devices = {k: dict(v) for k, v in stored.items()}
            for kiosk_id, states, received in writes.births:
                _merge_birth_devices(devices[kiosk_id], states, received)
            self._write_devices(conn, stored, devices)
        log_changes(conn, self.db.now(), writes.logged)

    def _apply_status(
        self,
        conn: Connection,
        row: Any,
        report: StatusReport,
        received: datetime,
        *,
        always_log: bool,
        history: list[dict[str, Any]] | None = None,
        writes: _StatusWrites | None = None,
    ) -> StatusOutcome:
        """``history``: where the history row goes, for the caller to insert (else inserted here);
        ``writes``: where the kiosk's new values, its birth's devices and the change go, for the caller
        to write (``_flush_statuses``; else written here)."""
        wins = status_wins(row.state, row.state_reason, row.bdseq, report.state, report.bdseq, report.reason)
        changed = wins and report.state != row.state
        if always_log or wins:
            logged = {
                "kiosk_id": row.id,
                "state": report.state,
                "reason": report.reason,
                "bdseq": report.bdseq,
                "boot": report.boot,
                "at": report.at,
                "received_at": received,
                "applied": wins,
            }
            if history is not None:
                history.append(logged)
            else:
                conn.execute(insert(kiosk_status).values(**logged))
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
        reported = (report.hardware or {}).get("devices") or {} if report.reason == "birth" else {}
        named = {name: state for name, state in reported.items() if isinstance(state, str)}
        if writes is not None:
            writes.kiosks.setdefault(row.id, {}).update(values)
            if named:
                writes.births.append((row.id, named, received))
            writes.logged.append((row.center_id, row.id, "kiosk"))
            return StatusOutcome(True, changed, row.state, report.state)
        conn.execute(update(kiosks).where(kiosks.c.id == row.id).values(**values))
        if named:
            self._apply_devices(conn, row.id, {name: {"state": s} for name, s in named.items()}, received,
                                merge=True)
        log_changes(conn, received, [(row.center_id, row.id, "kiosk")])
        return StatusOutcome(True, changed, row.state, report.state)

    def record_health(
        self, center_id: str, kiosk_id: str, report: HealthReport, received_at: datetime | None = None
    ) -> HealthOutcome:
        """Store a heartbeat: a sample, the latest payload, each device's state; liveness."""
        outcome = self.record_healths([HealthInsert(center_id, kiosk_id, report, received_at)])[0]
        if isinstance(outcome, MotcuaError):
            raise outcome
        return outcome

    def record_healths(self, items: Sequence[HealthInsert]) -> list[HealthOutcome | MotcuaError]:
        """Many heartbeats in one transaction, in the order given (the ingest's batch), each applied as
        ``record_health`` always did (a sample; for the current connection the latest payload, the
        devices, liveness, a 'silent' kiosk back online), but read once and written once per table:
        samples, latest payloads, devices and liveness are multi-row statements at the end. Per item:
        its outcome, or the error that refuses it (unknown kiosk, another center's kiosk)."""
        if not items:
            return []
        now = self.db.now()
        # the samples' days partitioned before our transaction locks anything (the ingest did it already
        # for its batch, before the batch's; then this is a set lookup)
        self.health_partitions.ensure_covering(item.received_at or now for item in items)
        results: list[HealthOutcome | MotcuaError] = []
        with self.db.write() as conn:
            ids = sorted({item.kiosk_id for item in items})
            rows = {r.id: _KioskRow(r) for r in conn.execute(*self._kiosk_query(ids))}
            stored = self._devices_of(conn, [k for k in ids if k in rows])
            devices = {k: dict(v) for k, v in stored.items()}
            samples: list[dict[str, Any]] = []
            latest: dict[str, dict[str, Any]] = {}
            seen: dict[str, dict[str, Any]] = {}
            logged: list[tuple[str, str | None, str]] = []
            for item in items:
                row, report = rows.get(item.kiosk_id), item.report
                received = item.received_at or now
                if row is None:
                    results.append(NotFoundError(f"kiosk {item.kiosk_id!r} is not in the registry"))
                    continue
                if row.center_id != item.center_id:
                    results.append(ConflictError(
                        f"kiosk {item.kiosk_id!r} belongs to center {row.center_id!r}, not {item.center_id!r}"
                    ))
                    continue
                samples.append(_sample(item.kiosk_id, report, received))
                if report.bdseq is not None and row.bdseq is not None and report.bdseq < row.bdseq:
                    # a heartbeat of an older connection, delivered late: a sample, nothing more
                    results.append(HealthOutcome((), None, row.state, row.bdseq))
                    continue
                latest[row.id] = {
                    "kiosk_id": row.id, "at": report.at, "received_at": received, "bdseq": report.bdseq,
                    "payload": report.payload,
                }
                changes = _merge_devices(devices.setdefault(row.id, {}), report.devices, received)
                status = None
                if row.state != "online" or (report.bdseq is not None and report.bdseq != row.bdseq):
                    back = StatusReport("online", "heartbeat", report.bdseq)
                    outcome = self._apply_status(conn, row, back, received, always_log=False)
                    if outcome.applied:
                        status = outcome
                        row.state, row.state_reason = "online", "heartbeat"
                        row.bdseq = report.bdseq if report.bdseq is not None else row.bdseq
                if row.state == "online":
                    seen[row.id] = {
                        "last_seen": received,
                        "offline_after": received + timedelta(seconds=SILENCE_FACTOR * row.heartbeat_s),
                    }
                if changes and status is None:
                    logged.append((row.center_id, row.id, "kiosk"))
                results.append(HealthOutcome(tuple(changes), status, row.state, row.bdseq))
            self._write_healths(conn, samples, latest, stored, devices, seen)
            log_changes(conn, now, logged)
        return results

    def _kiosk_query(self, kiosk_ids: Sequence[str]) -> tuple[Any, dict[str, Any]]:
        """The kiosks' rows a batch of statuses or heartbeats works on (locked on PostgreSQL, where the
        ids go as one array: an IN list of hundreds of ids is compiled each time); (query, parameters)."""
        query = select(
            kiosks.c.id,
            kiosks.c.center_id,
            kiosks.c.state,
            kiosks.c.state_reason,
            kiosks.c.bdseq,
            kiosks.c.heartbeat_s,
        )
        if self.db.is_postgres:
            query = query.where(kiosks.c.id == any_(bindparam("ids", type_=ARRAY(Text))))
            # NO KEY UPDATE as every kiosk lock: a FOR UPDATE here upgraded the batch's own lock and
            # waited for another worker's event inserts (KEY SHARE), which waited for this batch:
            # a deadlock (seen in the benchmark)
            return query.order_by(kiosks.c.id).with_for_update(key_share=True), {"ids": list(kiosk_ids)}
        return query.where(kiosks.c.id.in_(list(kiosk_ids))).order_by(kiosks.c.id), {}

    def _devices_of(self, conn: Connection, kiosk_ids: Sequence[str]) -> dict[str, dict[str, _Device]]:
        found: dict[str, dict[str, _Device]] = {k: {} for k in kiosk_ids}
        if kiosk_ids:
            d = device_health.c
            query = select(d.kiosk_id, d.device, d.state, d.detail, d.since, d.updated_at).where(
                d.kiosk_id.in_(list(kiosk_ids))
            )
            for r in conn.execute(query):
                found[r.kiosk_id][r.device] = _Device(r.state, r.detail, r.since, r.updated_at)
        return found

    def _write_healths(
        self,
        conn: Connection,
        samples: list[dict[str, Any]],
        latest: dict[str, dict[str, Any]],
        stored: dict[str, dict[str, _Device]],
        devices: dict[str, dict[str, _Device]],
        seen: dict[str, dict[str, Any]],
    ) -> None:
        """The batch's heartbeats, one statement per table (executed for many rows)."""
        if samples:
            conn.execute(insert(health_samples), samples)
        if latest:
            upsert = self.db.insert(kiosk_health)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[kiosk_health.c.kiosk_id],
                    set_={name: upsert.excluded[name] for name in ("at", "received_at", "bdseq", "payload")},
                ),
                list(latest.values()),
            )
        self._write_devices(conn, stored, devices)
        update_rows(conn, kiosks, seen)

    def _write_devices(
        self, conn: Connection, stored: dict[str, dict[str, _Device]], devices: dict[str, dict[str, _Device]]
    ) -> None:
        """The kiosks' devices as they are now (``devices``) against what the store had (``stored``):
        new, changed and gone rows, one statement each (executed for many rows)."""
        d = device_health.c
        new_rows: list[dict[str, Any]] = []
        changed_rows: list[dict[str, Any]] = []
        gone: list[tuple[str, str]] = []
        for kiosk_id, now_devices in devices.items():
            before = stored.get(kiosk_id, {})
            for name, dev in now_devices.items():
                values = {"k": kiosk_id, "dev": name, "state": dev.state, "detail": dev.detail,
                          "since": dev.since, "updated": dev.updated_at}
                if name not in before:
                    new_rows.append(values)
                elif before[name] != dev:
                    changed_rows.append(values)
            gone.extend((kiosk_id, name) for name in before if name not in now_devices)
        if new_rows:
            conn.execute(
                insert(device_health).values(
                    kiosk_id=bindparam("k"), device=bindparam("dev"), state=bindparam("state"),
                    detail=bindparam("detail"), since=bindparam("since"), updated_at=bindparam("updated"),
                ),
                new_rows,
            )
        if changed_rows:
            conn.execute(
                update(device_health)
                .where(d.kiosk_id == bindparam("k"), d.device == bindparam("dev"))
                .values(state=bindparam("state"), detail=bindparam("detail"), since=bindparam("since"),
                        updated_at=bindparam("updated")),
                changed_rows,
            )
        for kiosk_id, name in gone:
            conn.execute(device_health.delete().where(d.kiosk_id == kiosk_id, d.device == name))

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
