"""Initial schema of the fleet store (phase 1): registry, status, health, events, alarms, commands,
configuration, accounts, audit, notification routes.

Revision ID: 0001
Revises: -
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleet.store.types import BigId, Json, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=True),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    op.create_index(op.f("ix_changes_at"), "changes", ["at"], unique=False)

    op.create_table(
        "event_keys",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_keys")),
    )
    op.create_index(op.f("ix_event_keys_occurred_at"), "event_keys", ["occurred_at"], unique=False)

    op.create_table(
        "login_attempts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index(op.f("ix_login_attempts_address_at"), "login_attempts", ["address", "at"], unique=False)
    op.create_index(op.f("ix_login_attempts_at"), "login_attempts", ["at"], unique=False)
    op.create_index(op.f("ix_login_attempts_username_at"), "login_attempts", ["username", "at"], unique=False)

    op.create_table(
        "provinces",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provinces")),
    )
    op.create_table(
        "store_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_store_settings")),
    )
    op.create_table(
        "centers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("province_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["province_id"], ["provinces.id"], name=op.f("fk_centers_province_id_provinces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_centers")),
    )
    op.create_index(op.f("ix_centers_province_id"), "centers", ["province_id"], unique=False)

    op.create_table(
        "kiosks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), server_default="", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="unknown", nullable=False),
        sa.Column("state_reason", sa.String(length=32), nullable=True),
        sa.Column("state_since", UtcDateTime(), nullable=True),
        sa.Column("last_seen", UtcDateTime(), nullable=True),
        sa.Column("offline_after", UtcDateTime(), nullable=True),
        sa.Column("heartbeat_s", sa.Integer(), server_default="30", nullable=False),
        sa.Column("bdseq", sa.BigInteger(), nullable=True),
        sa.Column("boot", sa.BigInteger(), nullable=True),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("app_version", sa.String(length=64), nullable=True),
        sa.Column("config_center_version", sa.Integer(), nullable=True),
        sa.Column("config_kiosk_version", sa.Integer(), nullable=True),
        sa.Column("hardware", Json, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('unknown', 'online', 'offline')", name=op.f("ck_kiosks_state")),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], name=op.f("fk_kiosks_center_id_centers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosks")),
        sa.UniqueConstraint("center_id", "slot", name=op.f("uq_kiosks_center_id_slot")),
    )
    op.create_index(op.f("ix_kiosks_center_id_id"), "kiosks", ["center_id", "id"], unique=False)
    op.create_index(op.f("ix_kiosks_center_id_state"), "kiosks", ["center_id", "state"], unique=False)
    op.create_index(op.f("ix_kiosks_state_offline_after"), "kiosks", ["state", "offline_after"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("province_id", sa.String(length=64), nullable=True),
        sa.Column("center_id", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("password_changed_at", UtcDateTime(), nullable=False),
        sa.Column("last_login_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "role IN ('province_admin', 'center_manager', 'technician', 'officer', 'viewer')",
            name=op.f("ck_users_role"),
        ),
        sa.CheckConstraint("(center_id IS NULL) <> (province_id IS NULL)", name=op.f("ck_users_home")),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], name=op.f("fk_users_center_id_centers")),
        sa.ForeignKeyConstraint(
            ["province_id"], ["provinces.id"], name=op.f("fk_users_province_id_provinces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "alarms",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("detail", Json, nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_at", UtcDateTime(), nullable=True),
        sa.Column("last_reminded_at", UtcDateTime(), nullable=True),
        sa.Column("reminders", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "severity IN ('critical', 'major', 'minor', 'warning')", name=op.f("ck_alarms_severity")
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["users.id"], name=op.f("fk_alarms_acknowledged_by_users")
        ),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], name=op.f("fk_alarms_center_id_centers")),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_alarms_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index(
        op.f("ix_alarms_center_id_active_started_at"),
        "alarms",
        ["center_id", "active", "started_at"],
        unique=False,
    )
    op.create_index(op.f("ix_alarms_kiosk_id_started_at"), "alarms", ["kiosk_id", "started_at"], unique=False)
    op.create_index(
        "uq_alarms_active_kiosk_type",
        "alarms",
        ["kiosk_id", "type"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("province_id", sa.String(length=64), nullable=True),
        sa.Column("center_id", sa.String(length=64), nullable=True),
        sa.Column("before", Json, nullable=True),
        sa.Column("after", Json, nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_center_id_id"), "audit_log", ["center_id", "id"], unique=False)
    op.create_index(op.f("ix_audit_log_province_id_id"), "audit_log", ["province_id", "id"], unique=False)

    op.create_table(
        "commands",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("args", Json, nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", UtcDateTime(), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result_reason", sa.Text(), nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("result_at", UtcDateTime(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], name=op.f("fk_commands_center_id_centers")),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_commands_kiosk_id_kiosks")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_commands_requested_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
        sa.UniqueConstraint("kiosk_id", "request_id", name=op.f("uq_commands_kiosk_id_request_id")),
    )
    op.create_index(op.f("ix_commands_kiosk_id_id"), "commands", ["kiosk_id", "id"], unique=False)
    op.create_index(
        op.f("ix_commands_status_requested_at"), "commands", ["status", "requested_at"], unique=False
    )

    op.create_table(
        "config_pushes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.Column("pushed_by", sa.BigInteger(), nullable=True),
        sa.Column("pushed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_config_pushes_center_id_centers")
        ),
        sa.ForeignKeyConstraint(["pushed_by"], ["users.id"], name=op.f("fk_config_pushes_pushed_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_pushes")),
        sa.UniqueConstraint(
            "center_id", "target", "version", name=op.f("uq_config_pushes_center_id_target_version")
        ),
    )
    op.create_table(
        "config_states",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("center_version", sa.Integer(), nullable=True),
        sa.Column("kiosk_version", sa.Integer(), nullable=True),
        sa.Column("app_pending", sa.Boolean(), nullable=False),
        sa.Column("last_refused", Json, nullable=True),
        sa.Column("at", UtcDateTime(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_config_states_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("kiosk_id", name=op.f("pk_config_states")),
    )
    op.create_table(
        "device_health",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("detail", Json, nullable=True),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_device_health_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("kiosk_id", "device", name=op.f("pk_device_health")),
    )
    op.create_table(
        "event_gaps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("journal_id", sa.String(length=64), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", UtcDateTime(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("closed_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint("first_seq <= last_seq", name=op.f("ck_event_gaps_range")),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_event_gaps_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_gaps")),
    )
    op.create_index(
        op.f("ix_event_gaps_kiosk_id_journal_id_closed_at"),
        "event_gaps",
        ["kiosk_id", "journal_id", "closed_at"],
        unique=False,
    )

    op.create_table(
        "event_journals",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("journal_id", sa.String(length=64), nullable=False),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", UtcDateTime(), nullable=False),
        sa.Column("last_seen", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_event_journals_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("kiosk_id", "journal_id", name=op.f("pk_event_journals")),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("journal_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("replay", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_events_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("event_id", "occurred_at", name=op.f("pk_events")),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    op.create_index(
        op.f("ix_events_center_id_kind_occurred_at"),
        "events",
        ["center_id", "kind", "occurred_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_events_kiosk_id_journal_id_seq"), "events", ["kiosk_id", "journal_id", "seq"], unique=False
    )
    op.create_index(
        op.f("ix_events_kiosk_id_occurred_at"), "events", ["kiosk_id", "occurred_at"], unique=False
    )

    op.create_table(
        "health_hourly",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("hour", UtcDateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("cpu_n", sa.Integer(), nullable=False),
        sa.Column("cpu_sum", sa.Float(), nullable=False),
        sa.Column("cpu_max", sa.Float(), nullable=True),
        sa.Column("memory_n", sa.Integer(), nullable=False),
        sa.Column("memory_sum", sa.Float(), nullable=False),
        sa.Column("memory_max", sa.Float(), nullable=True),
        sa.Column("disk_max", sa.Float(), nullable=True),
        sa.Column("temperature_n", sa.Integer(), nullable=False),
        sa.Column("temperature_sum", sa.Float(), nullable=False),
        sa.Column("temperature_max", sa.Float(), nullable=True),
        sa.Column("outbox_pending_max", sa.Integer(), nullable=True),
        sa.Column("app_down_samples", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_health_hourly_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("kiosk_id", "hour", name=op.f("pk_health_hourly")),
    )
    op.create_index(op.f("ix_health_hourly_hour"), "health_hourly", ["hour"], unique=False)

    op.create_table(
        "health_samples",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("memory_used_percent", sa.Float(), nullable=True),
        sa.Column("disk_used_percent", sa.Float(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("outbox_pending", sa.Integer(), nullable=True),
        sa.Column("app_up", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_health_samples_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_samples")),
    )
    op.create_index(op.f("ix_health_samples_kiosk_id_at"), "health_samples", ["kiosk_id", "at"], unique=False)
    op.create_index(op.f("ix_health_samples_received_at"), "health_samples", ["received_at"], unique=False)

    op.create_table(
        "kiosk_health",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("bdseq", sa.BigInteger(), nullable=True),
        sa.Column("payload", Json, nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_health_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("kiosk_id", name=op.f("pk_kiosk_health")),
    )
    op.create_table(
        "kiosk_status",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("bdseq", sa.BigInteger(), nullable=True),
        sa.Column("boot", sa.BigInteger(), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_status_kiosk_id_kiosks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_status")),
    )
    op.create_index(op.f("ix_kiosk_status_kiosk_id_id"), "kiosk_status", ["kiosk_id", "id"], unique=False)
    op.create_index(op.f("ix_kiosk_status_received_at"), "kiosk_status", ["received_at"], unique=False)

    op.create_table(
        "notification_routes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("min_severity", sa.String(length=16), server_default="major", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('email', 'webhook')", name=op.f("ck_notification_routes_kind")),
        sa.CheckConstraint(
            "min_severity IN ('critical', 'major', 'minor', 'warning')",
            name=op.f("ck_notification_routes_min_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_notification_routes_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_notification_routes_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_routes")),
        sa.UniqueConstraint(
            "center_id", "kind", "target", name=op.f("uq_notification_routes_center_id_kind_target")
        ),
    )
    op.create_index(
        op.f("ix_notification_routes_center_id"), "notification_routes", ["center_id"], unique=False
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_user_id"), "sessions")
    op.drop_index(op.f("ix_sessions_expires_at"), "sessions")

    op.drop_table("sessions")
    op.drop_index(op.f("ix_notification_routes_center_id"), "notification_routes")

    op.drop_table("notification_routes")
    op.drop_index(op.f("ix_kiosk_status_received_at"), "kiosk_status")
    op.drop_index(op.f("ix_kiosk_status_kiosk_id_id"), "kiosk_status")

    op.drop_table("kiosk_status")
    op.drop_table("kiosk_health")
    op.drop_index(op.f("ix_health_samples_received_at"), "health_samples")
    op.drop_index(op.f("ix_health_samples_kiosk_id_at"), "health_samples")

    op.drop_table("health_samples")
    op.drop_index(op.f("ix_health_hourly_hour"), "health_hourly")

    op.drop_table("health_hourly")
    op.drop_index(op.f("ix_events_kiosk_id_occurred_at"), "events")
    op.drop_index(op.f("ix_events_kiosk_id_journal_id_seq"), "events")
    op.drop_index(op.f("ix_events_center_id_kind_occurred_at"), "events")

    op.drop_table("events")
    op.drop_table("event_journals")
    op.drop_index(op.f("ix_event_gaps_kiosk_id_journal_id_closed_at"), "event_gaps")

    op.drop_table("event_gaps")
    op.drop_table("device_health")
    op.drop_table("config_states")
    op.drop_table("config_pushes")
    op.drop_index(op.f("ix_commands_status_requested_at"), "commands")
    op.drop_index(op.f("ix_commands_kiosk_id_id"), "commands")

    op.drop_table("commands")
    op.drop_index(op.f("ix_audit_log_province_id_id"), "audit_log")
    op.drop_index(op.f("ix_audit_log_center_id_id"), "audit_log")
    op.drop_index(op.f("ix_audit_log_at"), "audit_log")

    op.drop_table("audit_log")
    op.drop_index(
        "uq_alarms_active_kiosk_type",
        "alarms",
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.drop_index(op.f("ix_alarms_kiosk_id_started_at"), "alarms")
    op.drop_index(op.f("ix_alarms_center_id_active_started_at"), "alarms")

    op.drop_table("alarms")
    op.drop_table("users")
    op.drop_index(op.f("ix_kiosks_state_offline_after"), "kiosks")
    op.drop_index(op.f("ix_kiosks_center_id_state"), "kiosks")
    op.drop_index(op.f("ix_kiosks_center_id_id"), "kiosks")

    op.drop_table("kiosks")
    op.drop_index(op.f("ix_centers_province_id"), "centers")

    op.drop_table("centers")
    op.drop_table("store_settings")
    op.drop_table("provinces")
    op.drop_index(op.f("ix_login_attempts_username_at"), "login_attempts")
    op.drop_index(op.f("ix_login_attempts_at"), "login_attempts")
    op.drop_index(op.f("ix_login_attempts_address_at"), "login_attempts")

    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_event_keys_occurred_at"), "event_keys")

    op.drop_table("event_keys")
    op.drop_index(op.f("ix_changes_at"), "changes")

    op.drop_table("changes")
