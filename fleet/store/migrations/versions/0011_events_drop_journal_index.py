"""Drops ``events (kiosk_id, journal_id, seq)``: no query reads it, and every event paid for it.

Gaps are followed in ``event_journals`` and ``event_gaps`` (fleet.store.events), never by reading the
events of a journal; the kiosk page reads ``events (kiosk_id, occurred_at)``, the usage pages and
reports ``events (center_id, kind, occurred_at)`` and ``(center_id, received_at)``. Measured on
PostgreSQL 15 (200,000 rows shaped like the bench's events, docs/fleet.md "Seventh pass"): the index
took ~124 bytes per event, three quarters of the table row's own size without its payload, and
~8 % of the insert's buffer hits. On PostgreSQL the index of the partitioned parent goes with every
monthly partition's. The downgrade builds it again (on every partition: slow on a large store).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_events_kiosk_id_journal_id_seq"), "events")


def downgrade() -> None:
    op.create_index(
        op.f("ix_events_kiosk_id_journal_id_seq"), "events", ["kiosk_id", "journal_id", "seq"], unique=False
    )
