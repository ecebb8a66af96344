"""The MQTT ingest, alarms of a center, notifications, command blobs (phase 2).

Additive: new tables only, plus ``alarms.kiosk_id`` nullable (an alarm of the center itself: its
allocator is offline) with its own "one active per (center, type)" index. On SQLite the nullable
change copies the table (batch mode) from its definition here, so its indexes come back exactly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleet.store.types import BigId, Json, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


#: the naming convention of fleet.store.schema (as of 0001), so the copied table keeps its names
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _alarms(kiosk_nullable: bool) -> sa.Table:
    """The alarms table as 0001 made it (with kiosk_id nullable or not), for SQLite's table copy."""
    return sa.Table(
        "alarms",
        sa.MetaData(naming_convention=NAMING),
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("center_id", sa.String(64), sa.ForeignKey("centers.id"), nullable=False),
        sa.Column("kiosk_id", sa.String(64), sa.ForeignKey("kiosks.id"), nullable=kiosk_nullable),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("device", sa.String(32)),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("detail", Json),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime()),
        sa.Column("acknowledged_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("acknowledged_at", UtcDateTime()),
        sa.Column("last_reminded_at", UtcDateTime()),
        sa.Column("reminders", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("severity IN ('critical', 'major', 'minor', 'warning')", name="severity"),
        sa.Index(
            "uq_alarms_active_kiosk_type",
            "kiosk_id",
            "type",
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        ),
        sa.Index("ix_alarms_center_id_active_started_at", "center_id", "active", "started_at"),
        sa.Index("ix_alarms_kiosk_id_started_at", "kiosk_id", "started_at"),
    )


def _set_kiosk_nullable(nullable: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("alarms", recreate="always", copy_from=_alarms(not nullable)) as batch:
            batch.alter_column("kiosk_id", existing_type=sa.String(64), nullable=nullable)
    else:
        op.alter_column("alarms", "kiosk_id", existing_type=sa.String(64), nullable=nullable)


def upgrade() -> None:
    _set_kiosk_nullable(True)
    op.create_index(
        "uq_alarms_active_center_type",
        "alarms",
        ["center_id", "type"],
        unique=True,
        sqlite_where=sa.text("active AND kiosk_id IS NULL"),
        postgresql_where=sa.text("active AND kiosk_id IS NULL"),
    )

    op.create_table(
        "ingest_workers",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("stopped_at", UtcDateTime(), nullable=True),
        sa.Column("stats", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_workers")),
    )
    op.create_table(
        "ingest_refusals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_at", UtcDateTime(), nullable=False),
        sa.Column("last_at", UtcDateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_refusals")),
        sa.UniqueConstraint(
            "center_id", "kiosk_id", "reason", name=op.f("uq_ingest_refusals_center_id_kiosk_id_reason")
        ),
    )
    op.create_index(op.f("ix_ingest_refusals_last_at"), "ingest_refusals", ["last_at"], unique=False)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "command_blobs",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kiosk_id", "request_id", name=op.f("pk_command_blobs")),
    )
    op.create_index(op.f("ix_command_blobs_received_at"), "command_blobs", ["received_at"], unique=False)
    op.create_table(
        "config_publications",
        sa.Column("push_id", sa.BigInteger(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["config_pushes.id"],
            name=op.f("fk_config_publications_push_id_config_pushes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("push_id", name=op.f("pk_config_publications")),
    )
    op.create_table(
        "alarm_notices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint("event IN ('raised', 'reminder', 'cleared')", name=op.f("ck_alarm_notices_event")),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_notices_alarm_id_alarms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_notices")),
        sa.UniqueConstraint(
            "alarm_id", "event", "number", name=op.f("uq_alarm_notices_alarm_id_event_number")
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.BigInteger(), nullable=False),
        sa.Column("route_id", sa.BigInteger(), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f("ck_notifications_status")),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["alarm_notices.id"],
            name=op.f("fk_notifications_notice_id_alarm_notices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["notification_routes.id"],
            name=op.f("fk_notifications_route_id_notification_routes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("notice_id", "route_id", name=op.f("uq_notifications_notice_id_route_id")),
    )
    op.create_index(op.f("ix_notifications_center_id_id"), "notifications", ["center_id", "id"], unique=False)
    op.create_index(
        op.f("ix_notifications_status_next_attempt_at"),
        "notifications",
        ["status", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_notifications_status_next_attempt_at"), "notifications")
    op.drop_index(op.f("ix_notifications_center_id_id"), "notifications")
    op.drop_table("notifications")
    op.drop_table("alarm_notices")
    op.drop_table("config_publications")
    op.drop_index(op.f("ix_command_blobs_received_at"), "command_blobs")
    op.drop_table("command_blobs")
    op.drop_table("leases")
    op.drop_index(op.f("ix_ingest_refusals_last_at"), "ingest_refusals")
    op.drop_table("ingest_refusals")
    op.drop_table("ingest_workers")
    op.drop_index(
        "uq_alarms_active_center_type",
        "alarms",
        sqlite_where=sa.text("active AND kiosk_id IS NULL"),
        postgresql_where=sa.text("active AND kiosk_id IS NULL"),
    )
    op.execute("DELETE FROM alarms WHERE kiosk_id IS NULL")  # center alarms cannot exist in 0001
    _set_kiosk_nullable(False)
