"""Commands another fleet sent a kiosk (docs/province.md, "Commands of the other fleet"): a result of a
request this store did not make is kept, marked ``sent_elsewhere``, so the kiosk page lists it as the
other fleet's.

Additive: one defaulted column. The rows that versions before ``unknown_request`` (2026-12-02) kept for
results nobody here asked for (no requester and no request time: ``Commands.create`` always sets the
time) are exactly such results: they are marked so.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sent_elsewhere", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    op.execute(
        "UPDATE commands SET sent_elsewhere = true WHERE requested_by IS NULL AND requested_at IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_column("sent_elsewhere")
