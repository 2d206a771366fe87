"""Alembic's entry point, run by :mod:`itcrosswalk.core.migrations` on the store's connection
(never from an ``alembic.ini``: the store's URL comes from the crosswalk config)."""

from __future__ import annotations

from alembic import context

from itcrosswalk.core.migrations import render_item
from itcrosswalk.core.store import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things in place
    render_item=render_item,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
