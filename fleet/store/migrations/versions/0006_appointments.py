"""Booked appointments at the counters (issue 15, docs/queue.md "Appointments"): the booked time of a
ticket and the center's three rules for them.

Additive: nullable or defaulted columns only, so a store written before it reads the same.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fleet.store.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("appointment_early", sa.String(length=8), server_default="wait", nullable=False)
        )
        batch_op.add_column(
            sa.Column("appointment_ahead_min", sa.Integer(), server_default="5", nullable=False)
        )
        batch_op.add_column(
            sa.Column("appointment_late_min", sa.Integer(), server_default="15", nullable=False)
        )
    with op.batch_alter_table("queue_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("appointment_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_tickets", schema=None) as batch_op:
        batch_op.drop_column("appointment_at")
    with op.batch_alter_table("queue_settings", schema=None) as batch_op:
        batch_op.drop_column("appointment_late_min")
        batch_op.drop_column("appointment_ahead_min")
        batch_op.drop_column("appointment_early")
