"""allocations: drop ix_allocations_invoice_id, a prefix of ix_allocations_invoice_date

Revision ID: 0011
Revises: 0001
Create Date: 2026-12-04 17:00:00.000000

ix_allocations_invoice_date (invoice_id, date, amount_minor) serves every lookup by
invoice_id, including the foreign-key checks; the single-column index only cost its
maintenance (about 0.5 s per million allocations written by an import).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("alloc_index",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_allocations_invoice_id", table_name="allocations")


def downgrade() -> None:
    op.create_index("ix_allocations_invoice_id", "allocations", ["invoice_id"], unique=False)
