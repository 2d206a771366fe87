"""``crosswalk planner-premium login SOURCE``: the Schedule API user's one-time device-code
sign-in. Only click is imported at the top, so ``crosswalk --help`` stays light."""

from __future__ import annotations

from typing import Any

import click


@click.group("planner-premium")
def planner_premium() -> None:
    """Planner premium (Project for the web): the Schedule API user's sign-in."""


@planner_premium.command("login")
@click.argument("source")
@click.pass_obj
def login(obj: Any, source: str) -> None:
    """Sign in the licensed user the Schedule API needs (device code), once; its refresh token
    is kept in the OS keyring."""
    from ...core.errors import ConfigError
    from ...core.sync import build_adapter
    from .writer import login as device_login

    adapter = build_adapter(obj.config, source, obj.pm)
    try:
        if adapter.platform != "planner_premium":
            raise ConfigError(
                f"source {source} is a {adapter.platform} source, not a planner_premium one"
            )
        done = device_login(adapter, lambda message: click.echo(message, err=True))
    finally:
        adapter.close()
    click.echo(
        f"signed in: source {done['source']}, refresh token kept in the keyring ({done['keyring']})"
    )
