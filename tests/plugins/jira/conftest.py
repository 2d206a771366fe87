"""Fixtures: the Jira Cloud emulator on loopback HTTPS, and configs pointing the adapter at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.jira.sandbox import create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

USER = "svc-crosswalk@city.example.gov"
TOKEN = "atlassian-api-token-that-must-never-leak"

Site = Served


@pytest.fixture(scope="session")
def world() -> World:
    return generate(7, "tiny")


@pytest.fixture
def site_factory(serve: Callable[..., Served], world: World) -> Callable[..., Site]:
    def start(**kwargs: Any) -> Site:
        return serve("jira", create_app, kwargs.pop("world", world), users={USER: TOKEN}, **kwargs)

    return start


@pytest.fixture
def site(site_factory: Callable[..., Site]) -> Site:
    return site_factory()


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Config]:
    monkeypatch.setenv("JIRA_API_TOKEN", TOKEN)

    def build(
        site: Site,
        *,
        extra: str = "",
        store_url: str | None = None,
        retries: int = 4,
        max_wait: float = 20,
    ) -> Config:
        url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        lines = [
            "[store]",
            f'url = "{url}"',
            "",
            "[sources.jsm]",
            'platform = "jira"',
            f'url = "{site.url}"',
            f'auth = {{ type = "basic", user = "{USER}", password = "env:JIRA_API_TOKEN" }}',
            f'ca_bundle = "{site.ca}"',
            'assignment_group_field = "customfield_10050"',
            'department_field = "customfield_10060"',
            f"max_wait = {max_wait}",
            f"max_retries = {retries}",
        ]
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build
