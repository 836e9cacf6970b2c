"""customer insolvency proceedings: judgment day and kind

Revision ID: 0009
Revises: 0001
Create Date: 2026-12-04 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("insolvency",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("insolvency_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("insolvency_kind", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("insolvency_kind")
        batch_op.drop_column("insolvency_date")
