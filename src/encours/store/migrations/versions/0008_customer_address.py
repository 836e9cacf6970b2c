"""customer postal address

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-04 15:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("address",)
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("address_line1", 200),
    ("address_line2", 200),
    ("postal_code", 20),
    ("city", 100),
)


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
