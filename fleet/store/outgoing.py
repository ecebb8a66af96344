"""What the center sends kiosks and has not sent yet: commands past their expiry before they could go,
configuration pushes waiting for the broker's acknowledgement, and the push bodies the config pages
compare with what each kiosk applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from common.errors import NotFoundError
from fleet.store.base import Part, log_changes
from fleet.store.commands import (
    REASON_UNSENT_EXPIRED,
    _command_from,
    _command_select,
    _push_from,
    _state_from,
)
from fleet.store.models import Command, ConfigPush, ConfigState
from fleet.store.schema import commands, config_publications, config_pushes, config_states, kiosks, users
from fleet.store.scope import Scope


class Outgoing(Part):
    # --- commands ---

    def expire_unsent(self, now: datetime | None = None) -> list[tuple[str, str, str]]:
        """Commands still pending past their ``expires_at``: answered here with an error (the kiosk would
        refuse them anyway), so the console does not wait for ever. Returns (center, kiosk, request_id)."""
        at = now or self.db.now()
        with self.db.write() as conn:
            gone = conn.execute(
                update(commands)
                .where(commands.c.status == "pending", commands.c.expires_at < at)
                .values(
                    status="error",
                    result_reason=REASON_UNSENT_EXPIRED,
                    result={},
                    result_at=at,
                )
                .returning(commands.c.center_id, commands.c.kiosk_id, commands.c.request_id)
            ).all()
            log_changes(conn, at, [(r.center_id, r.kiosk_id, "kiosk") for r in gone])
        return [(r.center_id, r.kiosk_id, r.request_id) for r in gone]

    def command(self, scope: Scope, kiosk_id: str, request_id: str) -> Command:
        with self.db.read() as conn:
            row = conn.execute(
                _command_select().where(
                    commands.c.kiosk_id == kiosk_id,
                    commands.c.request_id == request_id,
                    scope.centers_filter(commands.c.center_id),
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no command {request_id!r} of kiosk {kiosk_id!r}")
        return _command_from(row)

    # --- configuration ---

    def unpublished(self, *, limit: int = 100) -> list[ConfigPush]:
        """Pushes the broker has not acknowledged yet, oldest first (only the newest per target matters,
        but publishing each in order is harmless: a kiosk ignores a version it has already passed)."""
        newest = (
            select(func.max(config_pushes.c.id))
            .group_by(config_pushes.c.center_id, config_pushes.c.target)
            .scalar_subquery()
        )
        query = (
            select(config_pushes)
            .where(
                config_pushes.c.id.in_(newest),
                ~config_pushes.c.id.in_(select(config_publications.c.push_id)),
            )
            .order_by(config_pushes.c.id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_push_from(r) for r in conn.execute(query)]

    def mark_published(self, push_id: int, *, at: datetime | None = None) -> None:
        now = at or self.db.now()
        with self.db.write() as conn:
            conn.execute(
                self.db.insert(config_publications)
                .values(push_id=push_id, published_at=now)
                .on_conflict_do_nothing(index_elements=[config_publications.c.push_id])
            )
            center = conn.execute(
                select(config_pushes.c.center_id).where(config_pushes.c.id == push_id)
            ).scalar()
            if center is not None:
                log_changes(conn, now, [(center, None, "center")])

    def published(self, push_ids: list[int]) -> dict[int, datetime]:
        if not push_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                select(config_publications).where(config_publications.c.push_id.in_(push_ids))
            )
            return {r.push_id: r.published_at for r in rows}

    def latest(self, scope: Scope, center_id: str, target: str) -> ConfigPush | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(config_pushes)
                .where(
                    config_pushes.c.center_id == center_id,
                    config_pushes.c.target == target,
                    scope.centers_filter(config_pushes.c.center_id),
                )
                .order_by(config_pushes.c.version.desc())
                .limit(1)
            ).first()
            return _push_from(row) if row else None

    def latest_per_target(self, scope: Scope, center_id: str) -> dict[str, ConfigPush]:
        """The newest push of every target of the center ("_center" and each kiosk that has one)."""
        newest = (
            select(func.max(config_pushes.c.id))
            .where(config_pushes.c.center_id == center_id)
            .group_by(config_pushes.c.target)
            .scalar_subquery()
        )
        with self.db.read() as conn:
            rows = conn.execute(
                select(config_pushes).where(
                    config_pushes.c.id.in_(newest), scope.centers_filter(config_pushes.c.center_id)
                )
            )
            return {r.target: _push_from(r) for r in rows}

    def bodies(self, center_id: str, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
        """Push bodies by (target, version): what a kiosk that applied that version runs."""
        if not wanted:
            return {}
        targets = {t for t, _ in wanted}
        with self.db.read() as conn:
            rows = conn.execute(
                select(config_pushes.c.target, config_pushes.c.version, config_pushes.c.body).where(
                    config_pushes.c.center_id == center_id, config_pushes.c.target.in_(targets)
                )
            )
            return {(r.target, r.version): r.body for r in rows if (r.target, r.version) in wanted}

    def history(
        self, scope: Scope, center_id: str, *, target: str | None = None, limit: int = 30
    ) -> list[PushEntry]:
        """Pushes of a center (or one target), newest first, with who pushed and when it was published."""
        query = (
            select(config_pushes, users.c.username, config_publications.c.published_at)
            .select_from(
                config_pushes.outerjoin(users, users.c.id == config_pushes.c.pushed_by).outerjoin(
                    config_publications, config_publications.c.push_id == config_pushes.c.id
                )
            )
            .where(config_pushes.c.center_id == center_id, scope.centers_filter(config_pushes.c.center_id))
            .order_by(config_pushes.c.id.desc())
            .limit(limit)
        )
        if target is not None:
            query = query.where(config_pushes.c.target == target)
        with self.db.read() as conn:
            return [PushEntry(_push_from(r), r.username, r.published_at) for r in conn.execute(query)]

    def states(self, scope: Scope, center_id: str) -> dict[str, ConfigState]:
        """The latest ``config-state/1`` of every kiosk of the center that sent one."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(config_states)
                .join(kiosks, kiosks.c.id == config_states.c.kiosk_id)
                .where(kiosks.c.center_id == center_id, scope.centers_filter(kiosks.c.center_id))
            )
            return {r.kiosk_id: _state_from(r) for r in rows}


@dataclass(frozen=True)
class PushEntry:
    push: ConfigPush
    pushed_by_name: str | None
    published_at: datetime | None
