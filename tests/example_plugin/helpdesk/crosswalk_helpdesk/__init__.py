"""The Helpdesk plugin for itcrosswalk: hook implementations only; everything they register is
imported inside the hook, so ``crosswalk --help`` never loads it."""

from __future__ import annotations

from typing import Any

import click

from itcrosswalk.hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import HelpdeskAdapter, HelpdeskOptions

    register("helpdesk", HelpdeskAdapter, mapping=mapping.describe(), config_model=HelpdeskOptions)


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app, sandbox_source

    register("helpdesk", create_app, source=sandbox_source)


@hookimpl
def register_metrics(register: Any) -> None:
    from itcrosswalk.core.metrics import Measure, SqlMetric

    class OpenRequests(SqlMetric):
        id = "helpdesk.open_requests"
        title = "Open Helpdesk requests"
        domain = "service"
        unit = "count"
        entity = "ticket"
        definition = "Helpdesk tickets that are new, open or pending."
        measure = Measure("count")

        def scope(self, t: Any, ctx: Any) -> list[Any]:
            return [t.c.platform == "helpdesk", t.c.state.in_(["new", "in_progress", "on_hold"])]

    register(OpenRequests())


@hookimpl
def register_controls(register: Any) -> None:
    register(
        {
            "id": "helpdesk.assigned",
            "title": "Every open Helpdesk request has a group",
            "severity": "low",
            "domain": "service",
            "rationale": "A request nobody owns waits.",
            "remediation": "Assign it to a group.",
            "benchmarks": ["helpdesk"],
            "query": "SELECT source || '/' || source_id AS resource, source, department, "
            "CASE WHEN assignment_group IS NULL THEN 'alarm' ELSE 'ok' END AS status, "
            "'group ' || COALESCE(assignment_group, 'none') AS reason "
            "FROM tickets WHERE platform = 'helpdesk' AND deleted = FALSE "
            "AND state IN ('new', 'in_progress', 'on_hold')",
        }
    )


@hookimpl
def register_templates(register: Any) -> None:
    register({"id": "helpdesk.intake", "title": "Helpdesk intake checklist", "kind": "document"})


@hookimpl
def register_commands(cli: Any) -> None:
    @cli.command("helpdesk-statuses")
    def statuses() -> None:
        """Print how Helpdesk's ticket statuses map into the common model."""
        from .mapping import STATUSES

        for native, state in STATUSES.items():
            click.echo(f"{native} -> {state.value}")
