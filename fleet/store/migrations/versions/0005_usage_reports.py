"""Usage pages and reports (issue 11): one index, ``events (center_id, received_at)``.

The usage page's live stream asks every two seconds whether anything new arrived for the centers it
shows (``fleet.store.usage.Usage.watermark``); without the index that is a scan of every event of the
center. The reports themselves read ``events (center_id, kind, occurred_at)``, which 0001 made.
On PostgreSQL the index is created on the partitioned parent and so on every monthly partition.

Revision ID: 0005
Revises: 0004 (provisioning)
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_events_center_id_received_at"), "events", ["center_id", "received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_events_center_id_received_at"), "events")
