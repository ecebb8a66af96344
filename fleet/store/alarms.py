"""Alarms, ThingsBoard's model: one active alarm per (kiosk, type) with a severity, active/cleared and
acknowledged/not, start and end times, who acknowledged. Cleared alarms stay as history; an active
alarm is reminded about (``due_reminders``) until it clears. A partial unique index enforces "one
active per (kiosk, type)" in the database itself, so two ingest workers cannot both raise it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store.base import Part, log_changes, update_rows
from fleet.store.models import Alarm, Page
from fleet.store.schema import SEVERITIES, alarms, centers, kiosks, users
from fleet.store.scope import Scope

_COLUMNS = (*alarms.c, users.c.username.label("acknowledged_by_name"))
log = logging.getLogger(__name__)
_GONE = "alarm %s of kiosk %r not changed: not in the registry"


@dataclass(frozen=True)
class AlarmChange:
    """One step of bringing a kiosk's alarms in line: raise or update its alarm of ``type`` (a
    ``severity``), or clear it (no severity)."""

    kiosk_id: str
    type: str
    at: datetime
    severity: str | None = None
    device: str | None = None
    detail: dict[str, Any] | None = None


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise ValidationError(f"severity {severity!r}: expected one of {SEVERITIES}")


def _worse(severity: str, than: str) -> bool:
    """A raise worse than what was acknowledged: someone has to look again (the acknowledgement goes)."""
    return SEVERITIES.index(severity) < SEVERITIES.index(than)


def _alarm_from(row: Any) -> Alarm:
    m = row._mapping
    return Alarm(
        id=m["id"],
        center_id=m["center_id"],
        kiosk_id=m["kiosk_id"],
        type=m["type"],
        device=m["device"],
        severity=m["severity"],
        active=m["active"],
        detail=m["detail"],
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        ended_at=m["ended_at"],
        acknowledged_by=m["acknowledged_by"],
        acknowledged_by_name=m["acknowledged_by_name"],
        acknowledged_at=m["acknowledged_at"],
        last_reminded_at=m["last_reminded_at"],
        reminders=m["reminders"],
    )


def _select() -> Any:
    return select(*_COLUMNS).select_from(alarms.outerjoin(users, users.c.id == alarms.c.acknowledged_by))


class Alarms(Part):
    def raise_alarm(
        self,
        kiosk_id: str,
        type: str,
        severity: str,
        *,
        device: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> tuple[Alarm, bool]:
        """Raise (or update) the active alarm of this (kiosk, type); True when it is new."""
        _check_severity(severity)
        now = at or self.db.now()
        with self.db.write() as conn:
            center_id = conn.execute(select(kiosks.c.center_id).where(kiosks.c.id == kiosk_id)).scalar()
            if center_id is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} is not in the registry")
            alarm_id, new = self._raise(
                conn, self._active(conn, kiosk_id, type), center_id, kiosk_id, type, severity,
                device=device, detail=detail, now=now,
            )
            log_changes(conn, now, [(center_id, kiosk_id, "alarm")])
            return self._get(conn, alarm_id), new

    def apply_changes(self, changes: Sequence[AlarmChange]) -> None:
        """Raises and clears of many kiosks (a run of the ingest's batch), in the order given, with the
        effect of ``raise_alarm`` and ``clear_alarm`` one by one, but read once and written by a few
        statements: a broker restart is a Will (an offline alarm raised) and a birth (cleared) per
        kiosk, ~15 statements each one by one. If another process raised one of them meanwhile (the
        unique index of active alarms), they are made one by one instead, that raise skipped (it exists,
        as wanted). A kiosk no longer in the registry is skipped with a warning."""
        if not changes:
            return
        for change in changes:
            if change.severity is not None:
                _check_severity(change.severity)
        try:
            with self.db.write() as conn:  # inside a batch, a savepoint: a conflict undoes only this
                self._apply_together(conn, changes)
            return
        except IntegrityError:
            log.debug("alarms raised concurrently; %d changes made one by one", len(changes))
        for change in changes:
            try:
                if change.severity is None:
                    self.clear_alarm(change.kiosk_id, change.type, at=change.at)
                else:
                    self.raise_alarm(change.kiosk_id, change.type, change.severity, device=change.device,
                                     detail=change.detail, at=change.at)
            except ConflictError:  # another worker raised it this very moment: it exists, as wanted
                log.debug("alarm %s of %s raised concurrently", change.type, change.kiosk_id)
            except NotFoundError:
                log.warning(_GONE, change.type, change.kiosk_id)

    def _apply_together(self, conn: Connection, changes: Sequence[AlarmChange]) -> None:
        kiosk_ids = sorted({c.kiosk_id for c in changes})
        owners = dict(
            conn.execute(select(kiosks.c.id, kiosks.c.center_id).where(kiosks.c.id.in_(kiosk_ids))).all()
        )
        a = alarms.c
        # (kiosk, type) -> the active alarm's row as the changes go; "id" only for rows already stored
        current: dict[tuple[str, str], dict[str, Any]] = {
            (r.kiosk_id, r.type): {"id": r.id, "severity": r.severity}
            for r in conn.execute(select(a.id, a.kiosk_id, a.type, a.severity).where(
                a.kiosk_id.in_(kiosk_ids), a.active
            ))
        }
        changed: dict[int, dict[str, Any]] = {}  # stored alarm id -> the columns the changes set
        new_rows: list[dict[str, Any]] = []
        logged: list[tuple[str, str | None, str]] = []
        for change in changes:
            key = (change.kiosk_id, change.type)
            row = current.get(key)
            center_id = owners.get(change.kiosk_id)
            if center_id is None:  # removed meanwhile: its alarms went with it (one kiosk stops no sweep)
                log.warning(_GONE, change.type, change.kiosk_id)
                continue
            if change.severity is None:
                if row is None:
                    continue
                values: dict[str, Any] = {"active": False, "ended_at": change.at, "updated_at": change.at}
                del current[key]
            elif row is None:
                row = {
                    "center_id": center_id, "kiosk_id": change.kiosk_id, "type": change.type,
                    "device": change.device, "severity": change.severity, "active": True,
                    "detail": change.detail, "started_at": change.at, "updated_at": change.at,
                    "ended_at": None, "acknowledged_by": None, "acknowledged_at": None,
                }
                new_rows.append(row)
                current[key] = row
                values = {}
            else:
                values = {"severity": change.severity, "detail": change.detail, "updated_at": change.at}
                if _worse(change.severity, row["severity"]):
                    values.update(acknowledged_by=None, acknowledged_at=None)
            row.update(values)
            if values and "id" in row:
                changed.setdefault(row["id"], {}).update(values)
            logged.append((center_id, change.kiosk_id, "alarm"))
        # the stored alarms first: one that ended must be inactive before its successor is inserted
        update_rows(conn, alarms, changed)
        if new_rows:
            conn.execute(insert(alarms), new_rows)
        log_changes(conn, max(c.at for c in changes), logged)

    def clear_alarm(self, kiosk_id: str, type: str, *, at: datetime | None = None) -> Alarm | None:
        """End the active alarm of this (kiosk, type), if there is one."""
        now = at or self.db.now()
        with self.db.write() as conn:
            current = self._active(conn, kiosk_id, type)
            if current is None:
                return None
            self._end(conn, current.id, now)
            log_changes(conn, now, [(current.center_id, kiosk_id, "alarm")])
            return self._get(conn, current.id)

    def acknowledge(
        self, scope: Scope, alarm_id: int, user_id: int, *, at: datetime | None = None
    ) -> tuple[Alarm, Alarm]:
        """Mark an alarm seen by a person; returns (before, after) for the audit log."""
        now = at or self.db.now()
        with self.db.write() as conn:
            row = conn.execute(
                _select().where(alarms.c.id == alarm_id, scope.centers_filter(alarms.c.center_id))
            ).first()
            if row is None:
                raise NotFoundError(f"alarm {alarm_id} not found")
            before = _alarm_from(row)
            if before.acknowledged_at is None:
                conn.execute(
                    update(alarms)
                    .where(alarms.c.id == alarm_id)
                    .values(acknowledged_by=user_id, acknowledged_at=now, updated_at=now)
                )
                log_changes(conn, now, [(before.center_id, before.kiosk_id, "alarm")])
            return before, self._get(conn, alarm_id)

    def due_reminders(self, every: timedelta, *, now: datetime | None = None) -> list[Alarm]:
        """Active, unacknowledged alarms not reminded about for ``every`` (ThingsBoard has none, #7898)."""
        at = now or self.db.now()
        limit = at - every
        with self.db.read() as conn:
            rows = conn.execute(
                _select()
                .where(
                    alarms.c.active,
                    alarms.c.acknowledged_at.is_(None),
                    alarms.c.started_at <= limit,
                    or_(alarms.c.last_reminded_at.is_(None), alarms.c.last_reminded_at <= limit),
                )
                .order_by(alarms.c.id)
            )
            return [_alarm_from(r) for r in rows]

    def mark_reminded(self, alarm_id: int, *, at: datetime | None = None) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id)
                .values(last_reminded_at=at or self.db.now(), reminders=alarms.c.reminders + 1)
            )

    def raise_center_alarm(
        self,
        center_id: str,
        type: str,
        severity: str,
        *,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> tuple[Alarm, bool]:
        """An alarm of the center itself (kiosk_id None; e.g. its allocator is offline): one active per
        (center, type), enforced by its own partial unique index."""
        _check_severity(severity)
        now = at or self.db.now()
        with self.db.write() as conn:
            if conn.execute(select(centers.c.id).where(centers.c.id == center_id)).first() is None:
                raise NotFoundError(f"center {center_id!r} is not in the registry")
            alarm_id, new = self._raise(
                conn, self._active_center(conn, center_id, type), center_id, None, type, severity,
                detail=detail, now=now,
            )
            log_changes(conn, now, [(center_id, None, "alarm")])
            return self._get(conn, alarm_id), new

    def clear_center_alarm(self, center_id: str, type: str, *, at: datetime | None = None) -> Alarm | None:
        now = at or self.db.now()
        with self.db.write() as conn:
            current = self._active_center(conn, center_id, type)
            if current is None:
                return None
            self._end(conn, current.id, now)
            log_changes(conn, now, [(center_id, None, "alarm")])
            return self._get(conn, current.id)

    def active_for_kiosk(self, kiosk_id: str) -> list[Alarm]:
        """The kiosk's active alarms (for the ingest's rules, which compare them with what it reports)."""
        with self.db.read() as conn:
            rows = conn.execute(
                _select().where(alarms.c.kiosk_id == kiosk_id, alarms.c.active).order_by(alarms.c.id)
            )
            return [_alarm_from(r) for r in rows]

    def active_for_kiosks(self, kiosk_ids: Sequence[str]) -> dict[str, list[Alarm]]:
        """``active_for_kiosk`` of several kiosks in one query (the ingest's batches)."""
        found: dict[str, list[Alarm]] = {k: [] for k in kiosk_ids}
        if not kiosk_ids:
            return found
        with self.db.read() as conn:
            rows = conn.execute(
                _select().where(alarms.c.kiosk_id.in_(list(kiosk_ids)), alarms.c.active).order_by(alarms.c.id)
            )
            for r in rows:
                alarm = _alarm_from(r)
                found[alarm.kiosk_id or ""].append(alarm)
        return found

    def active_of_type(self, type: str) -> list[Alarm]:
        with self.db.read() as conn:
            rows = conn.execute(_select().where(alarms.c.type == type, alarms.c.active).order_by(alarms.c.id))
            return [_alarm_from(r) for r in rows]

    def _raise(
        self,
        conn: Connection,
        current: Alarm | None,
        center_id: str,
        kiosk_id: str | None,
        type: str,
        severity: str,
        *,
        device: str | None = None,
        detail: dict[str, Any] | None,
        now: datetime,
    ) -> tuple[int, bool]:
        """Raise the alarm of ``type`` of a kiosk (or of the center itself: ``kiosk_id`` None) whose
        active one is ``current``: that one updated (its acknowledgement dropped when the severity got
        worse), or a new one inserted. Returns (its id, whether it is new)."""
        if current is not None:
            values: dict[str, Any] = {"severity": severity, "detail": detail, "updated_at": now}
            if _worse(severity, current.severity):
                values.update(acknowledged_by=None, acknowledged_at=None)
            conn.execute(update(alarms).where(alarms.c.id == current.id).values(**values))
            return current.id, False
        try:
            with conn.begin_nested():
                alarm_id = conn.execute(
                    insert(alarms)
                    .values(
                        center_id=center_id,
                        kiosk_id=kiosk_id,
                        type=type,
                        device=device,
                        severity=severity,
                        active=True,
                        detail=detail,
                        started_at=now,
                        updated_at=now,
                    )
                    .returning(alarms.c.id)
                ).scalar_one()
        except IntegrityError as exc:  # pragma: no cover - another worker raised it at the same moment
            owner = kiosk_id if kiosk_id is not None else center_id
            raise ConflictError(f"alarm {type} of {owner} was raised concurrently") from exc
        return alarm_id, True

    def _end(self, conn: Connection, alarm_id: int, now: datetime) -> None:
        """Clear an active alarm (kept as history)."""
        conn.execute(
            update(alarms).where(alarms.c.id == alarm_id).values(active=False, ended_at=now, updated_at=now)
        )

    def _active_center(self, conn: Connection, center_id: str, type: str) -> Alarm | None:
        query = _select().where(
            alarms.c.center_id == center_id,
            alarms.c.kiosk_id.is_(None),
            alarms.c.type == type,
            alarms.c.active,
        )
        row = conn.execute(query).first()
        return _alarm_from(row) if row else None

    def _active(self, conn: Connection, kiosk_id: str, type: str) -> Alarm | None:
        query = _select().where(alarms.c.kiosk_id == kiosk_id, alarms.c.type == type, alarms.c.active)
        row = conn.execute(query).first()
        return _alarm_from(row) if row else None

    def _get(self, conn: Connection, alarm_id: int) -> Alarm:
        return _alarm_from(conn.execute(_select().where(alarms.c.id == alarm_id)).one())

    # --- reads for the web ---

    def get(self, scope: Scope, alarm_id: int) -> Alarm:
        with self.db.read() as conn:
            row = conn.execute(
                _select().where(alarms.c.id == alarm_id, scope.centers_filter(alarms.c.center_id))
            ).first()
        if row is None:
            raise NotFoundError(f"alarm {alarm_id} not found")
        return _alarm_from(row)

    def page(
        self,
        scope: Scope,
        *,
        active: bool | None = True,
        center_id: str | None = None,
        kiosk_id: str | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> Page[Alarm]:
        conditions = [scope.centers_filter(alarms.c.center_id)]
        if active is not None:
            conditions.append(alarms.c.active.is_(True) if active else alarms.c.active.is_(False))
        if center_id:
            conditions.append(alarms.c.center_id == center_id)
        if kiosk_id:
            conditions.append(alarms.c.kiosk_id == kiosk_id)
        query = (
            _select()
            .where(*conditions)
            .order_by(alarms.c.active.desc(), alarms.c.started_at.desc(), alarms.c.id.desc())
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(alarms).where(*conditions)).scalar_one()
            items = tuple(_alarm_from(r) for r in conn.execute(query))
        return Page(items, total, offset, limit or max(total, 1))
