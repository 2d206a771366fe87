"""tickets indexed by kind with their CI and their category

Revision ID: 0008
Revises: planner1
Create Date: 2026-12-01 14:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision: str = "0008"
down_revision: str | None = "planner1"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_tickets_kind_device", "tickets", ["kind", "device_name"], unique=False)
    op.create_index("ix_tickets_kind_category", "tickets", ["kind", "category"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tickets_kind_category", table_name="tickets")
    op.drop_index("ix_tickets_kind_device", table_name="tickets")
