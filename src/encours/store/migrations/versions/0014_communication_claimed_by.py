"""communications.claimed_by: the sender holding an email in 'sending'

Revision ID: 0014
Revises: 0003
Create Date: 2026-12-04 19:20:00.000000

"host:pid" of the `outbox send` that claimed the email; with `next_attempt_at` (the end of
its lease while the row is 'sending') it lets a second sender tell a message in flight
from one left by a dead process (collections/outbox.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("communications", sa.Column("claimed_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("communications") as batch:
        batch.drop_column("claimed_by")
