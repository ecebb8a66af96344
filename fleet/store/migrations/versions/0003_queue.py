"""The queue at the counters (issue 13, docs/queue.md): tickets and their steps (history, change log
and outbox of queue-event/1), officers' sessions at counters, counters, services, hall displays,
ratings from the phone page and the kiosk, per-center settings. Additive: no existing table changes.

Revision ID: 0003
Revises: 0002 (ingest, alarms, notifications)
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleet.store.types import BigId, Json, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_counters",
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), server_default="", nullable=False),
        sa.Column("services", Json, nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_counters_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("center_id", "code", name=op.f("pk_queue_counters")),
    )
    op.create_table(
        "queue_services",
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=1), nullable=False),
        sa.Column("name_vi", sa.String(length=120), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_services_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("center_id", "code", name=op.f("pk_queue_services")),
    )
    op.create_table(
        "queue_settings",
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("priority_mode", sa.String(length=16), server_default="first", nullable=False),
        sa.Column("priority_every", sa.Integer(), server_default="3", nullable=False),
        sa.Column("pulling", sa.String(length=16), server_default="shared", nullable=False),
        sa.Column("max_recalls", sa.Integer(), server_default="2", nullable=False),
        sa.Column("target_wait_min", sa.Integer(), server_default="30", nullable=False),
        sa.Column("recent_calls", sa.Integer(), server_default="6", nullable=False),
        sa.Column("notice_vi", sa.Text(), server_default="", nullable=False),
        sa.Column("notice_en", sa.Text(), server_default="", nullable=False),
        sa.Column("phone_key", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "priority_mode IN ('first', 'interleave')", name=op.f("ck_queue_settings_priority_mode")
        ),
        sa.CheckConstraint("pulling IN ('shared', 'strict')", name=op.f("ck_queue_settings_pulling")),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_settings_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("center_id", name=op.f("pk_queue_settings")),
    )
    op.create_table(
        "queue_displays",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=120), server_default="", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_displays_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_queue_displays_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_displays")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_queue_displays_token_hash")),
    )
    op.create_table(
        "queue_tickets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("number", sa.String(length=8), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("first_service", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=True),
        sa.Column("kiosk_id", sa.String(length=64), nullable=True),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("queued_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target_counter", sa.String(length=8), nullable=True),
        sa.Column("assigned_counter", sa.String(length=8), nullable=True),
        sa.Column("counter", sa.String(length=8), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("called_at", UtcDateTime(), nullable=True),
        sa.Column("serving_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting', 'called', 'serving', 'done', 'no_show', 'left')",
            name=op.f("ck_queue_tickets_state"),
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_tickets_center_id_centers")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_queue_tickets_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_tickets")),
        sa.UniqueConstraint("center_id", "day", "number", name=op.f("uq_queue_tickets_center_id_day_number")),
        sa.UniqueConstraint("token", name=op.f("uq_queue_tickets_token")),
    )
    op.create_index(
        op.f("ix_queue_tickets_center_id_day_state_service_issued_at"),
        "queue_tickets",
        ["center_id", "day", "state", "service", "issued_at"],
        unique=False,
    )
    op.create_table(
        "queue_ratings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("counter", sa.String(length=8), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("reasons", Json, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.CheckConstraint("via IN ('phone', 'kiosk')", name=op.f("ck_queue_ratings_via")),
        sa.CheckConstraint("level >= 1 AND level <= scale", name=op.f("ck_queue_ratings_level")),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_ratings_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["queue_tickets.id"], name=op.f("fk_queue_ratings_ticket_id_queue_tickets")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_queue_ratings_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_ratings")),
        sa.UniqueConstraint("event_id", name=op.f("uq_queue_ratings_event_id")),
        sa.UniqueConstraint("ticket_id", "via", name=op.f("uq_queue_ratings_ticket_id_via")),
    )
    op.create_index(op.f("ix_queue_ratings_center_id_at"), "queue_ratings", ["center_id", "at"], unique=False)
    op.create_table(
        "queue_sessions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("services", Json, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("break_since", UtcDateTime(), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("since_priority", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("state IN ('open', 'break', 'closed')", name=op.f("ck_queue_sessions_state")),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_queue_sessions_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["queue_tickets.id"], name=op.f("fk_queue_sessions_ticket_id_queue_tickets")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_queue_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_sessions")),
    )
    op.create_index(
        "uq_queue_sessions_open_counter",
        "queue_sessions",
        ["center_id", "counter"],
        unique=True,
        sqlite_where=sa.text("state <> 'closed'"),
        postgresql_where=sa.text("state <> 'closed'"),
    )
    op.create_index(
        "uq_queue_sessions_open_user",
        "queue_sessions",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("state <> 'closed'"),
        postgresql_where=sa.text("state <> 'closed'"),
    )
    op.create_table(
        "queue_steps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("center_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("day", sa.String(length=10), nullable=True),
        sa.Column("number", sa.String(length=8), nullable=True),
        sa.Column("service", sa.String(length=16), nullable=True),
        sa.Column("counter", sa.String(length=8), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("officer", sa.String(length=64), nullable=True),
        sa.Column("detail", Json, nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('issued', 'called', 'recalled', 'serving', 'done', 'no_show', 'transferred', 'left', "
            "'rated', 'counter_opened', 'counter_break', 'counter_resumed', 'counter_closed')",
            name=op.f("ck_queue_steps_kind"),
        ),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], name=op.f("fk_queue_steps_center_id_centers")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["queue_tickets.id"], name=op.f("fk_queue_steps_ticket_id_queue_tickets")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_queue_steps_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_steps")),
        sa.UniqueConstraint("center_id", "seq", name=op.f("uq_queue_steps_center_id_seq")),
        sa.UniqueConstraint("event_id", name=op.f("uq_queue_steps_event_id")),
    )
    op.create_index(op.f("ix_queue_steps_center_id_id"), "queue_steps", ["center_id", "id"], unique=False)
    op.create_index(
        op.f("ix_queue_steps_center_id_kind_at"), "queue_steps", ["center_id", "kind", "at"], unique=False
    )
    op.create_index(op.f("ix_queue_steps_ticket_id"), "queue_steps", ["ticket_id"], unique=False)
    op.create_index(
        "ix_queue_steps_unpublished",
        "queue_steps",
        ["id"],
        unique=False,
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_queue_steps_unpublished",
        table_name="queue_steps",
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_index(op.f("ix_queue_steps_ticket_id"), table_name="queue_steps")
    op.drop_index(op.f("ix_queue_steps_center_id_kind_at"), table_name="queue_steps")
    op.drop_index(op.f("ix_queue_steps_center_id_id"), table_name="queue_steps")
    op.drop_table("queue_steps")
    op.drop_index(
        "uq_queue_sessions_open_user",
        table_name="queue_sessions",
        sqlite_where=sa.text("state <> 'closed'"),
        postgresql_where=sa.text("state <> 'closed'"),
    )
    op.drop_index(
        "uq_queue_sessions_open_counter",
        table_name="queue_sessions",
        sqlite_where=sa.text("state <> 'closed'"),
        postgresql_where=sa.text("state <> 'closed'"),
    )
    op.drop_table("queue_sessions")
    op.drop_index(op.f("ix_queue_ratings_center_id_at"), table_name="queue_ratings")
    op.drop_table("queue_ratings")
    op.drop_index(op.f("ix_queue_tickets_center_id_day_state_service_issued_at"), table_name="queue_tickets")
    op.drop_table("queue_tickets")
    op.drop_table("queue_displays")
    op.drop_table("queue_settings")
    op.drop_table("queue_services")
    op.drop_table("queue_counters")
