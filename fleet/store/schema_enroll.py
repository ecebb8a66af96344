"""The provisioning tables (migration 0003): enrollment tokens and nonces, pending kiosks, the allowlist
of machine serials, certificates and their serials, replacements, self-test reports.

Additive only: no existing table changes. They live in ``fleet.store.schema``'s ``metadata`` (this module
is imported with the store), so the migration test compares them like every other table.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from fleet.store.schema import ID, _in, metadata
from fleet.store.types import BigId, Json, UtcDateTime

REQUEST_STATES = ("pending", "approved", "rejected", "issued")
TOKEN_PURPOSES = ("new", "replace")
CERT_STATES = ("active", "superseded", "revoked")
IDENTITY_STATES = ("enrolled", "revoked", "decommissioned")

enroll_centers = Table(
    "enroll_centers",
    metadata,
    # How a center's kiosks enroll: where the endpoint is and which root CA it is pinned to (QR code)
    Column("center_id", ID, ForeignKey("centers.id"), primary_key=True),
    Column("enroll_host", String(253), nullable=False),
    Column("enroll_port", Integer, nullable=False),
    Column("ca_fingerprint", String(64), nullable=False),
    Column("broker_host", String(253), nullable=False),
    Column("broker_port", Integer, nullable=False),
    Column("topic_root", String(64), nullable=False),
    Column("offline_base", Integer, nullable=False),
    Column("offline_block", Integer, nullable=False),
    Column("allowlist_required", Boolean, nullable=False),
    # grows with every change the broker must see (enrolled, replaced, revoked): ACL, CRL, registry file
    Column("generation", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

enroll_tokens = Table(
    "enroll_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),  # the token itself is shown once
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("kiosk_id", ID, nullable=False),
    Column("slot", Integer),
    Column("purpose", String(16), nullable=False),
    Column("created_by", BigInteger, ForeignKey("users.id")),
    Column("created_by_name", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime),
    Column("request_id", String(32)),
    Column("cancelled_at", UtcDateTime),
    CheckConstraint(_in("purpose", TOKEN_PURPOSES), name="purpose"),
    Index(None, "center_id", "created_at"),
)

enroll_nonces = Table(
    "enroll_nonces",
    metadata,
    Column("nonce_sha256", String(64), primary_key=True),
    Column("center_id", ID, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("used_at", UtcDateTime),
)

enroll_requests = Table(
    "enroll_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("csr", Text, nullable=False),
    Column("key_sha256", String(64), nullable=False, index=True),
    Column("machine", Json, nullable=False),
    Column("address", String(64), nullable=False),
    Column("token_id", BigInteger, ForeignKey("enroll_tokens.id")),
    Column("kiosk_id", ID),
    Column("slot", Integer),
    Column("purpose", String(16)),
    Column("decided_at", UtcDateTime),
    Column("decided_by_name", String(64)),
    Column("reason", String(300)),
    Column("certificate_serial", String(40)),
    CheckConstraint(_in("state", REQUEST_STATES), name="state"),
    Index(None, "center_id", "state", "created_at"),
)

enroll_allowlist = Table(
    "enroll_allowlist",
    metadata,
    Column("center_id", ID, ForeignKey("centers.id"), primary_key=True),
    Column("machine_serial", String(128), primary_key=True),
    Column("note", String(200), nullable=False, server_default=""),
    Column("added_by_name", String(64), nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
)

kiosk_identities = Table(
    "kiosk_identities",
    metadata,
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), primary_key=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("machine_serial", String(128), nullable=False, server_default=""),
    Column("machine", Json),
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(_in("state", IDENTITY_STATES), name="state"),
    Index(None, "center_id", "state"),
)

kiosk_certificates = Table(
    "kiosk_certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("key_sha256", String(64), nullable=False, index=True),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # enrollment | renewal | replacement
    Column("request_id", String(64)),
    Column("state", String(16), nullable=False),
    Column("superseded_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("revoke_reason", String(32)),
    # when the revocation reached the broker (ACL, CRL, the connection closed): the service's work list
    Column("applied_at", UtcDateTime),
    Column("pem", Text, nullable=False),  # public: a kiosk whose answer was lost gets it again
    CheckConstraint(_in("state", CERT_STATES), name="state"),
    Index(None, "kiosk_id", "state"),
    Index(None, "center_id", "state"),
)

kiosk_replacements = Table(
    "kiosk_replacements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False, index=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("old_serials", Json, nullable=False),
    Column("new_serial", String(40), nullable=False),
    Column("old_machine", Json),
    Column("new_machine", Json),
    Column("by_name", String(64), nullable=False),
)

kiosk_selftests = Table(
    "kiosk_selftests",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("result", String(8), nullable=False),
    Column("source", String(8), nullable=False),
    Column("report", Json, nullable=False),
    Index(None, "kiosk_id", "at"),
)
