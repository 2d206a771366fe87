"""Applying a form template: validated values, a correlation id, and the platform's writer.

The template says which fields a record needs; the values are checked and converted to the
common model's types here, once, so every platform's writer receives the same thing. The
writer is chosen by the template's target (``demand``, ``work_item:project``, ...) from
whatever adapter the source has, so a template works on every platform that can create it.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..adapter import Adapter, WriteResult
from ..errors import ConfigError, CrosswalkError
from ..model import ENTITIES
from .model import Template

CORRELATION_PREFIX = "itcrosswalk"


class TemplateInputError(CrosswalkError):
    """The values given to a template are missing or malformed (a usage error)."""

    exit_code = 2


def parse_assignments(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``field=value`` pairs from the command line; a field given twice keeps the last value."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise TemplateInputError(f"--set {pair!r}: write it as field=value")
        values[name.strip()] = value
    return values


def _annotation(entity: str, name: str) -> Any:
    if name == "description":
        return str
    return ENTITIES[entity].model_fields[name].annotation


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(typing.get_origin(a) is list for a in typing.get_args(annotation))


def _convert(entity: str, name: str, raw: Any) -> Any:
    annotation = _annotation(entity, name)
    value = raw
    if isinstance(raw, str):
        value = raw.strip()
        if value == "":
            return None
        if _is_list(annotation):
            value = [part.strip() for part in value.split(",") if part.strip()]
    try:
        converted = TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise TemplateInputError(f"{name}: {raw!r} is not valid ({reason})") from None
    if name == "priority" and converted is not None and not 1 <= converted <= 5:
        raise TemplateInputError(f"priority: {raw!r} must be from 1 to 5")
    if isinstance(converted, datetime) and converted.tzinfo is None:
        converted = converted.replace(tzinfo=UTC)  # the model's times are UTC
    return getattr(converted, "value", converted)  # enums travel as their values


def prepare(template: Template, given: Mapping[str, Any]) -> dict[str, Any]:
    """The values a writer gets: defaults applied, converted to the model's types, every
    required field present (else one error naming all the missing ones)."""
    if template.target is None:
        raise TemplateInputError(
            f"template {template.id} is a {template.kind}: it creates no record "
            "(forms with a target do; `crosswalk template list` shows them)"
        )
    entity = template.target_entity or ""
    known = template.field_names()
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TemplateInputError(
            f"template {template.id} has no field {', '.join(unknown)}; its fields: {', '.join(known)}"
        )
    values: dict[str, Any] = {}
    for spec in template.fields:
        raw = given.get(spec.name, spec.default)
        value = None if raw is None else _convert(entity, spec.name, raw)
        if value is not None and value != []:
            values[spec.name] = value
    missing = [f.name for f in template.fields if f.required and f.name not in values]
    if missing:
        raise TemplateInputError(
            f"template {template.id} needs {', '.join(missing)}: "
            + " ".join(f"--set {name}=..." for name in missing)
        )
    return values


def correlation_id(template: Template, values: Mapping[str, Any]) -> str:
    """A stable id for "this template applied to these key values": the same request made
    twice maps to one record. Case and surrounding spaces in the key values do not count."""
    keys = {
        name: " ".join(str(values.get(name, "")).split()).casefold() for name in template.key_fields
    }
    digest = hashlib.sha256(json.dumps([template.id, keys], sort_keys=True).encode()).hexdigest()[
        :24
    ]
    return f"{CORRELATION_PREFIX}:{template.id}:{digest}"


@dataclass
class Applied:
    """What applying a template did: the writer's result, the writer used, the correlation
    id and the values sent."""

    result: WriteResult
    writer: str
    correlation_id: str
    values: dict[str, Any]


def apply(
    template: Template,
    adapter: Adapter,
    given: Mapping[str, Any],
    *,
    correlation: str | None = None,
    dry_run: bool = False,
) -> Applied:
    """Create the template's record through the adapter's writer for its target (or the
    first of its alternates the platform offers)."""
    values = prepare(template, given)
    writers = adapter.writers
    key = next((k for k in template.writer_keys if k in writers), None)
    if key is None:
        offered = ", ".join(sorted(writers)) or "nothing"
        raise ConfigError(
            f"source {adapter.source.name} ({adapter.platform}) cannot create "
            f"{' or '.join(template.writer_keys)}: its writers create {offered}"
        )
    cid = correlation or correlation_id(template, values)
    result = writers[key](values, correlation_id=cid, dry_run=dry_run)
    return Applied(result=result, writer=key, correlation_id=cid, values=values)
