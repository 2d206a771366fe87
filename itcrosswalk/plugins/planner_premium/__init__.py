"""The Planner premium plugin (Project for the web on Dataverse): plans, tasks and bookable
resources through the Dataverse Web API, plans created through the Schedule API. Hook
implementations only; azure-identity and MSAL are imported when a source is used."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import PlannerPremiumAdapter, PlannerPremiumOptions

    register(
        "planner_premium",
        PlannerPremiumAdapter,
        mapping=mapping.describe(),
        config_model=PlannerPremiumOptions,
    )


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app, sandbox_source

    register("planner_premium", create_app, source=sandbox_source)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import planner_premium

    cli.add_command(planner_premium)
