"""A tiny third-party plugin, installed by the tests to prove the entry-point path."""

from __future__ import annotations

from typing import Any

import click

from itcrosswalk.hookspecs import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    @cli.command("hello-example")
    def hello() -> None:
        """Say hello from the example plugin."""
        click.echo("hello from crosswalk_example")


@hookimpl
def register_metrics(register: Any) -> None:
    from itcrosswalk.core.metrics import Measure, SqlMetric

    class ExampleCount(SqlMetric):
        id = "example.count"
        title = "Tickets the example platform holds"
        domain = "service"
        unit = "count"
        entity = "ticket"
        definition = "Tickets synced from the example platform."
        measure = Measure("count")

        def scope(self, t: Any, ctx: Any) -> list[Any]:
            return [t.c.platform == "example"]

    register(ExampleCount())


@hookimpl
def register_controls(register: Any) -> None:
    register(
        {
            "id": "example.control",
            "title": "Every example ticket has an assignment group",
            "severity": "low",
            "domain": "service",
            "rationale": "A ticket nobody owns waits.",
            "remediation": "Assign it.",
            "benchmarks": ["example"],
            "query": "SELECT source || '/' || source_id AS resource, "
            "CASE WHEN assignment_group IS NULL THEN 'alarm' ELSE 'ok' END AS status, "
            "'group ' || COALESCE(assignment_group, 'none') AS reason "
            "FROM tickets WHERE platform = 'example' AND deleted = FALSE",
        }
    )


@hookimpl
def register_templates(register: Any) -> None:
    register({"id": "example.template", "title": "An example template"})
