"""Accounts: password hashes (argon2id), roles and what they may do, the scope a user sees, logins
with a rate limit, sessions. HTTP (cookies, CSRF) is ``fleet.web``'s; everything here is plain calls
on the store, so the rules are tested without a browser and hold for every web process at once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.errors import PermissionDeniedError, ValidationError
from fleet.store import Scope, Store
from fleet.store.models import Session, User

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # every center of the province; the only role that manages accounts
    "province_admin": frozenset(
        {
            "fleet.view",
            "alarm.ack",
            "command.send",
            "config.push",
            "routes.manage",
            "user.manage",
            "audit.view",
            "queue.view",
            "queue.manage",
            "rating.view",
            "enroll.manage",
        }
    ),
    # the center's head: its configuration, where its alarms go, its queue, and (above a technician) its
    # commands
    "center_manager": frozenset(
        {
            "fleet.view",
            "alarm.ack",
            "command.send",
            "config.push",
            "routes.manage",
            "audit.view",
            "queue.view",
            "queue.manage",
            "rating.view",
            "enroll.manage",
        }
    ),
    # enrolls, tests, replaces and revokes the center's kiosks (docs/provisioning.md)
    "technician": frozenset({"fleet.view", "alarm.ack", "command.send", "queue.view", "enroll.manage"}),
    # the counter app (docs/queue.md); officers never see ratings, not even aggregates of their own
    "officer": frozenset({"queue.counter"}),
    "viewer": frozenset({"fleet.view", "queue.view"}),
}
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id, the library's defaults (RFC 9106 low-memory profile)
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """argon2id with the library's defaults; the parameters are stored in the hash, so a hash made
    with other parameters (tests seed cheap ones) still verifies."""
    check_password_rules(password)
    return (hasher or _hasher).hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD} characters")
    if password.strip() != password:
        raise ValidationError("a password may not start or end with a space")


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def can(user: User, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(user.role, frozenset())


def scope_for(user: User) -> Scope:
    """A user sees their center, or (province admins, province-wide viewers) their province."""
    if user.center_id is not None:
        return Scope.center(user.center_id)
    if user.province_id is not None:
        return Scope.province(user.province_id)
    raise ValidationError(f"user {user.username} has neither a center nor a province")


def token_id(token: str) -> str:
    """What the store keeps of a session token: its SHA-256 (a leaked table opens no session)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginPolicy:
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5  # failures in the window before the account waits
    per_address: int = 20  # failures in the window before the address waits (many accounts tried)
    session_idle: timedelta = timedelta(hours=12)
    session_max: timedelta = timedelta(days=7)
    touch_every: timedelta = timedelta(minutes=1)


class LoginRefused(PermissionDeniedError):
    """Why a login failed: ``reason`` is ``bad_credentials`` or ``rate_limited`` (then ``retry_after``)."""

    code = "login_refused"

    def __init__(self, reason: str, retry_after: timedelta | None = None) -> None:
        super().__init__(f"login refused: {reason}")
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoggedIn:
    token: str  # goes into the signed cookie; the store only has token_id(token)
    session: Session


class Authenticator:
    def __init__(self, store: Store, policy: LoginPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or LoginPolicy()

    def _wait(
        self, now: datetime, *, username: str | None = None, address: str | None = None
    ) -> timedelta | None:
        limit = self.policy.per_account if username is not None else self.policy.per_address
        failures = self.store.accounts.recent_failures(
            now - self.policy.window, username=username, address=address
        )
        if len(failures) < limit:
            return None
        # the oldest failure that still counts leaves the window at this time
        return failures[-limit] + self.policy.window - now

    def login(self, username: str, password: str, address: str, user_agent: str | None = None) -> LoggedIn:
        now = self.store.db.now()
        name = username.strip().lower()
        waits = [
            w for w in (self._wait(now, username=name), self._wait(now, address=address)) if w is not None
        ]
        if waits:
            # refused before the password is even checked: a correct guess while locked tells nothing
            self.store.audit.record("login.rate_limited", username=name[:64], address=address)
            raise LoginRefused("rate_limited", max(waits))
        found = self.store.accounts.credentials(name)
        ok = verify_password(found[1] if found else _DUMMY_HASH, password)  # same work for unknown names
        user = found[0] if found else None
        if not ok or user is None or not user.active:
            self.store.accounts.record_attempt(name, address, False)
            self.store.audit.record(
                "login.failed",
                user_id=user.id if user else None,
                username=name[:64],
                center_id=user.center_id if user else None,
                province_id=user.province_id if user else None,
                address=address,
                after={"reason": "inactive" if ok and user else "bad_credentials"},
            )
            raise LoginRefused("bad_credentials")
        self.store.accounts.record_attempt(name, address, True)
        token = secrets.token_urlsafe(32)
        self.store.accounts.create_session(
            token_id(token),
            user.id,
            secrets.token_urlsafe(32),
            expires_at=now + self.policy.session_idle,
            address=address,
            user_agent=user_agent,
        )
        self.store.audit.record(
            "login.ok",
            user_id=user.id,
            username=user.username,
            center_id=user.center_id,
            province_id=user.province_id,
            address=address,
        )
        session = self.store.accounts.session(token_id(token))
        assert session is not None
        return LoggedIn(token, session)

    def session(self, token: str) -> Session | None:
        """The live session of a cookie's token, its idle expiry pushed forward (at most once a minute)."""
        session = self.store.accounts.session(token_id(token))
        if session is None:
            return None
        now = self.store.db.now()
        if now - session.last_seen_at >= self.policy.touch_every:
            expires = min(session.created_at + self.policy.session_max, now + self.policy.session_idle)
            self.store.accounts.touch_session(session.id, expires)
        return session

    def logout(self, session: Session, address: str | None) -> None:
        self.store.accounts.delete_session(session.id)
        self.store.audit.record(
            "logout",
            user_id=session.user.id,
            username=session.user.username,
            center_id=session.user.center_id,
            province_id=session.user.province_id,
            address=address,
        )

    def change_password(self, session: Session, current: str, new: str, address: str | None) -> None:
        found = self.store.accounts.credentials(session.user.username)
        if found is None or not verify_password(found[1], current):
            self.store.audit.record(
                "password.change_failed",
                user_id=session.user.id,
                username=session.user.username,
                center_id=session.user.center_id,
                province_id=session.user.province_id,
                address=address,
            )
            raise LoginRefused("bad_credentials")
        self.store.accounts.set_password(session.user.id, hash_password(new), keep_session=session.id)
        self.store.audit.record(
            "password.changed",
            user_id=session.user.id,
            username=session.user.username,
            object_type="user",
            object_id=str(session.user.id),
            center_id=session.user.center_id,
            province_id=session.user.province_id,
            address=address,
        )
