"""The standard pack: the metrics, compliance controls and templates itcrosswalk ships,
registered through the same hooks as any plugin's (so a plugin's may replace one by id).
Hook implementations only."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_metrics(register: Any) -> None:
    from ...core.metrics.standard import STANDARD

    for metric in STANDARD:
        register(metric)
    from ...core.metrics.knowledge import KNOWLEDGE

    for metric in KNOWLEDGE:
        register(metric)


@hookimpl
def register_controls(register: Any) -> None:
    from ...core.compliance.controls import BUILTIN_DIR

    register(BUILTIN_DIR)


@hookimpl
def register_templates(register: Any) -> None:
    from ...core.templates.loader import standard_templates

    for template in standard_templates():
        register(template)
