"""The Clarity PPM plugin: projects, ideas, resources and financial plans through the public
REST API. Hook implementations only."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import ClarityAdapter, ClarityOptions

    register("clarity", ClarityAdapter, mapping=mapping.describe(), config_model=ClarityOptions)


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app, sandbox_source

    register("clarity", create_app, source=sandbox_source)
