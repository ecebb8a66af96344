"""Where a center's alarms are sent: e-mail addresses and webhook URLs, with a minimum severity.
The senders (SMTP, HTTP) are ``fleet.notify``; the queue of deliveries is ``fleet.store.notices``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store.base import Part
from fleet.store.models import NotificationRoute
from fleet.store.schema import SEVERITIES, centers, notification_routes
from fleet.store.scope import Scope

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _route_from(row: Any) -> NotificationRoute:
    m = row._mapping
    return NotificationRoute(
        m["id"], m["center_id"], m["kind"], m["target"], m["min_severity"], m["active"], m["created_at"]
    )


def check_target(kind: str, target: str) -> str:
    target = target.strip()
    if kind == "email":
        if not EMAIL.fullmatch(target) or len(target) > 254:
            raise ValidationError(f"e-mail address {target!r} is not valid")
    elif kind == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(f"webhook {target!r}: expected an http(s):// URL")
    else:
        raise ValidationError(f"route kind {kind!r}: expected email or webhook")
    return target


class Routes(Part):
    def add(
        self,
        scope: Scope,
        center_id: str,
        kind: str,
        target: str,
        *,
        min_severity: str = "major",
        created_by: int | None = None,
    ) -> NotificationRoute:
        target = check_target(kind, target)
        if min_severity not in SEVERITIES:
            raise ValidationError(f"severity {min_severity!r}: expected one of {SEVERITIES}")
        with self.db.write() as conn:
            if (
                conn.execute(
                    select(centers.c.id).where(centers.c.id == center_id, scope.centers_filter(centers.c.id))
                ).first()
                is None
            ):
                raise NotFoundError(f"center {center_id!r} not found")
            try:
                with conn.begin_nested():
                    new_id = conn.execute(
                        insert(notification_routes)
                        .values(
                            center_id=center_id,
                            kind=kind,
                            target=target,
                            min_severity=min_severity,
                            active=True,
                            created_by=created_by,
                            created_at=self.db.now(),
                        )
                        .returning(notification_routes.c.id)
                    ).scalar_one()
            except IntegrityError as exc:
                raise ConflictError(f"{kind} {target} is already a route of {center_id}") from exc
            return _route_from(
                conn.execute(select(notification_routes).where(notification_routes.c.id == new_id)).one()
            )

    def of_center(self, scope: Scope, center_id: str) -> list[NotificationRoute]:
        with self.db.read() as conn:
            return [
                _route_from(r)
                for r in conn.execute(
                    select(notification_routes)
                    .where(
                        notification_routes.c.center_id == center_id,
                        scope.centers_filter(notification_routes.c.center_id),
                    )
                    .order_by(notification_routes.c.id)
                )
            ]

    def set_active(self, scope: Scope, route_id: int, active: bool) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(notification_routes)
                .where(
                    notification_routes.c.id == route_id,
                    scope.centers_filter(notification_routes.c.center_id),
                )
                .values(active=active)
            ).rowcount
        if not done:
            raise NotFoundError(f"route {route_id} not found")

    def for_alarm(self, center_id: str, severity: str) -> list[NotificationRoute]:
        """Active routes of the center that want an alarm of this severity (for the notifier)."""
        if severity not in SEVERITIES:
            raise ValidationError(f"severity {severity!r}: expected one of {SEVERITIES}")
        # a route with min_severity 'major' wants major and critical alarms (SEVERITIES: worst first)
        wanted = SEVERITIES[SEVERITIES.index(severity) :]
        with self.db.read() as conn:
            rows = conn.execute(
                select(notification_routes)
                .where(
                    notification_routes.c.center_id == center_id,
                    notification_routes.c.active,
                    notification_routes.c.min_severity.in_(wanted),
                )
                .order_by(notification_routes.c.id)
            )
            return [_route_from(r) for r in rows]

    def get(self, scope: Scope, route_id: int) -> NotificationRoute:
        with self.db.read() as conn:
            row = conn.execute(
                select(notification_routes).where(
                    notification_routes.c.id == route_id,
                    scope.centers_filter(notification_routes.c.center_id),
                )
            ).first()
        if row is None:
            raise NotFoundError(f"route {route_id} not found")
        return _route_from(row)
