"""Fixtures: the Jira Align emulator on loopback HTTPS, and configs pointing the adapter at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.jira_align.sandbox import create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

TOKEN = "ja-api-token-that-must-never-leak"


Site = Served
"""A running emulator and what a config needs to reach it."""


@pytest.fixture(scope="session")
def world() -> World:
    # "small" for its six epics and seventeen features; few tickets and devices keep it quick.
    return generate(7, "small", tickets=20, devices=20)


@pytest.fixture
def site_factory(serve: Callable[..., Served], world: World) -> Callable[..., Site]:
    def start(**kwargs: Any) -> Site:
        return serve(
            "jira_align",
            create_app,
            kwargs.pop("world", world),
            users={"svc_crosswalk": TOKEN},
            **kwargs,
        )

    return start


@pytest.fixture
def site(site_factory: Callable[..., Site]) -> Site:
    return site_factory()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def make_config(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Config]:
    monkeypatch.setenv("JA_TOKEN", TOKEN)

    def build(
        site: Site,
        *,
        auth: str | None = None,
        extra: str = "",
        store_url: str | None = None,
        retries: int = 4,
    ) -> Config:
        auth = auth or '{ type = "bearer", token = "env:JA_TOKEN" }'
        lines = [
            "[store]",
            f'url = "{store_url or sqlite_url}"',
            "",
            "[sources.align]",
            'platform = "jira_align"',
            f'url = "{site.url}"',
            f"auth = {auth}",
            f'ca_bundle = "{site.ca}"',
            "max_wait = 20",
            f"max_retries = {retries}",
        ]
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build
