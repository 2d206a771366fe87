"""The ServiceNow plugin: ITSM and SPM tables through the Table API. Hook implementations only."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import ServiceNowAdapter, ServiceNowOptions

    register(
        "servicenow", ServiceNowAdapter, mapping=mapping.describe(), config_model=ServiceNowOptions
    )


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app

    register("servicenow", create_app)
