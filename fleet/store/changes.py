"""Following the store from any process: the newest change id, and what changed since an id."""

from __future__ import annotations

from sqlalchemy import func, select

from fleet.store.base import Part
from fleet.store.models import Change
from fleet.store.schema import changes, store_settings
from fleet.store.scope import Scope


class Changes(Part):
    def latest_id(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(changes.c.id), 0))).scalar_one())

    def since(
        self,
        scope: Scope,
        after_id: int,
        *,
        center_id: str | None = None,
        kiosk_id: str | None = None,
        limit: int = 500,
    ) -> tuple[list[Change], int]:
        """Changes after ``after_id`` that the scope may see, and the id to continue from (which moves
        past changes of other centers too, so a quiet center does not rescan a busy one's)."""
        conditions = [changes.c.id > after_id]
        with self.db.read() as conn:
            newest = conn.execute(select(func.max(changes.c.id)).where(*conditions)).scalar()
            if newest is None:
                return [], after_id
            upto = min(int(newest), after_id + limit)
            conditions += [changes.c.id <= upto, scope.centers_filter(changes.c.center_id)]
            if center_id:
                conditions.append(changes.c.center_id == center_id)
            if kiosk_id:
                conditions.append(changes.c.kiosk_id == kiosk_id)
            rows = conn.execute(select(changes).where(*conditions).order_by(changes.c.id))
            return [Change(r.id, r.at, r.center_id, r.kiosk_id, r.topic) for r in rows], upto


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
