"""What a template is: a form, report, stage-gate set or checklist, written once as data.

A template names the common-model fields it needs, so it means the same thing whichever
platform holds the record. Templates are YAML files (the standard ones ship in
``standard/``), or dicts a plugin registers; both become a :class:`Template`, validated
against the common model, so a misspelt field is an error naming the file, not a silent gap.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..model import ENTITIES

_STRICT = ConfigDict(extra="forbid")

# Check entities and the writer keys' entities must be one of these.
CHECK_ENTITIES = ("work_item", "demand", "ticket")

# A form may carry a long text no entity of the model names: the record's description.
EXTRA_FIELDS = {"description"}


class FieldSpec(BaseModel):
    """One field of a form: a common-model field name, how to ask for it, whether it must be set."""

    model_config = _STRICT

    name: str
    label: str | None = None
    required: bool = False
    key: bool = False
    """Part of the record's identity: the correlation id is derived from the key fields."""
    help: str = ""
    default: Any = None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


class Requirement(BaseModel):
    """What one gate or stage needs of one field.

    ``present``: set (not null, not empty, not ``unknown``); ``positive``: a number above
    zero; ``approved``: true (an approval recorded on the platform).
    """

    model_config = _STRICT

    field: str
    label: str | None = None
    rule: Literal["present", "positive", "approved"] = "present"

    @property
    def title(self) -> str:
        name = self.label or self.field.replace("_", " ")
        return {
            "present": name,
            "positive": f"{name} above zero",
            "approved": f"{name} (approval)",
        }[self.rule]


class Stage(BaseModel):
    """One stage (a gate) of a check: the stage values it covers and what they require."""

    model_config = _STRICT

    id: str
    title: str | None = None
    match: list[str] = Field(default_factory=list)
    """The values of the stage field that put a record at this stage (default: ``[id]``)."""
    requires: list[Requirement] = Field(default_factory=list)
    approvals: list[Requirement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _defaults(self) -> Stage:
        if not self.match:
            self.match = [self.id]
        for approval in self.approvals:
            approval.rule = "approved"
        return self

    def needs(self) -> list[Requirement]:
        return [*self.requires, *self.approvals]


class CheckSpec(BaseModel):
    """The governance check of a template: which records, what places them at a stage, and
    what each stage requires."""

    model_config = _STRICT

    entity: Literal["work_item", "demand", "ticket"] = "work_item"
    kinds: list[str] = Field(default_factory=list)
    """Only these kinds (work items, tickets); empty: every kind."""
    stage_field: str = "phase"
    stage_fallback: dict[str, str] = Field(default_factory=dict)
    """When the stage field is unset or ``unknown``: ``state`` value -> stage value."""
    skip_states: list[str] = Field(default_factory=lambda: ["cancelled"])
    cumulative: bool = False
    """A stage also requires everything the stages before it require (stage gates)."""
    stages: list[Stage] = Field(default_factory=list)

    def stage_for(self, value: str | None) -> tuple[int, Stage] | None:
        for index, stage in enumerate(self.stages):
            if value in stage.match:
                return index, stage
        return None

    def needs(self, index: int) -> list[Requirement]:
        """What a record at stage ``index`` must have, earlier gates included when cumulative."""
        stages = self.stages[: index + 1] if self.cumulative else [self.stages[index]]
        seen: dict[tuple[str, str], Requirement] = {}
        for stage in stages:
            for need in stage.needs():
                seen.setdefault((need.field, need.rule), need)
        return list(seen.values())


class Section(BaseModel):
    """A part of a document: a heading, a prompt for the author, and checklist items."""

    model_config = _STRICT

    title: str
    prompt: str = ""
    items: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)
    """Common-model fields shown in this section when rendered from a record."""


class Template(BaseModel):
    """One standard template.

    Attributes:
        id: the name ``crosswalk template show`` takes (``project-intake``).
        kind: ``form`` (creates a record through a writer), ``report`` (rendered from
            records), ``gates`` (stage gates), ``document`` or ``checklist``.
        target: the writer a form creates its record with: ``demand``,
            ``work_item:project``, ``ticket:incident`` (any platform that offers it).
        fields: the common-model fields the template needs, in order.
        check: what ``crosswalk template check`` holds records to, if anything.
        render: the layout it renders with (``status-report``, ``document``).
        origin: where it was loaded from (``built-in``, a plugin's name, a file).
    """

    model_config = _STRICT

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str
    kind: Literal["form", "report", "gates", "document", "checklist"] = "document"
    description: str = ""
    version: str = "1"
    target: str | None = None
    alternates: list[str] = Field(default_factory=list)
    """Writers of the same entity to use on a platform that cannot create ``target``
    (Jira Align keeps as epics what other platforms keep as projects), in preference order."""
    fields: list[FieldSpec] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    check: CheckSpec | None = None
    render: str = "document"
    origin: str = "built-in"
    overrides: str | None = None
    """The origin of the template with the same id that this one replaced."""

    @property
    def target_entity(self) -> str | None:
        return self.target.split(":", 1)[0] if self.target else None

    @property
    def record_entity(self) -> str | None:
        """The entity whose fields this template names: what it creates, else what it checks,
        else (a report) work items."""
        if self.target_entity:
            return self.target_entity
        if self.check is not None:
            return self.check.entity
        return "work_item" if self.kind == "report" else None

    @model_validator(mode="after")
    def _known_fields(self) -> Template:
        # A field the model does not have would be silently empty on every platform.
        if self.target is not None and self.target_entity not in CHECK_ENTITIES:
            raise ValueError(
                f"target {self.target!r}: the entity must be one of {', '.join(CHECK_ENTITIES)}"
            )
        for other in self.alternates:
            if self.target is None or other.split(":", 1)[0] != self.target_entity:
                raise ValueError(
                    f"alternates: {other!r} must create the same entity as target {self.target!r}"
                )
        entity = self.record_entity
        if entity is not None:
            known = set(ENTITIES[entity].model_fields) | EXTRA_FIELDS
            bad = [f.name for f in self.fields if f.name not in known]
            if bad:
                raise ValueError(f"fields {bad} are not fields of {entity} in the common model")
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("a field is listed twice")
        if self.check is not None:
            known = set(ENTITIES[self.check.entity].model_fields)
            for stage in self.check.stages:
                bad = [n.field for n in stage.needs() if n.field not in known]
                if bad:
                    raise ValueError(
                        f"check stage {stage.id!r}: {bad} are not fields of {self.check.entity}"
                    )
            if self.check.stage_field not in known:
                raise ValueError(f"check.stage_field {self.check.stage_field!r} is not a field")
        return self

    @property
    def writer_keys(self) -> list[str]:
        """The writers that can create this template's record, preferred first."""
        return [self.target, *self.alternates] if self.target else []

    @property
    def key_fields(self) -> list[str]:
        """The fields the correlation id is derived from: the ``key`` ones, else the required."""
        keys = [f.name for f in self.fields if f.key]
        return keys or [f.name for f in self.fields if f.required]

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def summary(self) -> dict[str, Any]:
        """The row ``crosswalk template list`` shows."""
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "target": self.target,
            "checks": self.check.entity if self.check else None,
            "fields": self.field_names(),
            "origin": self.origin,
        }
