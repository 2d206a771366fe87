"""Store migrations: an older store is upgraded when it opens, a newer one is refused with one
line, and the shipped revisions reproduce the model exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core import migrations
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.store import Store, metadata
from itcrosswalk.registry import make_registry
from tests.core.test_store import ticket

FIXTURES = Path(__file__).parent / "fixtures"

NOTE_REVISION = '''"""tickets keep a note"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "{revision}"
down_revision: str | None = "{head}"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.drop_column("note")
'''


def make_store_before_migrations(url: str) -> None:
    """A store exactly as itcrosswalk made it before migrations: the frozen DDL, one ticket."""
    engine = sa.create_engine(url)
    ddl = (FIXTURES / f"store_schema_1.{engine.dialect.name}.sql").read_text()
    ddl = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    try:
        with engine.begin() as conn:
            for statement in ddl.split(";\n"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
            conn.execute(
                sa.text(
                    "INSERT INTO tickets (source, platform, source_id, kind, number, state, "
                    "extra, stream, deleted) VALUES ('snow', 'servicenow', 't00001', "
                    "'incident', 'INC0000001', 'new', '{}', 'incident', FALSE)"
                )
            )
    finally:
        engine.dispose()


def test_a_store_that_gained_columns_in_place_before_migrations_is_upgraded(
    store_url: str,
) -> None:
    # Between schema_version 2 and migrations, a store added missing columns when it opened:
    # this one has one of work items' baseline columns and one of stream state's counts
    # already, and says version 2.
    make_store_before_migrations(store_url)
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE work_items ADD COLUMN baseline_cost FLOAT"))
            conn.execute(sa.text("ALTER TABLE stream_state ADD COLUMN window_total BIGINT"))
            conn.execute(sa.text("UPDATE schema_version SET version = 2"))
    finally:
        engine.dispose()
    store = Store(store_url)
    try:
        assert revision_of(store) == migrations.head()
        assert differences(store) == []
    finally:
        store.close()


def differences(store: Store) -> list[object]:
    """What Alembic finds between the store's tables and the model (empty: they agree)."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_item": migrations.render_item}
        )
        return list(compare_metadata(context, metadata))


def revision_of(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return migrations.current(conn)


def test_a_store_made_before_migrations_is_upgraded_and_keeps_its_records(store_url: str) -> None:
    make_store_before_migrations(store_url)
    store = Store(store_url)
    try:
        assert revision_of(store) == migrations.head()
        assert differences(store) == [], "the upgraded store has exactly the model's columns"
        assert [t["number"] for t in store.export("ticket")] == ["INC0000001"]
        result = store.write_page(
            source="snow", stream="incident", entity="ticket", records=[ticket(2)]
        )
        assert result.inserted == 1
    finally:
        store.close()


def test_the_revisions_build_the_model_from_nothing_and_a_new_store_is_stamped(
    store_url: str,
) -> None:
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "head")
    engine.dispose()
    built = Store(store_url)  # already at head: opens without touching the schema
    try:
        assert revision_of(built) == migrations.head()
        assert differences(built) == [], (
            "a model change needs a revision: python -m itcrosswalk.core.migrations 'what changed'"
        )
        with built.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                table.drop(conn)
            conn.execute(sa.text("DROP TABLE alembic_version"))
    finally:
        built.close()
    fresh = Store(store_url)  # an empty database: created from the model and stamped head
    try:
        assert revision_of(fresh) == migrations.head()
        assert differences(fresh) == []
    finally:
        fresh.close()


def test_a_next_revision_upgrades_an_older_store_and_an_older_itcrosswalk_refuses_it(
    store_url: str, tmp_path: Path
) -> None:
    # How the next revision lands: a file in versions/ that names the newest as its parent.
    newer = tmp_path / "migrations"
    shutil.copytree(migrations.HERE, newer, ignore=shutil.ignore_patterns("__pycache__"))
    following = "9999"  # an id no shipped revision uses (branch revisions are not numbers)
    (newer / "versions" / f"{following}_tickets_keep_a_note.py").write_text(
        NOTE_REVISION.format(revision=following, head=migrations.head())
    )
    make_store_before_migrations(store_url)
    engine = sa.create_engine(store_url)
    try:
        migrations.prepare(engine, "test", location=newer)
        with engine.connect() as conn:
            assert migrations.current(conn) == following
            columns = {c["name"] for c in sa.inspect(conn).get_columns("tickets")}
            assert "note" in columns
            kept = conn.execute(sa.text("SELECT number FROM tickets")).scalars().all()
            assert kept == ["INC0000001"], "the copy SQLite makes to alter a table keeps the rows"
    finally:
        engine.dispose()
    # This itcrosswalk does not ship that revision: it refuses the store before reading or writing it.
    with pytest.raises(ConfigError) as refused:
        Store(store_url)
    message = str(refused.value)
    assert f"has schema revision {following}, newer than this itcrosswalk knows" in message
    assert f"(its newest is {migrations.head()})" in message and "\n" not in message


def test_a_newer_store_is_refused_in_one_line_by_the_cli(store_url: str, tmp_path: Path) -> None:
    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    engine.dispose()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    result = CliRunner().invoke(
        make_cli(make_registry(entry_points_group=None)), ["--config", str(config), "status"]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: store "), result.output
    assert "schema revision f00dcafe, newer than this itcrosswalk knows" in lines[0]


def test_a_store_of_a_later_legacy_version_or_without_a_version_is_refused(
    store_url: str,
) -> None:
    make_store_before_migrations(store_url)
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE schema_version SET version = 3"))
        with pytest.raises(ConfigError, match="has schema revision version 3, newer than"):
            Store(store_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE schema_version"))
        with pytest.raises(ConfigError, match="has itcrosswalk tables but no schema version"):
            Store(store_url)
    finally:
        engine.dispose()


def test_head_names_the_newest_shipped_revision() -> None:
    # A store stamped HEAD opens without Alembic: a new revision must move it.
    assert migrations.HEAD == migrations.head(), (
        f"a revision was added: set HEAD = {migrations.head()!r} in itcrosswalk/core/migrations"
    )


def test_a_new_store_is_stamped_as_alembic_stamps_and_opens_without_importing_it(
    store_url: str,
) -> None:
    # Made and opened again in a process of its own, which never imports Alembic.
    code = (
        "import sys; from itcrosswalk.core.store import Store\n"
        f"Store({store_url!r}).close(); Store({store_url!r}).close()\n"
        "assert 'alembic' not in sys.modules, sorted(m for m in sys.modules if 'alembic' in m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
            inspector = sa.inspect(conn)
            made = (
                inspector.get_columns("alembic_version"),
                inspector.get_pk_constraint("alembic_version"),
            )
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE alembic_version"))
            command.stamp(migrations.alembic_config(conn), "head")
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            stamped = (
                inspector.get_columns("alembic_version"),
                inspector.get_pk_constraint("alembic_version"),
            )
        assert repr(made) == repr(stamped), "the version table Alembic itself makes"
    finally:
        engine.dispose()
