"""Raw heartbeats partitioned by day on PostgreSQL (docs/fleet.md "Store"): ``health_samples`` becomes
a range-partitioned table on ``received_at``, one partition per day cut at midnight in Vietnam
(``fleet.store.partitions.HEALTH``), so that retention drops whole days instead of one DELETE of
~29 M rows a day at province scale.

PostgreSQL only; SQLite is left as it is (no partitions there). The old table is renamed, the
partitioned parent created with the same columns and the same id sequence (ids go on where they
were), a partition made for every day that has rows (found by skipping along the received_at index,
not by scanning) and for today and the two next days, the rows copied, the old table dropped, then the
primary key (id, received_at): PostgreSQL wants the partition column in it, the foreign key and the
indexes built on the filled partitions (faster than maintaining them row by row during the copy).
The whole migration is one transaction: health_samples is locked (heartbeats wait) until it commits.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from fleet.store.partitions import DAYS, HEALTH, start_of
from fleet.store.types import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLE = "health_samples"
COLUMNS = (
    "id, kiosk_id, at, received_at, cpu_percent, memory_used_percent, disk_used_percent, "
    "temperature_c, outbox_pending, app_up"
)
AHEAD_DAYS = 2  # today and two more, as the store's Partitions.ensure_ahead


def _columns(sequence: str) -> list[sa.Column[Any]]:
    """health_samples' columns as 0001 made them; ``id`` takes its numbers from ``sequence``."""
    return [
        sa.Column(
            "id",
            sa.BigInteger(),
            server_default=sa.text(f"nextval('{sequence}'::regclass)"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("memory_used_percent", sa.Float(), nullable=True),
        sa.Column("disk_used_percent", sa.Float(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("outbox_pending", sa.Integer(), nullable=True),
        sa.Column("app_up", sa.Boolean(), nullable=True),
    ]


def _set_aside(old: str) -> str:
    """Rename health_samples to ``old``, free the names its parent will need (primary key and
    indexes are relations: their names are the schema's, not the table's), and untie the id sequence
    from it so that dropping it keeps the sequence; returns the sequence's name."""
    bind = op.get_bind()
    sequence = bind.execute(sa.text(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')")).scalar_one()
    op.drop_index(op.f("ix_health_samples_kiosk_id_at"), TABLE)
    op.drop_index(op.f("ix_health_samples_received_at"), TABLE)
    op.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{old}"')
    op.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "pk_health_samples" TO "pk_{old}"')
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    return str(sequence)


def _finish(old: str, sequence: str, primary_key: list[str]) -> None:
    """Rows copied from ``old`` (ids kept), ``old`` dropped, then the keys and indexes of 0001 built."""
    op.execute(f'INSERT INTO "{TABLE}" ({COLUMNS}) SELECT {COLUMNS} FROM "{old}"')
    op.drop_table(old)
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {TABLE}.id")
    op.create_primary_key(op.f("pk_health_samples"), TABLE, primary_key)
    op.create_foreign_key(op.f("fk_health_samples_kiosk_id_kiosks"), TABLE, "kiosks", ["kiosk_id"], ["id"])
    op.create_index(op.f("ix_health_samples_kiosk_id_at"), TABLE, ["kiosk_id", "at"], unique=False)
    op.create_index(op.f("ix_health_samples_received_at"), TABLE, ["received_at"], unique=False)
    op.execute(f'ANALYZE "{TABLE}"')


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    old = "health_samples_unpartitioned"
    sequence = _set_aside(old)
    op.create_table(TABLE, *_columns(sequence), postgresql_partition_by="RANGE (received_at)")
    bind = op.get_bind()
    days = set()
    # each day that has rows: one probe of the received_at index per day (200 M rows are 7 probes)
    found = bind.execute(sa.text(f'SELECT min(received_at) FROM "{old}"')).scalar()
    while found is not None:
        day = DAYS.of(found)
        days.add(day)
        found = bind.execute(
            sa.text(f'SELECT min(received_at) FROM "{old}" WHERE received_at >= :after'),
            {"after": start_of(DAYS.add(day, 1))},
        ).scalar()
    today = DAYS.of(datetime.now(UTC))
    days.update(DAYS.add(today, i) for i in range(AHEAD_DAYS + 1))
    for day in sorted(days):
        op.execute(HEALTH.create_sql(day))
    _finish(old, sequence, ["id", "received_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    old = "health_samples_partitioned"
    sequence = _set_aside(old)
    op.create_table(TABLE, *_columns(sequence))
    _finish(old, sequence, ["id"])  # dropping the parent drops its partitions
