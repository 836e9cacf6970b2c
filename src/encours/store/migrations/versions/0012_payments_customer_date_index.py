"""payments: index (customer_id, date) instead of (customer_id)

Revision ID: 0012
Revises: 0001
Create Date: 2026-12-04 19:00:00.000000

The customer page lists a customer's latest payments (ORDER BY date DESC LIMIT 20): with
(customer_id) alone SQLite sorts every payment of the customer for each page (~1.4 ms for
the largest customers at 1M invoices). The composite index serves that in index order and
every lookup by customer_id (its prefix), so the single-column index is dropped.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("payment_index",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_payments_customer_date", "payments", ["customer_id", "date"])
    op.drop_index("ix_payments_customer_id", table_name="payments")


def downgrade() -> None:
    op.create_index("ix_payments_customer_id", "payments", ["customer_id"], unique=False)
    op.drop_index("ix_payments_customer_date", table_name="payments")
