"""tickets indexed for the metrics pack: census and opened time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:27:48.491193
"""

from __future__ import annotations

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tickets_census",
        "tickets",
        ["kind", "platform", "source", "state", "deleted"],
        unique=False,
    )
    op.create_index("ix_tickets_opened_at", "tickets", ["opened_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tickets_opened_at", table_name="tickets")
    op.drop_index("ix_tickets_census", table_name="tickets")
