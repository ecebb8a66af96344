"""Provinces, centers and kiosks: the registry the rest hangs on, and the lists the pages show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store.base import Part, check_id, log_changes
from fleet.store.models import Center, CenterSummary, DeviceState, Kiosk, KioskRow, Page, Province
from fleet.store.schema import SEVERITIES, alarms, centers, device_health, kiosks, provinces
from fleet.store.scope import Scope

KIOSK_SORTS = ("id", "state", "last_seen")
MAX_PAGE = 1000


def kiosk_from(row: Any) -> Kiosk:
    m = row._mapping
    return Kiosk(
        id=m["id"],
        center_id=m["center_id"],
        slot=m["slot"],
        label=m["label"],
        state=m["state"],
        state_reason=m["state_reason"],
        state_since=m["state_since"],
        last_seen=m["last_seen"],
        heartbeat_s=m["heartbeat_s"],
        bdseq=m["bdseq"],
        boot=m["boot"],
        agent_version=m["agent_version"],
        app_version=m["app_version"],
        config_center_version=m["config_center_version"],
        config_kiosk_version=m["config_kiosk_version"],
        hardware=m["hardware"],
    )


def device_from(row: Any) -> DeviceState:
    m = row._mapping
    return DeviceState(m["kiosk_id"], m["device"], m["state"], m["detail"], m["since"], m["updated_at"])


_CENTER_COLUMNS = (
    centers.c.id,
    centers.c.province_id,
    centers.c.name,
    provinces.c.name.label("province_name"),
)


def _center_from(row: Any) -> Center:
    return Center(row.id, row.province_id, row.name, row.province_name)


def worst(severities: Sequence[str]) -> str | None:
    return min(severities, key=SEVERITIES.index) if severities else None


class Registry(Part):
    # --- writes (CLI, enrollment later) ---

    def ensure_province(self, province_id: str, name: str) -> Province:
        check_id(province_id, "province id")
        with self.db.write() as conn:
            found = conn.execute(select(provinces.c.name).where(provinces.c.id == province_id)).scalar()
            if found is None:
                conn.execute(insert(provinces).values(id=province_id, name=name, created_at=self.db.now()))
                found = name
        return Province(province_id, found)

    def add_center(self, center_id: str, province_id: str, name: str) -> Center:
        check_id(center_id, "center id")
        if center_id == "_center":
            raise ValidationError("'_center' is reserved by the MQTT namespace")
        with self.db.write() as conn:
            if conn.execute(select(provinces.c.id).where(provinces.c.id == province_id)).first() is None:
                raise NotFoundError(f"province {province_id!r} does not exist")
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(centers).values(
                            id=center_id, province_id=province_id, name=name, created_at=self.db.now()
                        )
                    )
            except IntegrityError as exc:
                raise ConflictError(f"center {center_id!r} exists already") from exc
            log_changes(conn, self.db.now(), [(center_id, None, "center")])
        return self.center(Scope.everything(), center_id)

    def add_kiosk(
        self,
        kiosk_id: str,
        center_id: str,
        *,
        slot: int | None = None,
        label: str = "",
        heartbeat_s: int = 30,
    ) -> Kiosk:
        check_id(kiosk_id, "kiosk id")
        with self.db.write() as conn:
            if conn.execute(select(centers.c.id).where(centers.c.id == center_id)).first() is None:
                raise NotFoundError(f"center {center_id!r} does not exist")
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(kiosks).values(
                            id=kiosk_id,
                            center_id=center_id,
                            slot=slot,
                            label=label,
                            heartbeat_s=heartbeat_s,
                            created_at=self.db.now(),
                        )
                    )
            except IntegrityError as exc:
                raise ConflictError(
                    f"kiosk {kiosk_id!r} or slot {slot} of {center_id!r} exists already"
                ) from exc
            log_changes(conn, self.db.now(), [(center_id, kiosk_id, "kiosk")])
        return self.kiosk(Scope.everything(), kiosk_id)

    def add_kiosks(self, center_id: str, rows: Sequence[dict[str, Any]]) -> int:
        """Bulk registration (tests, imports): dicts with ``id`` and optional ``slot``, ``label``."""
        now = self.db.now()
        values = [
            {
                "id": check_id(r["id"], "kiosk id"),
                "center_id": center_id,
                "slot": r.get("slot"),
                "label": r.get("label", ""),
                "heartbeat_s": r.get("heartbeat_s", 30),
                "created_at": now,
            }
            for r in rows
        ]
        with self.db.write() as conn:
            conn.execute(insert(kiosks), values)
            log_changes(conn, now, [(center_id, None, "center")])
        return len(values)

    # --- reads for the web, all scoped ---

    def provinces(self, scope: Scope) -> list[Province]:
        query = select(provinces.c.id, provinces.c.name).order_by(provinces.c.name)
        if scope.kind == "province":
            query = query.where(provinces.c.id == scope.id)
        elif scope.kind == "center":
            query = query.where(
                provinces.c.id.in_(select(centers.c.province_id).where(centers.c.id == scope.id))
            )
        with self.db.read() as conn:
            return [Province(r.id, r.name) for r in conn.execute(query)]

    def centers(self, scope: Scope) -> list[Center]:
        query = (
            select(*_CENTER_COLUMNS)
            .join(provinces, provinces.c.id == centers.c.province_id)
            .where(scope.centers_filter(centers.c.id))
            .order_by(centers.c.name, centers.c.id)
        )
        with self.db.read() as conn:
            return [_center_from(r) for r in conn.execute(query)]

    def center(self, scope: Scope, center_id: str) -> Center:
        with self.db.read() as conn:
            return self._center(conn, scope, center_id)

    def _center(self, conn: Connection, scope: Scope, center_id: str) -> Center:
        row = conn.execute(
            select(*_CENTER_COLUMNS)
            .join(provinces, provinces.c.id == centers.c.province_id)
            .where(centers.c.id == center_id, scope.centers_filter(centers.c.id))
        ).first()
        if row is None:
            raise NotFoundError(f"center {center_id!r} not found")
        return _center_from(row)

    def center_summaries(self, scope: Scope, center_ids: Sequence[str] | None = None) -> list[CenterSummary]:
        """Per center: kiosks total / online / offline / never seen, and active alarms."""
        k = kiosks.c
        counts = (
            select(
                *_CENTER_COLUMNS,
                func.count(k.id).label("total"),
                func.coalesce(func.sum(case((k.state == "online", 1), else_=0)), 0).label("online"),
                func.coalesce(func.sum(case((k.state == "offline", 1), else_=0)), 0).label("offline"),
                func.coalesce(func.sum(case((k.state == "unknown", 1), else_=0)), 0).label("unknown"),
            )
            .select_from(
                centers.join(provinces, provinces.c.id == centers.c.province_id).outerjoin(
                    kiosks, k.center_id == centers.c.id
                )
            )
            .where(scope.centers_filter(centers.c.id))
            .group_by(centers.c.id, centers.c.province_id, centers.c.name, provinces.c.name)
            .order_by(centers.c.name, centers.c.id)
        )
        active = (
            select(alarms.c.center_id, func.count().label("n"))
            .where(alarms.c.active, scope.centers_filter(alarms.c.center_id))
            .group_by(alarms.c.center_id)
        )
        if center_ids is not None:
            counts = counts.where(centers.c.id.in_(list(center_ids)))
            active = active.where(alarms.c.center_id.in_(list(center_ids)))
        with self.db.read() as conn:
            alarm_counts = {r.center_id: r.n for r in conn.execute(active)}
            return [
                CenterSummary(
                    _center_from(r), r.total, r.online, r.offline, r.unknown, alarm_counts.get(r.id, 0)
                )
                for r in conn.execute(counts)
            ]

    def kiosk(self, scope: Scope, kiosk_id: str) -> Kiosk:
        with self.db.read() as conn:
            row = conn.execute(
                select(kiosks).where(kiosks.c.id == kiosk_id, scope.centers_filter(kiosks.c.center_id))
            ).first()
        if row is None:
            raise NotFoundError(f"kiosk {kiosk_id!r} not found")
        return kiosk_from(row)

    def kiosk_rows(
        self,
        scope: Scope,
        center_id: str,
        *,
        state: str | None = None,
        search: str | None = None,
        sort: str = "id",
        offset: int = 0,
        limit: int | None = 100,
    ) -> Page[KioskRow]:
        """A center's kiosks with devices and active alarms; ``limit=None`` for all (exports)."""
        if sort not in KIOSK_SORTS:
            raise ValidationError(f"sort {sort!r}: expected one of {KIOSK_SORTS}")
        if limit is not None and not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit {limit}: expected 1..{MAX_PAGE}")
        conditions = [kiosks.c.center_id == center_id, scope.centers_filter(kiosks.c.center_id)]
        if state:
            conditions.append(kiosks.c.state == state)
        if search:
            pattern = f"%{search.strip()}%"
            conditions.append(or_(kiosks.c.id.ilike(pattern), kiosks.c.label.ilike(pattern)))
        order = {
            "id": (kiosks.c.id,),
            "state": (kiosks.c.state.desc(), kiosks.c.id),
            "last_seen": (kiosks.c.last_seen.desc().nulls_last(), kiosks.c.id),
        }[sort]
        query = select(kiosks).where(*conditions).order_by(*order).offset(max(0, offset))
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            self._center(conn, scope, center_id)
            total = conn.execute(select(func.count()).select_from(kiosks).where(*conditions)).scalar_one()
            found = [kiosk_from(r) for r in conn.execute(query)]
            if limit is None:
                rows = self._attach(conn, found, and_(kiosks.c.center_id == center_id))
            else:
                rows = self._attach(conn, found, None)
        return Page(tuple(rows), total, max(0, offset), limit or max(total, 1))

    def kiosk_rows_by_id(self, scope: Scope, kiosk_ids: Sequence[str]) -> list[KioskRow]:
        """The rows the live pages re-draw after a change (only those in scope)."""
        if not kiosk_ids:
            return []
        with self.db.read() as conn:
            found = [
                kiosk_from(r)
                for r in conn.execute(
                    select(kiosks).where(
                        kiosks.c.id.in_(list(kiosk_ids)), scope.centers_filter(kiosks.c.center_id)
                    )
                )
            ]
            return self._attach(conn, found, None)

    def _attach(self, conn: Connection, found: list[Kiosk], by_center: Any) -> list[KioskRow]:
        if not found:
            return []
        if by_center is None:  # a page: look the few ids up
            ids = [kiosk.id for kiosk in found]
            device_query = select(device_health).where(device_health.c.kiosk_id.in_(ids))
            alarm_query = select(alarms.c.kiosk_id, alarms.c.severity).where(
                alarms.c.active, alarms.c.kiosk_id.in_(ids)
            )
        else:  # everything of a center: join instead of a 10,000-long IN list
            device_query = (
                select(device_health).join(kiosks, kiosks.c.id == device_health.c.kiosk_id).where(by_center)
            )
            alarm_query = (
                select(alarms.c.kiosk_id, alarms.c.severity)
                .join(kiosks, kiosks.c.id == alarms.c.kiosk_id)
                .where(alarms.c.active, by_center)
            )
        devices: dict[str, list[DeviceState]] = {}
        for row in conn.execute(device_query.order_by(device_health.c.kiosk_id, device_health.c.device)):
            devices.setdefault(row.kiosk_id, []).append(device_from(row))
        severities: dict[str, list[str]] = {}
        for row in conn.execute(alarm_query):
            severities.setdefault(row.kiosk_id, []).append(row.severity)
        return [
            KioskRow(
                kiosk,
                tuple(devices.get(kiosk.id, ())),
                len(severities.get(kiosk.id, ())),
                worst(severities.get(kiosk.id, [])),
            )
            for kiosk in found
        ]

    def devices(self, scope: Scope, kiosk_id: str) -> list[DeviceState]:
        self.kiosk(scope, kiosk_id)
        with self.db.read() as conn:
            return [
                device_from(r)
                for r in conn.execute(
                    select(device_health)
                    .where(device_health.c.kiosk_id == kiosk_id)
                    .order_by(device_health.c.device)
                )
            ]
