"""Provisioning (issue 12): enrollment tokens and nonces, pending kiosks, the allowlist of machine
serials, kiosk identities, certificates and their serials, replacements, self-test reports.

Additive: new tables only. It follows 0002 (the ingest's) when that migration is present and 0001
otherwise, so the chain stays one line whichever branch is merged first.

Revision ID: 0004
Revises: 0003 (the queue)
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleet.store.types import BigId, Json, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enroll_nonces",
        sa.Column("nonce_sha256", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce_sha256", name=op.f("pk_enroll_nonces")),
    )
    with op.batch_alter_table("enroll_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enroll_nonces_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "enroll_allowlist",
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("machine_serial", sa.String(length=128), nullable=False),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.Column("added_by_name", sa.String(length=64), nullable=False),
        sa.Column("added_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_enroll_allowlist_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("center_id", "machine_serial", name=op.f("pk_enroll_allowlist")),
    )
    op.create_table(
        "enroll_centers",
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("enroll_host", sa.String(length=253), nullable=False),
        sa.Column("enroll_port", sa.Integer(), nullable=False),
        sa.Column("ca_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("broker_host", sa.String(length=253), nullable=False),
        sa.Column("broker_port", sa.Integer(), nullable=False),
        sa.Column("topic_root", sa.String(length=64), nullable=False),
        sa.Column("offline_base", sa.Integer(), nullable=False),
        sa.Column("offline_block", sa.Integer(), nullable=False),
        sa.Column("allowlist_required", sa.Boolean(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_enroll_centers_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("center_id", name=op.f("pk_enroll_centers")),
    )
    op.create_table(
        "enroll_tokens",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_by_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("cancelled_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("purpose IN ('new', 'replace')", name=op.f("ck_enroll_tokens_purpose")),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_enroll_tokens_center_id_centers")
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_enroll_tokens_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enroll_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_enroll_tokens_token_sha256")),
    )
    with op.batch_alter_table("enroll_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enroll_tokens_center_id_created_at"), ["center_id", "created_at"], unique=False
        )

    op.create_table(
        "kiosk_certificates",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("not_after", UtcDateTime(), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("superseded_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=32), nullable=True),
        sa.Column("applied_at", UtcDateTime(), nullable=True),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'superseded', 'revoked')", name=op.f("ck_kiosk_certificates_state")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_kiosk_certificates_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_certificates_kiosk_id_kiosks")
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_kiosk_certificates")),
    )
    with op.batch_alter_table("kiosk_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kiosk_certificates_center_id_state"), ["center_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_kiosk_certificates_key_sha256"), ["key_sha256"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kiosk_certificates_kiosk_id_state"), ["kiosk_id", "state"], unique=False
        )

    op.create_table(
        "kiosk_identities",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("machine_serial", sa.String(length=128), server_default="", nullable=False),
        sa.Column("machine", Json, nullable=True),
        sa.Column("enrolled_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('enrolled', 'revoked', 'decommissioned')", name=op.f("ck_kiosk_identities_state")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_kiosk_identities_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_identities_kiosk_id_kiosks")
        ),
        sa.PrimaryKeyConstraint("kiosk_id", name=op.f("pk_kiosk_identities")),
    )
    with op.batch_alter_table("kiosk_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kiosk_identities_center_id_state"), ["center_id", "state"], unique=False
        )

    op.create_table(
        "kiosk_replacements",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("old_serials", Json, nullable=False),
        sa.Column("new_serial", sa.String(length=40), nullable=False),
        sa.Column("old_machine", Json, nullable=True),
        sa.Column("new_machine", Json, nullable=True),
        sa.Column("by_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_kiosk_replacements_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_replacements_kiosk_id_kiosks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_replacements")),
    )
    with op.batch_alter_table("kiosk_replacements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_replacements_kiosk_id"), ["kiosk_id"], unique=False)

    op.create_table(
        "kiosk_selftests",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("report", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_kiosk_selftests_center_id_centers")
        ),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_selftests_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_kiosk_selftests")),
    )
    with op.batch_alter_table("kiosk_selftests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_selftests_kiosk_id_at"), ["kiosk_id", "at"], unique=False)

    op.create_table(
        "enroll_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("csr", sa.Text(), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("machine", Json, nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("kiosk_id", sa.String(length=64), nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("certificate_serial", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'issued')", name=op.f("ck_enroll_requests_state")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_enroll_requests_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["enroll_tokens.id"], name=op.f("fk_enroll_requests_token_id_enroll_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enroll_requests")),
    )
    with op.batch_alter_table("enroll_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enroll_requests_center_id_state_created_at"),
            ["center_id", "state", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_enroll_requests_key_sha256"), ["key_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enroll_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enroll_requests_key_sha256"))
        batch_op.drop_index(batch_op.f("ix_enroll_requests_center_id_state_created_at"))

    op.drop_table("enroll_requests")
    with op.batch_alter_table("kiosk_selftests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_selftests_kiosk_id_at"))

    op.drop_table("kiosk_selftests")
    with op.batch_alter_table("kiosk_replacements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_replacements_kiosk_id"))

    op.drop_table("kiosk_replacements")
    with op.batch_alter_table("kiosk_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_identities_center_id_state"))

    op.drop_table("kiosk_identities")
    with op.batch_alter_table("kiosk_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_certificates_kiosk_id_state"))
        batch_op.drop_index(batch_op.f("ix_kiosk_certificates_key_sha256"))
        batch_op.drop_index(batch_op.f("ix_kiosk_certificates_center_id_state"))

    op.drop_table("kiosk_certificates")
    with op.batch_alter_table("enroll_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enroll_tokens_center_id_created_at"))

    op.drop_table("enroll_tokens")
    op.drop_table("enroll_centers")
    op.drop_table("enroll_allowlist")
    with op.batch_alter_table("enroll_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enroll_nonces_expires_at"))

    op.drop_table("enroll_nonces")
