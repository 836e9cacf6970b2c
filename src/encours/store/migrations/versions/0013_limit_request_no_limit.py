"""limit_requests.requested_minor nullable: a request may ask to remove the limit

Revision ID: 0013
Revises: 0004
Create Date: 2026-12-04 19:30:00.000000

NULL = "no limit" (the customer's credit_limit_minor becomes NULL when it is approved).
SQLite cannot drop a NOT NULL in place: the table is rebuilt (batch mode), its data kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("limit_requests") as batch:
        batch.alter_column("requested_minor", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM limit_requests WHERE requested_minor IS NULL")
    with op.batch_alter_table("limit_requests") as batch:
        batch.alter_column("requested_minor", existing_type=sa.BigInteger(), nullable=False)
