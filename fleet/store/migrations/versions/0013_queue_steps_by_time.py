"""Indexes ``queue_steps (center_id, at)``, the range the queue's statistics read (the manager's page,
the reports: ``fleet.queue.stats.compute_groups``, ``center_id = ? AND at >= ? AND at < ?``). Without
it both backends walked every step the center ever had for any range, today's included: with a year
of history (200 tickets a day) the statistics of today took 124.7 instead of 4.6 ms on SQLite, 50.0
instead of 8.0 on PostgreSQL (``python -m bench.counter_bench --history-days 0 365 --calls-per-day
200``, docs/queue.md "A long history").

Additive: one index, no data changed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_queue_steps_center_at", "queue_steps", ["center_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_queue_steps_center_at", table_name="queue_steps")
