"""the platform's count apart from the last window's; baselines on work items; finance plan lines

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:13:56.594810

Stores made before migrations added missing columns and tables when they opened
(``schema_version`` 2), so a store at the baseline may already hold some of these: each is
added only where it is missing. Revisions after this one know the exact schema they start from
and need no such care.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

ADDED: dict[str, list[sa.Column[object]]] = {
    "stream_state": [
        sa.Column("remote_total_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_total", sa.BigInteger(), nullable=True),
    ],
    "work_items": [
        sa.Column("baseline_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline_finish", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline_cost", sa.Float(), nullable=True),
    ],
}


def _plan_lines() -> None:
    op.create_table(
        "plan_lines",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("investment_id", sa.Text(), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.Text(), nullable=True),
        sa.Column("plan_name", sa.Text(), nullable=True),
        sa.Column("plan_of_record", sa.Boolean(), nullable=True),
        sa.Column("fiscal_period", sa.Text(), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_finish", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cost_type", sa.String(length=32), nullable=False),
        sa.Column("actual", sa.Boolean(), nullable=False),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("stream", sa.String(length=128), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sweep", sa.String(length=64), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("source", "source_id"),
    )
    with op.batch_alter_table("plan_lines", schema=None) as batch_op:
        batch_op.create_index("ix_plan_lines_source_stream", ["source", "stream"], unique=False)
        batch_op.create_index("ix_plan_lines_updated_at", ["updated_at"], unique=False)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "plan_lines" not in inspector.get_table_names():
        _plan_lines()
    for table, columns in ADDED.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in present]
        if missing:
            # batch_alter_table: SQLite alters a table by copying it; PostgreSQL in place.
            with op.batch_alter_table(table) as batch_op:
                for column in missing:
                    batch_op.add_column(column)


def downgrade() -> None:
    for table, columns in reversed(ADDED.items()):
        with op.batch_alter_table(table) as batch_op:
            for column in reversed(columns):
                batch_op.drop_column(column.name)
    with op.batch_alter_table("plan_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_lines_updated_at")
        batch_op.drop_index("ix_plan_lines_source_stream")
    op.drop_table("plan_lines")
