"""streams keep the platform's change token (a Dataverse or Graph delta link)

Revision ID: planner1
Revises: dash1
Create Date: 2026-12-01 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "planner1"
down_revision: str | None = "dash1"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("stream_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stream_state", schema=None) as batch_op:
        batch_op.drop_column("change_token")
