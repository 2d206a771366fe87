"""Fixtures: the ServiceNow emulator on loopback HTTPS, and configs pointing PySNC at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.servicenow.sandbox import create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

PASSWORD = "Pa55-word-that-must-never-leak"


Instance = Served
"""A running emulator and what a config needs to reach it."""


@pytest.fixture(scope="session")
def world() -> World:
    return generate(7, "tiny")


@pytest.fixture
def instance_factory(serve: Callable[..., Served], world: World) -> Callable[..., Instance]:
    def start(**kwargs: Any) -> Instance:
        return serve(
            "servicenow",
            create_app,
            kwargs.pop("world", world),
            users={"svc_crosswalk": PASSWORD},
            **kwargs,
        )

    return start


@pytest.fixture
def instance(instance_factory: Callable[..., Instance]) -> Instance:
    return instance_factory()


@pytest.fixture
def snow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOW_PASSWORD", PASSWORD)
    monkeypatch.setenv("SNOW_CLIENT_SECRET", "s3cret")


@pytest.fixture
def make_config(tmp_path: Path, store_url: str, snow_env: None) -> Callable[..., Config]:
    def build(
        instance: Instance, *, auth: str | None = None, extra: str = "", ca: bool = True
    ) -> Config:
        auth = auth or '{ type = "basic", user = "svc_crosswalk", password = "env:SNOW_PASSWORD" }'
        lines = [
            "[store]",
            f'url = "{store_url}"',
            "",
            "[sources.snow]",
            'platform = "servicenow"',
            f'url = "{instance.url}"',
            f"auth = {auth}",
            "max_wait = 20",
            "max_retries = 4",
        ]
        if ca:
            lines.append(f'ca_bundle = "{instance.ca}"')
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build


def count_kind(world: World, kind: str) -> int:
    return sum(1 for t in world.tickets if t.kind == kind and t.platform == "servicenow")
