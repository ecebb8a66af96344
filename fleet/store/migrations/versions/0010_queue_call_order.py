"""Indexes a counter's "next" reads in call order (docs/queue.md "Measured"): the waiting tickets of a
center day by class and issue time, and the booked ones by booked time. Without them the candidate
query used only the (center, day, state) prefix of the ticket index and sorted every waiting ticket of
the counter's services for each call (SQLite: ``USE TEMP B-TREE FOR ORDER BY``).

Additive: two indexes, no data changed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BOOKED = "appointment_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_queue_tickets_call_order",
        "queue_tickets",
        ["center_id", "day", "state", "priority", "issued_at", "id"],
    )
    op.create_index(
        "ix_queue_tickets_booked_order",
        "queue_tickets",
        ["center_id", "day", "state", "appointment_at", "issued_at", "id"],
        sqlite_where=sa.text(BOOKED),
        postgresql_where=sa.text(BOOKED),
    )


def downgrade() -> None:
    op.drop_index("ix_queue_tickets_booked_order", table_name="queue_tickets")
    op.drop_index("ix_queue_tickets_call_order", table_name="queue_tickets")
