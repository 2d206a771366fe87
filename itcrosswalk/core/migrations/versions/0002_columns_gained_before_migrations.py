"""The columns stores gained in place before migrations existed: work items' baselines.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Stores made before migrations added missing columns when they opened, so a store at the
baseline may already hold some of these: each is added only where it is missing. Revisions
after this one know the exact schema they start from and need no such care.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

ADDED: dict[str, list[sa.Column[object]]] = {
    "work_items": [
        sa.Column("baseline_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline_finish", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline_cost", sa.Float(), nullable=True),
    ],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in ADDED.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in present]
        if missing:
            # batch_alter_table: SQLite alters a table by copying it; PostgreSQL in place.
            with op.batch_alter_table(table) as batch_op:
                for column in missing:
                    batch_op.add_column(column)


def downgrade() -> None:
    for table, columns in ADDED.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.drop_column(column.name)
