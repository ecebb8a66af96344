"""Enrollment and the kiosk registry's identities: tokens, nonces, pending kiosks, the allowlist,
certificates and their serials, replacements, self-test reports (``store.enrollment``).

Who calls what:

- the dashboard (``fleet.web.views_enroll``, scoped): ``create_token``, ``tokens``, ``cancel_token``,
  ``pending``, ``approve``, ``reject``, ``allow``/``disallow``/``allowlist``, ``request_revocation``,
  ``decommission``, ``identity``, ``certificates``, ``replacements``, ``last_selftest``;
- the provisioning service (``provisioning.service``, the only holder of the issuing CA's key):
  ``new_nonce``, ``enroll`` (one transaction: nonce, allowlist, token, key reuse), ``request``,
  ``record_issue``, ``record_renewal``, ``unapplied_revocations``, ``mark_applied``, ``crl_entries``,
  ``grants``, ``registry``, ``record_selftest``;
- the allocator (or anything that must refuse a kiosk that is not enrolled): ``enrolled_slot`` or the
  file ``registry`` is written to (``contract.enrollment.EnrolledKiosks``).

Secrets are never stored: a token and a nonce are kept as their SHA-256; the token is shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from common.errors import ConflictError, NotFoundError, ValidationError
from contract.enrollment import EnrolledKiosk, EnrolledKiosks, normalise_token
from contract.wire import is_kiosk_id
from fleet.store.base import Part, check_id, log_changes, record_of
from fleet.store.schema import centers, events, kiosks
from fleet.store.schema_enroll import (
    enroll_allowlist,
    enroll_centers,
    enroll_nonces,
    enroll_requests,
    enroll_tokens,
    kiosk_certificates,
    kiosk_identities,
    kiosk_replacements,
    kiosk_selftests,
)
from fleet.store.scope import Scope

TOKEN_LIFETIME = timedelta(hours=24)
TOKEN_LIFETIME_MAX = timedelta(days=7)
NONCE_LIFETIME = timedelta(minutes=10)
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_token_text() -> str:
    letters = "".join(secrets.choice(_B32) for _ in range(20))
    return normalise_token(letters)


class Refused(ValidationError):
    """An enrollment the center refuses; ``reason`` is one of ``contract.enrollment.REFUSALS``."""

    code = "enroll_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class EnrollCenter:
    center_id: str
    enroll_host: str
    enroll_port: int
    ca_fingerprint: str
    broker_host: str
    broker_port: int
    topic_root: str
    offline_base: int
    offline_block: int
    allowlist_required: bool
    generation: int


@dataclass(frozen=True)
class Token:
    id: int
    center_id: str
    kiosk_id: str
    slot: int | None
    purpose: str
    created_by_name: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    cancelled_at: datetime | None
    request_id: str | None

    def state(self, now: datetime) -> str:
        if self.used_at is not None:
            return "used"
        if self.cancelled_at is not None:
            return "cancelled"
        return "expired" if self.expires_at <= now else "open"


@dataclass(frozen=True)
class EnrollRequestRow:
    id: str
    center_id: str
    state: str
    created_at: datetime
    csr: str
    key_sha256: str
    machine: dict[str, Any]
    address: str
    kiosk_id: str | None
    slot: int | None
    purpose: str | None
    decided_at: datetime | None
    decided_by_name: str | None
    reason: str | None
    certificate_serial: str | None


@dataclass(frozen=True)
class Certificate:
    serial: str
    kiosk_id: str
    center_id: str
    key_sha256: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    source: str
    state: str
    superseded_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str | None
    applied_at: datetime | None


@dataclass(frozen=True)
class Identity:
    kiosk_id: str
    center_id: str
    state: str
    machine_serial: str
    machine: dict[str, Any] | None
    enrolled_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Replacement:
    id: int
    kiosk_id: str
    at: datetime
    old_serials: list[str]
    new_serial: str
    old_machine: dict[str, Any] | None
    new_machine: dict[str, Any] | None
    by_name: str


@dataclass(frozen=True)
class SelfTestReport:
    event_id: str
    kiosk_id: str
    at: datetime
    result: str
    source: str
    report: dict[str, Any]


@dataclass(frozen=True)
class AllowEntry:
    center_id: str
    machine_serial: str
    note: str
    added_by_name: str
    added_at: datetime


@dataclass(frozen=True)
class Grant:
    kiosk_id: str
    center_id: str
    slot: int | None
    serials: tuple[str, ...]


def _revoke_certificates(conn: Connection, kiosk_id: str, now: datetime, reason: str) -> list[str]:
    """Revoke every certificate of the kiosk not revoked yet; their serials (for the CRL)."""
    serials = [
        r.serial
        for r in conn.execute(
            select(kiosk_certificates.c.serial).where(
                kiosk_certificates.c.kiosk_id == kiosk_id, kiosk_certificates.c.state != "revoked"
            )
        )
    ]
    conn.execute(
        update(kiosk_certificates)
        .where(kiosk_certificates.c.serial.in_(serials))
        .values(state="revoked", revoked_at=now, revoke_reason=reason[:32])
    )
    return serials


def _token(row: Any) -> Token:
    return record_of(Token, row)


def _request(row: Any) -> EnrollRequestRow:
    return record_of(EnrollRequestRow, row)


def _stored_request(conn: Connection, request_id: str) -> EnrollRequestRow:
    """A request as the change just written left it (it exists: the caller read or inserted it)."""
    return _request(conn.execute(select(enroll_requests).where(enroll_requests.c.id == request_id)).one())


def _cert(row: Any) -> Certificate:
    return record_of(Certificate, row)


def _identity(row: Any) -> Identity:
    return record_of(Identity, row)


class Enrollment(Part):
    # --- the center's enrollment settings ---------------------------------------------------------

    def configure_center(
        self,
        center_id: str,
        *,
        enroll_host: str,
        enroll_port: int,
        ca_fingerprint: str,
        broker_host: str,
        broker_port: int,
        topic_root: str = "motcua/v1",
        offline_base: int = 800,
        offline_block: int = 20,
    ) -> EnrollCenter:
        """Where this center's kiosks enroll and what their bundle says (center-init, service start)."""
        now = self.db.now()
        values = {
            "enroll_host": enroll_host,
            "enroll_port": enroll_port,
            "ca_fingerprint": ca_fingerprint,
            "broker_host": broker_host,
            "broker_port": broker_port,
            "topic_root": topic_root,
            "offline_base": offline_base,
            "offline_block": offline_block,
            "updated_at": now,
        }
        with self.db.write() as conn:
            if conn.execute(select(centers.c.id).where(centers.c.id == center_id)).first() is None:
                raise NotFoundError(f"center {center_id!r} does not exist (main.py fleet center add)")
            found = conn.execute(
                select(enroll_centers.c.center_id).where(enroll_centers.c.center_id == center_id)
            )
            if found.first() is None:
                conn.execute(
                    insert(enroll_centers).values(
                        center_id=center_id, allowlist_required=False, generation=1, **values
                    )
                )
            else:
                conn.execute(
                    update(enroll_centers).where(enroll_centers.c.center_id == center_id).values(**values)
                )
        return self.center(center_id)

    def center(self, center_id: str) -> EnrollCenter:
        with self.db.read() as conn:
            return self._center(conn, center_id)

    def _center(self, conn: Connection, center_id: str) -> EnrollCenter:
        row = conn.execute(select(enroll_centers).where(enroll_centers.c.center_id == center_id)).first()
        if row is None:
            raise NotFoundError(
                f"center {center_id!r} has no enrollment settings (main.py provision center-init)"
            )
        m = row._mapping
        return EnrollCenter(
            m["center_id"],
            m["enroll_host"],
            m["enroll_port"],
            m["ca_fingerprint"],
            m["broker_host"],
            m["broker_port"],
            m["topic_root"],
            m["offline_base"],
            m["offline_block"],
            m["allowlist_required"],
            m["generation"],
        )

    def set_allowlist_required(self, scope: Scope, center_id: str, required: bool) -> None:
        with self.db.write() as conn:
            result = conn.execute(
                update(enroll_centers)
                .where(
                    enroll_centers.c.center_id == center_id, scope.centers_filter(enroll_centers.c.center_id)
                )
                .values(allowlist_required=required, updated_at=self.db.now())
            )
            if result.rowcount == 0:
                raise NotFoundError(f"center {center_id!r} not found")

    def _bump(self, conn: Connection, center_id: str) -> None:
        conn.execute(
            update(enroll_centers)
            .where(enroll_centers.c.center_id == center_id)
            .values(generation=enroll_centers.c.generation + 1)
        )
        log_changes(conn, self.db.now(), [(center_id, None, "center")])

    def generation(self, center_id: str) -> int:
        return self.center(center_id).generation

    # --- tokens -----------------------------------------------------------------------------------

    def create_token(
        self,
        scope: Scope,
        center_id: str,
        kiosk_id: str,
        *,
        slot: int | None = None,
        purpose: str = "new",
        user_id: int | None = None,
        username: str = "cli",
        lifetime: timedelta = TOKEN_LIFETIME,
    ) -> tuple[str, Token]:
        """A one-time token for ``kiosk_id`` of ``center_id``: a new kiosk in ``slot``, or the
        replacement of an enrolled kiosk (its id, slot and history). The token text is returned once."""
        if not is_kiosk_id(kiosk_id):
            raise ValidationError(f"{kiosk_id!r} cannot be a kiosk id (a-z 0-9 -, not a reserved name)")
        if purpose not in ("new", "replace"):
            raise ValidationError(f"purpose {purpose!r}: new or replace")
        if not timedelta(minutes=1) <= lifetime <= TOKEN_LIFETIME_MAX:
            raise ValidationError("a token lives between a minute and 7 days")
        now = self.db.now()
        text = new_token_text()
        with self.db.write() as conn:
            self._scoped_center(conn, scope, center_id)
            kiosk = conn.execute(
                select(kiosks.c.center_id, kiosks.c.slot).where(kiosks.c.id == kiosk_id)
            ).first()
            if purpose == "new":
                if kiosk is not None:
                    raise ConflictError(f"kiosk {kiosk_id!r} exists already: replace it instead")
                if slot is None:
                    slot = self._free_slot(conn, center_id)
                taken = conn.execute(
                    select(kiosks.c.id).where(kiosks.c.center_id == center_id, kiosks.c.slot == slot)
                ).first()
                pending = conn.execute(
                    select(enroll_tokens.c.kiosk_id).where(
                        enroll_tokens.c.center_id == center_id,
                        enroll_tokens.c.slot == slot,
                        enroll_tokens.c.used_at.is_(None),
                        enroll_tokens.c.cancelled_at.is_(None),
                        enroll_tokens.c.expires_at > now,
                        enroll_tokens.c.kiosk_id != kiosk_id,
                    )
                ).first()
                if taken is not None or pending is not None:
                    owner = taken.id if taken is not None else pending.kiosk_id if pending is not None else ""
                    raise ConflictError(f"slot {slot} of {center_id} is taken by {owner}")
            else:
                if kiosk is None or kiosk.center_id != center_id:
                    raise NotFoundError(f"kiosk {kiosk_id!r} is not a kiosk of {center_id}")
                if self._identity_state(conn, kiosk_id) == "decommissioned":
                    raise ConflictError(f"kiosk {kiosk_id!r} was decommissioned")
                slot = kiosk.slot
            token_id = conn.execute(
                insert(enroll_tokens)
                .values(
                    token_sha256=sha256(text),
                    center_id=center_id,
                    kiosk_id=kiosk_id,
                    slot=slot,
                    purpose=purpose,
                    created_by=user_id,
                    created_by_name=username[:64],
                    created_at=now,
                    expires_at=now + lifetime,
                )
                .returning(enroll_tokens.c.id)
            ).scalar_one()
            row = conn.execute(select(enroll_tokens).where(enroll_tokens.c.id == token_id)).one()
        return text, _token(row)

    def _free_slot(self, conn: Connection, center_id: str) -> int:
        used = {r.slot for r in conn.execute(select(kiosks.c.slot).where(kiosks.c.center_id == center_id))}
        used |= {
            r.slot
            for r in conn.execute(
                select(enroll_tokens.c.slot).where(
                    enroll_tokens.c.center_id == center_id,
                    enroll_tokens.c.used_at.is_(None),
                    enroll_tokens.c.cancelled_at.is_(None),
                    enroll_tokens.c.expires_at > self.db.now(),
                )
            )
        }
        slot = 0
        while slot in used:
            slot += 1
        return slot

    def _scoped_center(self, conn: Connection, scope: Scope, center_id: str) -> None:
        found = conn.execute(
            select(centers.c.id).where(centers.c.id == center_id, scope.centers_filter(centers.c.id))
        ).first()
        if found is None:
            raise NotFoundError(f"center {center_id!r} not found")

    def tokens(self, scope: Scope, center_id: str, limit: int = 50) -> list[Token]:
        with self.db.read() as conn:
            self._scoped_center(conn, scope, center_id)
            rows = conn.execute(
                select(enroll_tokens)
                .where(enroll_tokens.c.center_id == center_id)
                .order_by(enroll_tokens.c.id.desc())
                .limit(limit)
            )
            return [_token(r) for r in rows]

    def cancel_token(self, scope: Scope, token_id: int) -> Token:
        with self.db.write() as conn:
            row = conn.execute(
                select(enroll_tokens).where(
                    enroll_tokens.c.id == token_id, scope.centers_filter(enroll_tokens.c.center_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"token {token_id} not found")
            if row.used_at is None and row.cancelled_at is None:
                conn.execute(
                    update(enroll_tokens)
                    .where(enroll_tokens.c.id == token_id)
                    .values(cancelled_at=self.db.now())
                )
            return _token(conn.execute(select(enroll_tokens).where(enroll_tokens.c.id == token_id)).one())

    # --- nonces and requests (the provisioning service) ------------------------------------------

    def new_nonce(self, center_id: str, lifetime: timedelta = NONCE_LIFETIME) -> tuple[str, datetime]:
        now = self.db.now()
        nonce = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(delete(enroll_nonces).where(enroll_nonces.c.expires_at < now - timedelta(days=1)))
            conn.execute(
                insert(enroll_nonces).values(
                    nonce_sha256=sha256(nonce), center_id=center_id, created_at=now, expires_at=now + lifetime
                )
            )
        return nonce, now + lifetime

    def enroll(
        self,
        center_id: str,
        *,
        nonce: str,
        token: str | None,
        key_sha256: str,
        csr: str,
        machine: dict[str, Any],
        address: str,
    ) -> EnrollRequestRow:
        """Check and record one enrollment request in one transaction: the nonce (once, in time), the
        allowlist, the token (once, in time, this center), the key (never seen before). With a token
        the request is approved at once (kiosk id, slot and purpose from the token); without one it waits
        as pending. Raises ``Refused`` with the reason."""
        now = self.db.now()
        with self.db.write() as conn:
            settings = self._center(conn, center_id)
            found = conn.execute(
                select(enroll_nonces).where(enroll_nonces.c.nonce_sha256 == sha256(nonce))
            ).first()
            if found is None or found.center_id != center_id:
                raise Refused("nonce_unknown", "the center did not give out this nonce (ask for a new one)")
            if found.used_at is not None:
                raise Refused("replayed", "this enrollment request was sent before: a replay is refused")
            if found.expires_at <= now:
                raise Refused("nonce_unknown", "the nonce expired: start the enrollment again")
            conn.execute(
                update(enroll_nonces).where(enroll_nonces.c.nonce_sha256 == sha256(nonce)).values(used_at=now)
            )
            serial = str(machine.get("serial") or "")
            if settings.allowlist_required:
                listed = conn.execute(
                    select(enroll_allowlist.c.machine_serial).where(
                        enroll_allowlist.c.center_id == center_id, enroll_allowlist.c.machine_serial == serial
                    )
                ).first()
                if not serial or listed is None:
                    raise Refused(
                        "not_allowlisted", f"machine serial {serial or '(none)'!r} is not on the allowlist"
                    )
            reused = conn.execute(
                select(kiosk_certificates.c.serial).where(kiosk_certificates.c.key_sha256 == key_sha256)
            ).first()
            if (
                reused is not None
                or conn.execute(
                    select(enroll_requests.c.id).where(
                        enroll_requests.c.key_sha256 == key_sha256, enroll_requests.c.state != "rejected"
                    )
                ).first()
            ):
                raise Refused("key_reused", "this key was used before: make a new key (factory reset)")
            request_id = secrets.token_hex(16)
            values: dict[str, Any] = {
                "id": request_id,
                "center_id": center_id,
                "state": "pending",
                "created_at": now,
                "csr": csr,
                "key_sha256": key_sha256,
                "machine": machine,
                "address": address[:64],
            }
            if token is not None:
                row = conn.execute(
                    select(enroll_tokens).where(enroll_tokens.c.token_sha256 == sha256(token))
                ).first()
                if row is None or row.cancelled_at is not None:
                    raise Refused("token_unknown", "this enrollment code is not known (or was cancelled)")
                if row.center_id != center_id:
                    raise Refused("token_wrong_center", "this enrollment code belongs to another center")
                if row.used_at is not None:
                    raise Refused("token_used", "this enrollment code was used already: it works once")
                if row.expires_at <= now:
                    raise Refused("token_expired", "this enrollment code expired: make a new one")
                claimed = conn.execute(
                    update(enroll_tokens)
                    .where(enroll_tokens.c.id == row.id, enroll_tokens.c.used_at.is_(None))
                    .values(used_at=now, request_id=request_id)
                )
                if claimed.rowcount != 1:  # another request took it between our read and write
                    raise Refused("token_used", "this enrollment code was used already: it works once")
                values.update(
                    state="approved",
                    token_id=row.id,
                    kiosk_id=row.kiosk_id,
                    slot=row.slot,
                    purpose=row.purpose,
                    decided_at=now,
                    decided_by_name=f"token:{row.created_by_name}",
                )
            conn.execute(insert(enroll_requests).values(**values))
            if token is None:
                log_changes(conn, now, [(center_id, None, "center")])
            return _stored_request(conn, request_id)

    def request(self, request_id: str) -> EnrollRequestRow:
        with self.db.read() as conn:
            row = conn.execute(select(enroll_requests).where(enroll_requests.c.id == request_id)).first()
        if row is None:
            raise NotFoundError(f"enrollment request {request_id} not found")
        return _request(row)

    def pending(self, scope: Scope, center_id: str) -> list[EnrollRequestRow]:
        with self.db.read() as conn:
            self._scoped_center(conn, scope, center_id)
            rows = conn.execute(
                select(enroll_requests)
                .where(enroll_requests.c.center_id == center_id, enroll_requests.c.state == "pending")
                .order_by(enroll_requests.c.created_at)
            )
            return [_request(r) for r in rows]

    def approve(
        self,
        scope: Scope,
        request_id: str,
        *,
        kiosk_id: str,
        slot: int | None = None,
        purpose: str = "new",
        username: str,
    ) -> EnrollRequestRow:
        """A person approves a pending kiosk as ``kiosk_id`` (a new one in ``slot``, or the replacement
        of an enrolled kiosk); the provisioning service issues its certificate at the kiosk's next poll."""
        if not is_kiosk_id(kiosk_id):
            raise ValidationError(f"{kiosk_id!r} cannot be a kiosk id (a-z 0-9 -, not a reserved name)")
        now = self.db.now()
        with self.db.write() as conn:
            row = self._pending_request(conn, scope, request_id)
            kiosk = conn.execute(
                select(kiosks.c.center_id, kiosks.c.slot).where(kiosks.c.id == kiosk_id)
            ).first()
            if purpose == "replace":
                if kiosk is None or kiosk.center_id != row.center_id:
                    raise NotFoundError(f"kiosk {kiosk_id!r} is not a kiosk of {row.center_id}")
                slot = kiosk.slot
            else:
                if kiosk is not None:
                    raise ConflictError(f"kiosk {kiosk_id!r} exists already: approve it as a replacement")
                if slot is None:
                    slot = self._free_slot(conn, row.center_id)
                if conn.execute(
                    select(kiosks.c.id).where(kiosks.c.center_id == row.center_id, kiosks.c.slot == slot)
                ).first():
                    raise ConflictError(f"slot {slot} of {row.center_id} is taken")
            conn.execute(
                update(enroll_requests)
                .where(enroll_requests.c.id == request_id)
                .values(
                    state="approved",
                    kiosk_id=kiosk_id,
                    slot=slot,
                    purpose=purpose,
                    decided_at=now,
                    decided_by_name=username[:64],
                )
            )
            log_changes(conn, now, [(row.center_id, None, "center")])
            return _stored_request(conn, request_id)

    def reject(self, scope: Scope, request_id: str, *, username: str, reason: str = "") -> EnrollRequestRow:
        now = self.db.now()
        with self.db.write() as conn:
            row = self._pending_request(conn, scope, request_id)
            conn.execute(
                update(enroll_requests)
                .where(enroll_requests.c.id == request_id)
                .values(state="rejected", decided_at=now, decided_by_name=username[:64], reason=reason[:300])
            )
            log_changes(conn, now, [(row.center_id, None, "center")])
            return _stored_request(conn, request_id)

    def _pending_request(self, conn: Connection, scope: Scope, request_id: str) -> Any:
        """The request a person approves or rejects: in their scope and still pending."""
        row = self._scoped_request(conn, scope, request_id)
        if row.state != "pending":
            raise ConflictError(f"request {request_id} is {row.state}, not pending")
        return row

    def _scoped_request(self, conn: Connection, scope: Scope, request_id: str) -> Any:
        row = conn.execute(
            select(enroll_requests).where(
                enroll_requests.c.id == request_id, scope.centers_filter(enroll_requests.c.center_id)
            )
        ).first()
        if row is None:
            raise NotFoundError(f"enrollment request {request_id} not found")
        return row

    def record_issue(
        self,
        request_id: str,
        *,
        serial: str,
        not_before: datetime,
        not_after: datetime,
        key_sha256: str,
        pem: str,
    ) -> tuple[EnrollRequestRow, list[str]]:
        """The provisioning service issued the certificate of an approved request. A new kiosk enters the
        registry (kiosks row with its slot, identity, certificate); a replacement keeps the kiosk's row,
        revokes every certificate it had and records the replacement. Returns the request and the
        serials revoked (the service applies them: ACL, CRL, the old PC's connection closed)."""
        now = self.db.now()
        with self.db.write() as conn:
            row = conn.execute(select(enroll_requests).where(enroll_requests.c.id == request_id)).first()
            if row is None or row.state != "approved" or row.kiosk_id is None:
                raise ConflictError(f"request {request_id} is not approved")
            kiosk_id, center_id = row.kiosk_id, row.center_id
            machine = row.machine or {}
            revoked: list[str] = []
            previous = conn.execute(
                select(kiosk_identities).where(kiosk_identities.c.kiosk_id == kiosk_id)
            ).first()
            if row.purpose == "replace":
                revoked = _revoke_certificates(conn, kiosk_id, now, "replaced")
                conn.execute(
                    insert(kiosk_replacements).values(
                        kiosk_id=kiosk_id,
                        center_id=center_id,
                        at=now,
                        old_serials=revoked,
                        new_serial=serial,
                        old_machine=previous.machine if previous is not None else None,
                        new_machine=machine,
                        by_name=row.decided_by_name or "",
                    )
                )
            else:
                exists = conn.execute(select(kiosks.c.id).where(kiosks.c.id == kiosk_id)).first()
                if exists is None:
                    check_id(kiosk_id, "kiosk id")
                    conn.execute(
                        insert(kiosks).values(
                            id=kiosk_id,
                            center_id=center_id,
                            slot=row.slot,
                            label="",
                            heartbeat_s=30,
                            created_at=now,
                        )
                    )
            identity = {
                "center_id": center_id,
                "state": "enrolled",
                "machine_serial": str(machine.get("serial", "")),
                "machine": machine,
                "updated_at": now,
            }
            if previous is None:
                conn.execute(insert(kiosk_identities).values(kiosk_id=kiosk_id, enrolled_at=now, **identity))
            else:
                conn.execute(
                    update(kiosk_identities)
                    .where(kiosk_identities.c.kiosk_id == kiosk_id)
                    .values(enrolled_at=now, **identity)
                )
            _insert_active_certificate(
                conn,
                serial=serial,
                kiosk_id=kiosk_id,
                center_id=center_id,
                key_sha256=key_sha256,
                not_before=not_before,
                not_after=not_after,
                issued_at=now,
                source="replacement" if row.purpose == "replace" else "enrollment",
                request_id=request_id,
                pem=pem,
            )
            conn.execute(
                update(enroll_requests)
                .where(enroll_requests.c.id == request_id)
                .values(state="issued", certificate_serial=serial)
            )
            self._bump(conn, center_id)
            log_changes(conn, now, [(center_id, kiosk_id, "kiosk")])
            issued = _stored_request(conn, request_id)
        return issued, revoked

    def certificate_pem(self, serial: str) -> str:
        with self.db.read() as conn:
            pem = conn.execute(
                select(kiosk_certificates.c.pem).where(kiosk_certificates.c.serial == serial)
            ).scalar()
        if pem is None:
            raise NotFoundError(f"certificate {serial} not found")
        return str(pem)

    # --- renewal ----------------------------------------------------------------------------------

    def record_renewal(
        self,
        center_id: str,
        kiosk_id: str,
        *,
        current_serial: str,
        serial: str,
        not_before: datetime,
        not_after: datetime,
        key_sha256: str,
        request_id: str,
        pem: str,
    ) -> None:
        """The agent's renewal: the new certificate becomes active, the one it connected with is
        superseded (and revoked by the service after a grace time, once the kiosk uses the new one)."""
        now = self.db.now()
        with self.db.write() as conn:
            conn.execute(
                update(kiosk_certificates)
                .where(
                    kiosk_certificates.c.kiosk_id == kiosk_id,
                    kiosk_certificates.c.state == "active",
                )
                .values(state="superseded", superseded_at=now)
            )
            _insert_active_certificate(
                conn,
                serial=serial,
                kiosk_id=kiosk_id,
                center_id=center_id,
                key_sha256=key_sha256,
                not_before=not_before,
                not_after=not_after,
                issued_at=now,
                source="renewal",
                request_id=request_id,
                pem=pem,
            )
            log_changes(conn, now, [(center_id, kiosk_id, "kiosk")])

    def renewal_check(
        self, center_id: str, kiosk_id: str, current_serial: str, key_sha256: str
    ) -> str | None:
        """Why a renewal must be refused (an error code of ``cert-response/1``), or None."""
        with self.db.read() as conn:
            state = self._identity_state(conn, kiosk_id)
            center = conn.execute(
                select(kiosk_identities.c.center_id).where(kiosk_identities.c.kiosk_id == kiosk_id)
            ).scalar()
            if state is None or center != center_id:
                return "not_enrolled"
            if state != "enrolled":
                return "revoked"
            current = conn.execute(
                select(kiosk_certificates).where(
                    kiosk_certificates.c.serial == current_serial, kiosk_certificates.c.kiosk_id == kiosk_id
                )
            ).first()
            # superseded: renewed, but the answer never reached the kiosk (it asks again with the old one)
            if current is None or current.state not in ("active", "superseded"):
                return "wrong_serial"
            if (
                conn.execute(
                    select(kiosk_certificates.c.serial).where(kiosk_certificates.c.key_sha256 == key_sha256)
                ).first()
                is not None
            ):
                return "key_reused"
        return None

    def _identity_state(self, conn: Connection, kiosk_id: str) -> str | None:
        return conn.execute(
            select(kiosk_identities.c.state).where(kiosk_identities.c.kiosk_id == kiosk_id)
        ).scalar()

    # --- revocation -------------------------------------------------------------------------------

    def request_revocation(
        self, scope: Scope, kiosk_id: str, *, reason: str = "key_compromise", decommission: bool = False
    ) -> list[str]:
        """Revoke every certificate of a kiosk (stolen, broken, retired). The kiosk leaves the ACL and
        the registry at the service's next pass (within a second); returns the serials."""
        now = self.db.now()
        with self.db.write() as conn:
            row = conn.execute(
                select(kiosk_identities).where(
                    kiosk_identities.c.kiosk_id == kiosk_id,
                    scope.centers_filter(kiosk_identities.c.center_id),
                )
            ).first()
            if row is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} is not enrolled")
            serials = _revoke_certificates(conn, kiosk_id, now, reason)
            conn.execute(
                update(kiosk_identities)
                .where(kiosk_identities.c.kiosk_id == kiosk_id)
                .values(state="decommissioned" if decommission else "revoked", updated_at=now)
            )
            if decommission:  # the slot goes back to the center; the kiosk's history stays
                conn.execute(update(kiosks).where(kiosks.c.id == kiosk_id).values(slot=None))
            self._bump(conn, row.center_id)
            log_changes(conn, now, [(row.center_id, kiosk_id, "kiosk")])
        return serials

    def revoke_superseded(self, center_id: str, older_than: datetime) -> list[str]:
        """Superseded certificates (renewed) are revoked once the grace time after renewal is over."""
        now = self.db.now()
        with self.db.write() as conn:
            serials = [
                r.serial
                for r in conn.execute(
                    select(kiosk_certificates.c.serial).where(
                        kiosk_certificates.c.center_id == center_id,
                        kiosk_certificates.c.state == "superseded",
                        kiosk_certificates.c.superseded_at <= older_than,
                    )
                )
            ]
            if serials:
                conn.execute(
                    update(kiosk_certificates)
                    .where(kiosk_certificates.c.serial.in_(serials))
                    .values(state="revoked", revoked_at=now, revoke_reason="superseded", applied_at=None)
                )
                self._bump(conn, center_id)
        return serials

    def unapplied_revocations(self, center_id: str) -> list[Certificate]:
        with self.db.read() as conn:
            return [
                _cert(r)
                for r in conn.execute(
                    select(kiosk_certificates)
                    .where(
                        kiosk_certificates.c.center_id == center_id,
                        kiosk_certificates.c.state == "revoked",
                        kiosk_certificates.c.applied_at.is_(None),
                    )
                    .order_by(kiosk_certificates.c.revoked_at)
                )
            ]

    def mark_applied(self, serials: list[str]) -> None:
        if not serials:
            return
        with self.db.write() as conn:
            conn.execute(
                update(kiosk_certificates)
                .where(kiosk_certificates.c.serial.in_(serials))
                .values(applied_at=self.db.now())
            )

    def crl_entries(self, center_id: str) -> list[tuple[str, datetime, str]]:
        """(serial, revoked at, reason) of every revoked certificate not yet expired: the CRL's content."""
        now = self.db.now()
        with self.db.read() as conn:
            return [
                (r.serial, r.revoked_at, r.revoke_reason or "unspecified")
                for r in conn.execute(
                    select(kiosk_certificates)
                    .where(
                        kiosk_certificates.c.center_id == center_id,
                        kiosk_certificates.c.state == "revoked",
                        kiosk_certificates.c.not_after > now,
                    )
                    .order_by(kiosk_certificates.c.revoked_at)
                )
            ]

    # --- the registry the broker and the allocator see --------------------------------------------

    def grants(self, center_id: str) -> list[Grant]:
        """Enrolled kiosks with their slot and the serials they may connect with now."""
        now = self.db.now()
        with self.db.read() as conn:
            rows = conn.execute(
                select(kiosk_identities.c.kiosk_id, kiosks.c.slot, kiosk_certificates.c.serial)
                .join(kiosks, kiosks.c.id == kiosk_identities.c.kiosk_id)
                .outerjoin(
                    kiosk_certificates,
                    and_(
                        kiosk_certificates.c.kiosk_id == kiosk_identities.c.kiosk_id,
                        kiosk_certificates.c.state.in_(("active", "superseded")),
                        kiosk_certificates.c.not_after > now,
                    ),
                )
                .where(kiosk_identities.c.center_id == center_id, kiosk_identities.c.state == "enrolled")
                .order_by(kiosk_identities.c.kiosk_id)
            )
            grants: dict[str, tuple[int | None, list[str]]] = {}
            for r in rows:
                _slot, serials = grants.setdefault(r.kiosk_id, (r.slot, []))
                if r.serial:
                    serials.append(r.serial)
        return [Grant(k, center_id, slot, tuple(serials)) for k, (slot, serials) in grants.items() if serials]

    def registry(self, center_id: str) -> EnrolledKiosks:
        generation = self.generation(center_id)
        return EnrolledKiosks(
            center_id,
            generation,
            {g.kiosk_id: EnrolledKiosk(g.slot, list(g.serials[:8])) for g in self.grants(center_id)},
        )

    def enrolled_slot(self, center_id: str, kiosk_id: str) -> int | None:
        """The slot of an enrolled kiosk of ``center_id``; None when it is not enrolled there (refuse it)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(kiosks.c.slot)
                .join(kiosk_identities, kiosk_identities.c.kiosk_id == kiosks.c.id)
                .where(
                    kiosks.c.id == kiosk_id,
                    kiosk_identities.c.center_id == center_id,
                    kiosk_identities.c.state == "enrolled",
                )
            ).first()
        return None if row is None else row.slot

    # --- allowlist --------------------------------------------------------------------------------

    def allow(
        self, scope: Scope, center_id: str, machine_serial: str, *, note: str = "", username: str
    ) -> None:
        serial = machine_serial.strip()
        if not serial or len(serial) > 128:
            raise ValidationError("a machine serial has 1 to 128 characters")
        with self.db.write() as conn:
            self._scoped_center(conn, scope, center_id)
            statement = self.db.insert(enroll_allowlist).values(
                center_id=center_id,
                machine_serial=serial,
                note=note[:200],
                added_by_name=username[:64],
                added_at=self.db.now(),
            )
            conn.execute(statement.on_conflict_do_nothing())

    def disallow(self, scope: Scope, center_id: str, machine_serial: str) -> None:
        with self.db.write() as conn:
            self._scoped_center(conn, scope, center_id)
            conn.execute(
                delete(enroll_allowlist).where(
                    enroll_allowlist.c.center_id == center_id,
                    enroll_allowlist.c.machine_serial == machine_serial,
                )
            )

    def allowlist(self, scope: Scope, center_id: str) -> list[AllowEntry]:
        with self.db.read() as conn:
            self._scoped_center(conn, scope, center_id)
            return [
                AllowEntry(r.center_id, r.machine_serial, r.note, r.added_by_name, r.added_at)
                for r in conn.execute(
                    select(enroll_allowlist)
                    .where(enroll_allowlist.c.center_id == center_id)
                    .order_by(enroll_allowlist.c.machine_serial)
                )
            ]

    # --- a kiosk's page ---------------------------------------------------------------------------

    def identity(self, scope: Scope, kiosk_id: str) -> Identity | None:
        with self.db.read() as conn:
            self._scoped_kiosk(conn, scope, kiosk_id)
            row = conn.execute(
                select(kiosk_identities).where(kiosk_identities.c.kiosk_id == kiosk_id)
            ).first()
        return None if row is None else _identity(row)

    def _scoped_kiosk(self, conn: Connection, scope: Scope, kiosk_id: str) -> None:
        found = conn.execute(
            select(kiosks.c.id).where(kiosks.c.id == kiosk_id, scope.centers_filter(kiosks.c.center_id))
        ).first()
        if found is None:
            raise NotFoundError(f"kiosk {kiosk_id!r} not found")

    def certificates(self, scope: Scope, kiosk_id: str) -> list[Certificate]:
        with self.db.read() as conn:
            self._scoped_kiosk(conn, scope, kiosk_id)
            return [
                _cert(r)
                for r in conn.execute(
                    select(kiosk_certificates)
                    .where(kiosk_certificates.c.kiosk_id == kiosk_id)
                    .order_by(kiosk_certificates.c.issued_at.desc())
                )
            ]

    def replacements(self, scope: Scope, kiosk_id: str) -> list[Replacement]:
        with self.db.read() as conn:
            self._scoped_kiosk(conn, scope, kiosk_id)
            return [
                Replacement(
                    r.id,
                    r.kiosk_id,
                    r.at,
                    list(r.old_serials or []),
                    r.new_serial,
                    r.old_machine,
                    r.new_machine,
                    r.by_name,
                )
                for r in conn.execute(
                    select(kiosk_replacements)
                    .where(kiosk_replacements.c.kiosk_id == kiosk_id)
                    .order_by(kiosk_replacements.c.at.desc())
                )
            ]

    def record_selftest(
        self,
        center_id: str,
        kiosk_id: str,
        *,
        event_id: str,
        at: datetime,
        result: str,
        source: str,
        report: dict[str, Any],
    ) -> bool:
        """A self-test report from a kiosk (the provisioning service reads its event); False: a repeat."""
        with self.db.write() as conn:
            owner = conn.execute(select(kiosks.c.center_id).where(kiosks.c.id == kiosk_id)).scalar()
            if owner is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} is not in the registry")
            if owner != center_id:
                raise ConflictError(f"kiosk {kiosk_id!r} belongs to {owner}, not {center_id}")
            statement = self.db.insert(kiosk_selftests).values(
                event_id=event_id,
                kiosk_id=kiosk_id,
                center_id=center_id,
                at=at,
                received_at=self.db.now(),
                result=result,
                source=source,
                report=report,
            )
            done = conn.execute(
                statement.on_conflict_do_nothing().returning(kiosk_selftests.c.event_id)
            ).first()
            if done is not None:
                log_changes(conn, self.db.now(), [(center_id, kiosk_id, "kiosk")])
            return done is not None

    def last_selftest(self, scope: Scope, kiosk_id: str) -> SelfTestReport | None:
        with self.db.read() as conn:
            self._scoped_kiosk(conn, scope, kiosk_id)
            row = conn.execute(
                select(kiosk_selftests)
                .where(kiosk_selftests.c.kiosk_id == kiosk_id)
                .order_by(kiosk_selftests.c.at.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return SelfTestReport(row.event_id, row.kiosk_id, row.at, row.result, row.source, row.report)

    def event_count(self, scope: Scope, kiosk_id: str) -> int:
        """Events stored for a kiosk (the history a replacement keeps)."""
        with self.db.read() as conn:
            self._scoped_kiosk(conn, scope, kiosk_id)
            return int(
                conn.execute(
                    select(func.count()).select_from(events).where(events.c.kiosk_id == kiosk_id)
                ).scalar_one()
            )

    def identities(self, scope: Scope, center_id: str) -> list[Identity]:
        with self.db.read() as conn:
            self._scoped_center(conn, scope, center_id)
            return [
                _identity(r)
                for r in conn.execute(
                    select(kiosk_identities)
                    .where(kiosk_identities.c.center_id == center_id)
                    .order_by(kiosk_identities.c.kiosk_id)
                )
            ]

    def expiring(self, center_id: str, before: datetime) -> list[Certificate]:
        """Active certificates that end before ``before`` (a kiosk that stopped renewing)."""
        with self.db.read() as conn:
            return [
                _cert(r)
                for r in conn.execute(
                    select(kiosk_certificates).where(
                        kiosk_certificates.c.center_id == center_id,
                        kiosk_certificates.c.state == "active",
                        or_(kiosk_certificates.c.not_after < before),
                    )
                )
            ]


def _insert_active_certificate(
    conn: Connection,
    *,
    serial: str,
    kiosk_id: str,
    center_id: str,
    key_sha256: str,
    not_before: datetime,
    not_after: datetime,
    issued_at: datetime,
    source: str,
    request_id: str,
    pem: str,
) -> None:
    """A certificate the center issued, from now the kiosk's active one (enrollment, replacement or
    renewal: ``source``)."""
    conn.execute(
        insert(kiosk_certificates).values(
            serial=serial,
            kiosk_id=kiosk_id,
            center_id=center_id,
            key_sha256=key_sha256,
            not_before=not_before,
            not_after=not_after,
            issued_at=issued_at,
            source=source,
            request_id=request_id,
            state="active",
            pem=pem,
        )
    )
