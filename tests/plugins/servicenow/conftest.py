"""Fixtures: the ServiceNow emulator on loopback HTTPS, and configs pointing PySNC at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.servicenow.sandbox import create_app
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.server import SandboxServer
from itcrosswalk.sandbox.world import World, generate

PASSWORD = "Pa55-word-that-must-never-leak"


@dataclass
class Instance:
    """A running emulator and what a config needs to reach it."""

    app: Any
    url: str
    ca: Path
    faults: Faults
    world: World


@pytest.fixture(scope="session")
def world() -> World:
    return generate(7, "tiny")


@pytest.fixture
def instance_factory(tmp_path: Path, world: World) -> Iterator[Callable[..., Instance]]:
    servers: list[SandboxServer] = []

    def start(**kwargs: Any) -> Instance:
        faults = Faults()
        app = create_app(
            kwargs.pop("world", world), faults, users={"svc_crosswalk": PASSWORD}, **kwargs
        )
        server = SandboxServer({"servicenow": app})
        servers.append(server)
        urls = server.start()
        ca = server.write_ca(tmp_path / f"ca-{len(servers)}.pem")
        return Instance(app=app, url=urls["servicenow"], ca=ca, faults=faults, world=world)

    yield start
    for server in servers:
        server.stop()


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
    return sum(1 for t in world.tickets if t.kind == kind)
