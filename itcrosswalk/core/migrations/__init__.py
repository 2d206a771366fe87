"""The store's schema migrations: Alembic revisions shipped in the package, run when a store
opens.

Opening a store (:class:`itcrosswalk.core.store.Store`) calls :func:`prepare`, which

- on an empty database creates today's tables and stamps the newest revision (head);
- on a store made before migrations existed (a ``schema_version`` row of 1 or 2, no
  ``alembic_version``) stamps the baseline revision ``0001`` (version 1's schema, frozen) and
  upgrades: ``0002`` adds, where missing, the columns stores gained in place before migrations;
- on an older store upgrades it to head, in one transaction, under a database-wide lock;
- refuses a store stamped with a revision this version does not know (made by a newer
  itcrosswalk) with one line, before anything reads or writes it.

Adding a column (a field on a model in ``core/model.py``, or one in ``core/store.py``)::

    python -m itcrosswalk.core.migrations "stream state keeps a content hash"

writes ``versions/NNNN_<slug>.py`` with the operations Alembic finds between the newest
revision and the model (review it: a column that must be filled for existing rows needs a
``server_default`` or an ``op.execute`` backfill). ``tests/core/test_migrations.py`` fails
until the revisions reproduce the model exactly, on SQLite and on PostgreSQL, and checks that a
store made by the baseline schema upgrades to it.
"""

from __future__ import annotations

import logging
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from ..errors import ConfigError

# Alembic (some ten megabytes once imported) is imported only to stamp, upgrade or refuse a
# store: opening one already at HEAD reads its revision with one plain query.
if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger("itcrosswalk.store")

HERE = Path(__file__).parent
BASELINE = "0001"
"""The schema stores had before migrations: ``schema_version`` 1."""
HEAD = "0010"
"""The newest revision in ``versions/``, what :func:`head` computes: a store stamped with it
opens without importing Alembic. A new revision moves it (``tests/core/test_migrations.py``
fails until it does)."""
_SCHEMA_LOCK = 0x63776C6B  # "cwlk": the advisory lock key of schema changes


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the store's own column types as plain SQLAlchemy ones in a revision file, so a
    revision never imports the live store module (which may have changed since)."""
    from ..store import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def alembic_config(connection: sa.Connection | None = None, location: Path = HERE) -> Config:
    """An Alembic config pointing at the revisions in this package (no ``alembic.ini``);
    ``location`` is another copy of this folder (tests add a revision to one)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(location / "versions"))
    config.attributes["connection"] = connection
    return config


@cache
def _script(location: Path = HERE) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(location=location))


def head(location: Path = HERE) -> str:
    """The newest revision this version of itcrosswalk ships."""
    revision = _script(location).get_current_head()
    assert revision is not None, "the package ships at least the baseline revision"
    return revision


def current(connection: sa.Connection) -> str | None:
    """The revision a store is stamped with (None: not stamped)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


_VERSION_TABLE = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's own version table, as ``alembic stamp`` creates it."""


def _stamped(connection: sa.Connection) -> str | None:
    """The one revision in the store's version table, read with plain SQL; None when there is
    no such table or not exactly one row (then :func:`current` decides, under the lock)."""
    try:
        rows = connection.execute(sa.select(_VERSION_TABLE.c.version_num)).all()
    except sa.exc.DBAPIError:  # no table yet (the connection is given up right after)
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _stamp_new(connection: sa.Connection, revision: str) -> None:
    """Stamp a store just created from the model, as ``alembic stamp`` does, without Alembic."""
    _VERSION_TABLE.create(connection)
    connection.execute(_VERSION_TABLE.insert().values(version_num=revision))


def _known(revision: str, location: Path) -> bool:
    try:
        return _script(location).get_revision(revision) is not None
    except Exception:  # alembic raises for an id it has never seen
        return False


def _newer(where: str, revision: object, newest: str) -> ConfigError:
    return ConfigError(
        f"store {where} has schema revision {revision}, newer than this itcrosswalk knows "
        f"(its newest is {newest}): upgrade itcrosswalk, or point store.url at another database"
    )


def _lock(conn: sa.Connection) -> None:
    """Take the database-wide schema lock for the rest of the transaction."""
    if conn.dialect.name == "postgresql":
        # Held to the end of the transaction; PostgreSQL's DDL is transactional.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
    elif conn.dialect.name == "sqlite":
        # The write lock up front (others wait on busy_timeout), not at the first DDL.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def prepare(engine: sa.Engine, where: str, *, location: Path = HERE) -> None:
    """Bring the store at ``engine`` to the newest schema, or refuse it (see the module doc)."""
    target = HEAD if location == HERE else head(location)
    with engine.connect() as conn:
        if _stamped(conn) == target:  # the usual case, read without the lock (nor Alembic)
            return
    with engine.connect() as conn:
        _lock(conn)
        _prepare(conn, where, target, location)
        conn.commit()


def _prepare(conn: sa.Connection, where: str, target: str, location: Path) -> None:
    from ..store import SCHEMA_VERSION, metadata, schema_version
    from ..views import drop_views, ensure_views

    tables = set(sa.inspect(conn).get_table_names())
    # Again, under the lock: another process may have done it. A database without the version
    # table is not stamped, and reading that needs no Alembic (a new store is made without).
    revision = current(conn) if _VERSION_TABLE.name in tables else None
    if revision == target:
        return
    if revision is None:
        if schema_version.name in tables:
            legacy = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
            if legacy is not None and legacy > SCHEMA_VERSION:
                raise _newer(where, f"version {legacy}", target)
            # Every store made before migrations, whatever columns it gained in place since,
            # starts from the baseline; the revisions after it add only what is missing.
            from alembic import command

            command.stamp(alembic_config(conn, location), BASELINE)
            revision = BASELINE
        elif tables & set(metadata.tables):
            raise ConfigError(
                f"store {where} has itcrosswalk tables but no schema version: it was not "
                "made by itcrosswalk; point store.url at another database"
            )
        else:
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            _stamp_new(conn, target)
            ensure_views(conn)
            return
    if not _known(revision, location):
        raise _newer(where, revision, target)
    log.info("store %s: migrating the schema from %s to %s", where, revision, target)
    from alembic import command

    drop_views(conn)  # a table rebuilt under a view would break it
    command.upgrade(alembic_config(conn, location), target)
    ensure_views(conn)


def new_revision(message: str) -> Path:
    """Write the next revision: what Alembic finds between the newest revision and the model."""
    from alembic import command

    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'head.db'}")
        try:
            with engine.begin() as conn:
                config = alembic_config(conn)
                command.upgrade(config, "head")
                number = f"{int(head()) + 1:04d}"
                script = command.revision(config, message=message, autogenerate=True, rev_id=number)
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    _script.cache_clear()
    return Path(script.path)
