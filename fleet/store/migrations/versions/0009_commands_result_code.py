"""A command result's machine-readable ``code`` (``command-result/1``, minor addition: docs/mqtt.md), so
the console says why a command failed in the page's language (the printer out of paper, a screenshot
refused while personal data is on screen) instead of only that it failed.

Additive: one nullable column. Rows stored before it keep None: their results came from agents without
codes, and the console goes by the English reason's fixed starts for them, as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_code", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_column("result_code")
