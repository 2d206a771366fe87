"""Shared fixtures: a store URL on SQLite and on the machine's real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def _postgres_admin() -> tuple[str | None, str]:
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover - a dependency
        return None, "sqlalchemy missing"
    reason = "no PostgreSQL on 127.0.0.1:5432"
    for url in PG_ADMIN_URLS:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return url, ""
        except Exception as exc:
            reason = f"PostgreSQL unreachable: {type(exc).__name__}"
        finally:
            engine.dispose()
    return None, reason


@contextmanager
def postgres_database(admin: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the server ``admin`` reaches, dropped
    when the block ends."""
    import sqlalchemy as sa

    name = f"cw_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def empty_database(kind: str, folder: Path, what: str = "the store") -> Iterator[str]:
    """A fresh, empty database of ``kind``: a SQLite file in ``folder``, or a throwaway
    PostgreSQL database (skipped where there is no server, and a failure on CI, which must
    test ``what`` on PostgreSQL)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'store.db'}"
        return
    admin, reason = _postgres_admin()
    if admin is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test {what} on PostgreSQL: {reason}")
        pytest.skip(reason)
    with postgres_database(admin) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a throwaway PostgreSQL database."""
    with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def memory_keyring() -> Iterator[Any]:
    """The OS keyring replaced by a :class:`tests.keyrings.MemoryKeyring` for one test."""
    import keyring

    from tests.keyrings import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
