"""People: users with a role and a home (a center, or a province), server-side sessions (several web
processes share them) and login attempts (the rate limit survives a restart and spans processes).
Password hashing is ``fleet.auth``'s: the store only keeps hashes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store.base import Part
from fleet.store.models import Session, User
from fleet.store.schema import ROLES, centers, login_attempts, provinces, sessions, users
from fleet.store.scope import Scope

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
CENTER_ROLES = ("center_manager", "technician", "officer")
PROVINCE_ROLES = ("province_admin",)


def user_from(row: Any) -> User:
    m = row._mapping
    return User(
        m["id"],
        m["username"],
        m["display_name"],
        m["role"],
        m["province_id"],
        m["center_id"],
        m["active"],
        m["created_at"],
        m["password_changed_at"],
        m["last_login_at"],
    )


_USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


def check_home(role: str, center_id: str | None, province_id: str | None) -> None:
    if role not in ROLES:
        raise ValidationError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if (center_id is None) == (province_id is None):
        raise ValidationError("a user belongs to exactly one center or one province")
    if role in CENTER_ROLES and center_id is None:
        raise ValidationError(f"role {role} works at one center: give --center")
    if role in PROVINCE_ROLES and province_id is None:
        raise ValidationError(f"role {role} covers a province: give --province")


class Accounts(Part):
    # --- users ---

    def add_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        *,
        center_id: str | None = None,
        province_id: str | None = None,
        display_name: str = "",
    ) -> User:
        username = username.strip().lower()
        if not USERNAME.fullmatch(username):
            raise ValidationError(f"username {username!r}: 3-64 of a-z 0-9 . _ -")
        check_home(role, center_id, province_id)
        now = self.db.now()
        with self.db.write() as conn:
            self._check_home_exists(conn, center_id, province_id)
            try:
                with conn.begin_nested():
                    user_id = conn.execute(
                        insert(users)
                        .values(
                            username=username,
                            display_name=display_name,
                            password_hash=password_hash,
                            role=role,
                            center_id=center_id,
                            province_id=province_id,
                            active=True,
                            created_at=now,
                            password_changed_at=now,
                        )
                        .returning(users.c.id)
                    ).scalar_one()
            except IntegrityError as exc:
                raise ConflictError(f"user {username!r} exists already") from exc
            return user_from(conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id)).one())

    def _check_home_exists(self, conn: Any, center_id: str | None, province_id: str | None) -> None:
        if (
            center_id is not None
            and conn.execute(select(centers.c.id).where(centers.c.id == center_id)).first() is None
        ):
            raise NotFoundError(f"center {center_id!r} does not exist")
        if (
            province_id is not None
            and conn.execute(select(provinces.c.id).where(provinces.c.id == province_id)).first() is None
        ):
            raise NotFoundError(f"province {province_id!r} does not exist")

    def users(self, scope: Scope) -> list[User]:
        with self.db.read() as conn:
            return [
                user_from(r)
                for r in conn.execute(
                    select(*_USER_COLUMNS)
                    .where(scope.homes_filter(users.c.province_id, users.c.center_id))
                    .order_by(users.c.username)
                )
            ]

    def user(self, scope: Scope, user_id: int) -> User:
        with self.db.read() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS).where(
                    users.c.id == user_id, scope.homes_filter(users.c.province_id, users.c.center_id)
                )
            ).first()
        if row is None:
            raise NotFoundError(f"user {user_id} not found")
        return user_from(row)

    def credentials(self, username: str) -> tuple[User, str] | None:
        """The user and the stored hash, for a login (active or not: the caller decides)."""
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.username == username.strip().lower())).first()
        return (user_from(row), row.password_hash) if row else None

    def update_user(
        self,
        scope: Scope,
        user_id: int,
        *,
        role: str | None = None,
        active: bool | None = None,
        display_name: str | None = None,
        center_id: str | None = None,
        province_id: str | None = None,
        home: bool = False,
    ) -> tuple[User, User]:
        """Change a user inside the scope; ``home=True`` replaces center/province. Returns (before, after)."""
        before = self.user(scope, user_id)
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = role
        if active is not None:
            values["active"] = active
        if display_name is not None:
            values["display_name"] = display_name
        new_center, new_province = (
            (center_id, province_id) if home else (before.center_id, before.province_id)
        )
        check_home(values.get("role", before.role), new_center, new_province)
        if home:
            values.update(center_id=center_id, province_id=province_id)
        with self.db.write() as conn:
            self._check_home_exists(conn, new_center, new_province)
            conn.execute(update(users).where(users.c.id == user_id).values(**values))
            if active is False:
                conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        return before, self.user(Scope.everything(), user_id)

    def set_password(self, user_id: int, password_hash: str, *, keep_session: str | None = None) -> None:
        """New hash; every other session of the user ends (a stolen session dies with the old password)."""
        with self.db.write() as conn:
            done = conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, password_changed_at=self.db.now())
            ).rowcount
            if not done:
                raise NotFoundError(f"user {user_id} not found")
            condition = sessions.c.user_id == user_id
            if keep_session is not None:
                condition = condition & (sessions.c.id != keep_session)
            conn.execute(delete(sessions).where(condition))

    # --- sessions ---

    def create_session(
        self,
        session_id: str,
        user_id: int,
        csrf_token: str,
        *,
        expires_at: datetime,
        address: str | None,
        user_agent: str | None,
    ) -> None:
        now = self.db.now()
        with self.db.write() as conn:
            conn.execute(
                insert(sessions).values(
                    id=session_id,
                    user_id=user_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                    address=address,
                    user_agent=(user_agent or "")[:300],
                )
            )
            conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))

    def session(self, session_id: str) -> Session | None:
        """A live session of an active user, or None (expired, logged out, user deactivated)."""
        now = self.db.now()
        with self.db.read() as conn:
            row = conn.execute(
                select(sessions, *[c.label(f"u_{c.name}") for c in _USER_COLUMNS])
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id == session_id, sessions.c.expires_at > now, users.c.active)
            ).first()
        if row is None:
            return None
        m = row._mapping
        user = User(
            m["u_id"],
            m["u_username"],
            m["u_display_name"],
            m["u_role"],
            m["u_province_id"],
            m["u_center_id"],
            m["u_active"],
            m["u_created_at"],
            m["u_password_changed_at"],
            m["u_last_login_at"],
        )
        return Session(
            m["id"], user, m["csrf_token"], m["created_at"], m["last_seen_at"], m["expires_at"], m["address"]
        )

    def touch_session(self, session_id: str, expires_at: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(last_seen_at=self.db.now(), expires_at=expires_at)
            )

    def delete_session(self, session_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == session_id))

    def sessions_of(self, user_id: int) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(sessions)
                    .where(sessions.c.user_id == user_id, sessions.c.expires_at > self.db.now())
                ).scalar_one()
            )

    # --- login attempts (rate limit) ---

    def record_attempt(self, username: str, address: str, success: bool) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(login_attempts).values(
                    username=username.strip().lower()[:64],
                    address=address[:64],
                    at=self.db.now(),
                    success=success,
                )
            )

    def recent_failures(
        self, since: datetime, *, username: str | None = None, address: str | None = None
    ) -> list[datetime]:
        """Failed attempts after ``since`` and after the last success, for one username or address."""
        column = login_attempts.c.username if username is not None else login_attempts.c.address
        key = username.strip().lower() if username is not None else address
        with self.db.read() as conn:
            rows = conn.execute(
                select(login_attempts.c.at, login_attempts.c.success)
                .where(column == key, login_attempts.c.at > since)
                .order_by(login_attempts.c.at, login_attempts.c.id)
            ).all()
        failures: list[datetime] = []
        for at, success in rows:
            failures = [] if success else [*failures, at]
        return failures
