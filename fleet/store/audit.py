"""The audit log: who did what to which object, before and after, when, from which address.
Every login (success or failure), acknowledgement, user change and, later, command, config push and
enrollment lands here. Rows are only ever added."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from fleet.store.base import Part
from fleet.store.models import AuditEntry, Page
from fleet.store.schema import audit_log, centers
from fleet.store.scope import Scope


def _entry_from(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        m["id"],
        m["at"],
        m["user_id"],
        m["username"],
        m["action"],
        m["object_type"],
        m["object_id"],
        m["province_id"],
        m["center_id"],
        m["before"],
        m["after"],
        m["address"],
    )


class Audit(Part):
    def record(
        self,
        action: str,
        *,
        user_id: int | None = None,
        username: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        center_id: str | None = None,
        province_id: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        address: str | None = None,
    ) -> int:
        with self.db.write() as conn:
            if center_id is not None and province_id is None:
                province_id = conn.execute(
                    select(centers.c.province_id).where(centers.c.id == center_id)
                ).scalar()
            return int(
                conn.execute(
                    insert(audit_log)
                    .values(
                        at=self.db.now(),
                        user_id=user_id,
                        username=username,
                        action=action,
                        object_type=object_type,
                        object_id=object_id,
                        center_id=center_id,
                        province_id=province_id,
                        before=before,
                        after=after,
                        address=address,
                    )
                    .returning(audit_log.c.id)
                ).scalar_one()
            )

    def page(
        self, scope: Scope, *, action: str | None = None, offset: int = 0, limit: int | None = 100
    ) -> Page[AuditEntry]:
        conditions = [scope.homes_filter(audit_log.c.province_id, audit_log.c.center_id)]
        if action:
            conditions.append(audit_log.c.action == action)
        query = select(audit_log).where(*conditions).order_by(audit_log.c.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(audit_log).where(*conditions)).scalar_one()
            return Page(
                tuple(_entry_from(r) for r in conn.execute(query)), total, offset, limit or max(total, 1)
            )
