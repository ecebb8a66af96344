"""Notifications of alarms: what was announced (``alarm_notices``: raised, each reminder, cleared) and
each delivery to a route (``notifications``: pending until sent, retried with backoff, given up).

Announcing is idempotent (one notice per alarm, event and number, a unique key), and the deliveries
of a notice are queued in the same transaction as the notice: a crash leaves either both or neither,
and the announcement is simply made again. Sending happens elsewhere (``fleet.notify``), from this
queue, so a slow mail server never holds up the ingest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, select, update

from fleet.store.alarms import _alarm_from, _select
from fleet.store.base import Part
from fleet.store.models import Alarm, Delivery, DeliveryRow
from fleet.store.schema import (
    SEVERITIES,
    alarm_notices,
    alarms,
    centers,
    kiosks,
    notification_routes,
    notifications,
)
from fleet.store.scope import Scope

WATERMARK = "notify_from_alarm_id"
EVENTS = ("raised", "reminder", "cleared")


class Notices(Part):
    def watermark(self) -> int:
        """Alarms above this id are announced. Set once, to the newest alarm when notifications first
        ran, so switching them on does not mail a year of history."""
        with self.db.read() as conn:
            newest = int(conn.execute(select(func.coalesce(func.max(alarms.c.id), 0))).scalar_one())
        from fleet.store.changes import Settings

        return int(Settings(self.db).get_or_create(WATERMARK, str(newest)))

    def unannounced(
        self, from_id: int, *, raised_before: datetime | None = None, limit: int = 200
    ) -> tuple[list[Alarm], list[Alarm]]:
        """Alarms to announce: raised (above the watermark, no 'raised' notice yet, still active and,
        with ``raised_before``, active since then at least), and cleared (ended, announced as raised, no
        'cleared' notice yet). An alarm that ended before it was announced is never announced."""
        n = alarm_notices.c

        def noticed(event: str) -> Any:
            return exists().where(n.alarm_id == alarms.c.id, n.event == event)

        with self.db.read() as conn:
            waiting = [alarms.c.id > from_id, ~noticed("raised"), alarms.c.active]
            if raised_before is not None:
                waiting.append(alarms.c.started_at <= raised_before)
            raised = conn.execute(_select().where(*waiting).order_by(alarms.c.id).limit(limit))
            new = [_alarm_from(r) for r in raised]
            ended = conn.execute(
                _select()
                .where(~alarms.c.active, noticed("raised"), ~noticed("cleared"))
                .order_by(alarms.c.id)
                .limit(limit)
            )
            return new, [_alarm_from(r) for r in ended]

    def announce(
        self, alarm_id: int, event: str, number: int = 0, *, at: datetime | None = None
    ) -> int | None:
        """Record the notice and queue one delivery per route that wants it; None if it was made already."""
        now = at or self.db.now()
        with self.db.write() as conn:
            return self._announce(conn, alarm_id, event, number, now)

    def remind(self, alarm_id: int, *, at: datetime | None = None) -> int | None:
        """Count a reminder on the alarm and announce it, in one transaction."""
        now = at or self.db.now()
        with self.db.write() as conn:
            number = conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id, alarms.c.active)
                .values(last_reminded_at=now, reminders=alarms.c.reminders + 1)
                .returning(alarms.c.reminders)
            ).scalar()
            if number is None:
                return None
            return self._announce(conn, alarm_id, "reminder", int(number), now)

    def _announce(
        self, conn: Connection, alarm_id: int, event: str, number: int, now: datetime
    ) -> int | None:
        if event not in EVENTS:
            raise ValueError(f"notice event {event!r}: expected one of {EVENTS}")
        alarm = conn.execute(
            select(alarms.c.center_id, alarms.c.severity).where(alarms.c.id == alarm_id)
        ).first()
        if alarm is None:
            return None
        notice_id = conn.execute(
            self.db.insert(alarm_notices)
            .values(alarm_id=alarm_id, event=event, number=number, created_at=now)
            .on_conflict_do_nothing(
                index_elements=[alarm_notices.c.alarm_id, alarm_notices.c.event, alarm_notices.c.number]
            )
            .returning(alarm_notices.c.id)
        ).scalar()
        if notice_id is None:
            return None
        wanted = SEVERITIES[SEVERITIES.index(alarm.severity) :]
        routes = conn.execute(
            select(notification_routes.c.id).where(
                notification_routes.c.center_id == alarm.center_id,
                notification_routes.c.active,
                notification_routes.c.min_severity.in_(wanted),
            )
        ).all()
        if routes:
            conn.execute(
                insert(notifications),
                [
                    {
                        "notice_id": notice_id,
                        "route_id": r.id,
                        "center_id": alarm.center_id,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for r in routes
                ],
            )
        return len(routes)

    # --- the sender's side ---

    def due(self, *, now: datetime | None = None, limit: int = 50) -> list[Delivery]:
        at = now or self.db.now()
        n, notice, route = notifications.c, alarm_notices.c, notification_routes.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    n.id,
                    n.attempts,
                    route.kind,
                    route.target,
                    notice.event,
                    notice.number,
                    notice.alarm_id,
                    centers.c.name.label("center_name"),
                )
                .select_from(
                    notifications.join(alarm_notices, notice.id == n.notice_id)
                    .join(notification_routes, route.id == n.route_id)
                    .join(centers, centers.c.id == n.center_id)
                )
                .where(n.status == "pending", n.next_attempt_at <= at)
                .order_by(n.next_attempt_at, n.id)
                .limit(limit)
            ).all()
            if not rows:
                return []
            found = {
                a.id: a
                for a in (
                    _alarm_from(r)
                    for r in conn.execute(_select().where(alarms.c.id.in_({r.alarm_id for r in rows})))
                )
            }
            labels = {
                r.id: r.label
                for r in conn.execute(
                    select(kiosks.c.id, kiosks.c.label).where(
                        kiosks.c.id.in_({a.kiosk_id for a in found.values() if a.kiosk_id})
                    )
                )
            }
        return [
            Delivery(
                r.id,
                r.attempts,
                r.kind,
                r.target,
                r.event,
                r.number,
                r.center_name,
                labels.get(found[r.alarm_id].kiosk_id or ""),
                found[r.alarm_id],
            )
            for r in rows
            if r.alarm_id in found
        ]

    def sent(self, delivery_id: int, *, at: datetime | None = None) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.id == delivery_id)
                .values(
                    status="sent",
                    sent_at=at or self.db.now(),
                    attempts=notifications.c.attempts + 1,
                    last_error=None,
                )
            )

    def failed(self, delivery_id: int, error: str, *, retry_at: datetime | None) -> None:
        """One attempt failed: try again at ``retry_at``, or give up (None)."""
        values: dict[str, Any] = {"attempts": notifications.c.attempts + 1, "last_error": error[:1000]}
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        with self.db.write() as conn:
            conn.execute(update(notifications).where(notifications.c.id == delivery_id).values(**values))

    # --- reads for the web ---

    def deliveries(self, scope: Scope, center_id: str, *, limit: int = 50) -> list[DeliveryRow]:
        n, notice, route = notifications.c, alarm_notices.c, notification_routes.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    n.id,
                    n.route_id,
                    route.kind,
                    route.target,
                    notice.event,
                    notice.alarm_id,
                    alarms.c.type,
                    alarms.c.kiosk_id,
                    n.status,
                    n.attempts,
                    n.created_at,
                    n.sent_at,
                    n.next_attempt_at,
                    n.last_error,
                )
                .select_from(
                    notifications.join(alarm_notices, notice.id == n.notice_id)
                    .join(notification_routes, route.id == n.route_id)
                    .join(alarms, alarms.c.id == notice.alarm_id)
                )
                .where(and_(n.center_id == center_id, scope.centers_filter(n.center_id)))
                .order_by(n.id.desc())
                .limit(limit)
            )
            return [
                DeliveryRow(
                    r.id,
                    r.route_id,
                    r.kind,
                    r.target,
                    r.event,
                    r.alarm_id,
                    r.type,
                    r.kiosk_id,
                    r.status,
                    r.attempts,
                    r.created_at,
                    r.sent_at,
                    r.next_attempt_at,
                    r.last_error,
                )
                for r in rows
            ]

    def counts(self, alarm_ids: Sequence[int]) -> dict[int, int]:
        """Deliveries sent per alarm (the alarm list shows who was told)."""
        if not alarm_ids:
            return {}
        n, notice = notifications.c, alarm_notices.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(notice.alarm_id, func.count().label("c"))
                .select_from(notifications.join(alarm_notices, notice.id == n.notice_id))
                .where(n.status == "sent", notice.alarm_id.in_(list(alarm_ids)))
                .group_by(notice.alarm_id)
            )
            return {r.alarm_id: int(r.c) for r in rows}
