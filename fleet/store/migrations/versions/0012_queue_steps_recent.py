"""Indexes the hall display's and ``paces``' "latest" reads of ``queue_steps`` use (docs/queue.md "A long
queue"). Without them both walked the center's steps back by id (``(center_id, id)``) filtering kind,
time and service, and on a quiet day (fewer than 300 calls today, or fewer than 20 services of a
service in the week) the walk went on to the center's oldest step: with a year of history (50 tickets
a day) the display's read took 46 instead of 5.5 ms on SQLite (bench/counter_bench.py). With them the
display walks only today's steps, newest first (``(center_id, day, id)``), and ``paces`` reads each
service's newest finished services of the week backwards by time (``(center_id, service, kind, at)``),
stopping at the 20 it wants.

Additive: two indexes, no data changed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_queue_steps_day_order", "queue_steps", ["center_id", "day", "id"])
    op.create_index("ix_queue_steps_service_kind_at", "queue_steps", ["center_id", "service", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_queue_steps_service_kind_at", table_name="queue_steps")
    op.drop_index("ix_queue_steps_day_order", table_name="queue_steps")
