"""payment models

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-23 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("models",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_models")),
    )
    op.create_index("ix_payment_models_as_of", "payment_models", ["as_of"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payment_models_as_of", table_name="payment_models")
    op.drop_table("payment_models")
