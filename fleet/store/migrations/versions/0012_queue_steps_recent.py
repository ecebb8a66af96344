"""Indexes the hall display's and ``paces``' "latest" reads of ``queue_steps`` use (docs/queue.md "A long
queue"). Without them both walked the center's steps back by id (``(center_id, id)``) filtering kind,
time and service, and on a quiet day (fewer than 300 calls today, or fewer than 20 services of a
service in the week) the walk went on to the center's oldest step: with a year of history (50 tickets
a day) the display's read took 46 instead of 5.5 ms on SQLite (bench/counter_bench.py). With them the
display walks only today's steps, newest first (``(center_id, day, id)``), and ``paces`` reads only
the week's finished services of each service (``(center_id, service, kind, at)``, on PostgreSQL
``INCLUDE (id)``), their ids from the index alone, sorting those by id as before.

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
    op.create_index(
        "ix_queue_steps_service_kind_at",
        "queue_steps",
        ["center_id", "service", "kind", "at"],
        postgresql_include=["id"],  # the ids of the week's from the index alone (SQLite: the rowid)
    )


def downgrade() -> None:
    op.drop_index("ix_queue_steps_service_kind_at", table_name="queue_steps")
    op.drop_index("ix_queue_steps_day_order", table_name="queue_steps")
