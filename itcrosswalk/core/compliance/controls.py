"""Controls as code: the YAML files a control is written in, validated, and where they come from.

A control is a read-only SQL query over the store that returns one row per resource with
``status`` (``ok``, ``alarm``, ``info``, ``skip``, ``unverified``), ``resource`` and
``reason``, and any dimensions (``department``, ``source``, ``url``, ...), together with what
a reader needs: title, severity, rationale, remediation and framework references. Controls
come from three places, later ones overriding earlier ones by id: the built-in benchmark
(``controls/*.yaml`` beside this module, registered by the standard plugin), the
``register_controls`` hook of other plugins, and the folders ``[controls] folders`` names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..contract import Registry

BUILTIN_DIR = Path(__file__).parent / "controls"
DEFAULT_BENCHMARK = "city"

STATUSES = ("ok", "alarm", "info", "skip", "unverified")
"""What a finding may say. ``unverified``: the data could not be fully read, so neither ok nor alarm."""

SEVERITIES = ("critical", "high", "medium", "low", "info")

Severity = Literal["critical", "high", "medium", "low", "info"]


class References(BaseModel):
    """Where a control comes from in the frameworks the City answers to."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    cis: list[str] = Field(default_factory=list)
    """CIS Controls v8 safeguards (``1.1``, ``3.11``)."""
    nist: list[str] = Field(default_factory=list)
    """NIST SP 800-53 rev. 5 controls (``CM-8``, ``SC-28``)."""
    city: list[str] = Field(default_factory=list)
    """The City's own policy ids."""


class Requirement(BaseModel):
    """Data a control's verdicts depend on beyond the rows' own source.

    When no source of ``platform`` holds ``entity``, every row is ``skip`` (nothing to compare
    with); when such a source could not be read fully, ``ok`` and ``alarm`` become
    ``unverified`` (the absence of a match proves nothing).
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    platform: str
    entity: str


class Control(BaseModel):
    """One compliance control."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    title: str
    severity: Severity
    domain: Literal["endpoints", "service", "portfolio", "data"]
    rationale: str
    remediation: str
    references: References = Field(default_factory=References)
    benchmarks: list[str] = Field(default_factory=lambda: [DEFAULT_BENCHMARK])
    entity: str | None = None
    """The entity the rows are about; an ``ok`` row from a source that could not read it fully
    becomes ``unverified``."""
    requires: list[Requirement] = Field(default_factory=list)
    query: str
    open_tickets: str | None = None
    """Opt-in remediation: the ServiceNow source to open one incident per new alarm in."""
    origin: str = "builtin"
    """Where the control was defined (a file path, or the plugin's name)."""

    @field_validator("entity")
    @classmethod
    def _entity(cls, value: str | None) -> str | None:
        from ..model import ENTITIES

        if value is not None and value not in ENTITIES:
            raise ValueError(f"must be one of {', '.join(sorted(ENTITIES))}")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        code = re.sub(r"--[^\n]*|/\*.*?\*/", " ", value, flags=re.S).strip()
        first = code.split(None, 1)[0].lower() if code else ""
        if first not in ("select", "with"):
            raise ValueError("must be a SELECT (or WITH ... SELECT) statement")
        return value

    def summary(self) -> dict[str, Any]:
        """The control's description without its query: what a report keeps of it."""
        return self.model_dump(mode="json", exclude={"query"})


def _render(exc: ValidationError, where: str) -> str:
    from ..config import render_errors

    return render_errors(exc, Path(where))


def parse_controls(data: Any, where: str) -> list[Control]:
    """Controls from parsed YAML: one mapping, a list of them, or ``{"controls": [...]}``."""
    if isinstance(data, Mapping) and "controls" in data and "query" not in data:
        data = data["controls"]
    items = data if isinstance(data, list) else [data]
    controls = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: control {index + 1} must be a mapping of keys")
        try:
            controls.append(Control.model_validate({"origin": where, **item}))
        except ValidationError as exc:
            label = where if len(items) == 1 else f"{where} (control {index + 1})"
            raise ConfigError(_render(exc, label)) from None
    return controls


def load_file(path: Path) -> list[Control]:
    """The controls of one YAML file; any problem is a :class:`ConfigError` naming file and key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({type(exc).__name__})") from None
    if data is None:
        return []
    controls = parse_controls(data, str(path))
    if path.parent.resolve() == BUILTIN_DIR.resolve():
        controls = [c.model_copy(update={"origin": f"builtin ({path.name})"}) for c in controls]
    return controls


def load_folder(folder: Path) -> list[Control]:
    controls: list[Control] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        controls.extend(load_file(path))
    return controls


def from_plugin(item: Any, plugin: str | None) -> list[Control]:
    """The controls a plugin registered: a Control, a mapping of its keys, or a YAML path."""
    origin = f"plugin {plugin}" if plugin else "plugin"
    if isinstance(item, Control):
        return [item.model_copy(update={"origin": origin})]
    if isinstance(item, str | Path):
        path = Path(item)
        return load_folder(path) if path.is_dir() else load_file(path)
    if isinstance(item, Mapping):
        return parse_controls({"origin": origin, **item}, origin)
    raise ConfigError(
        f"{origin} registered a control of type {type(item).__name__}: "
        "register a Control, a mapping of its keys, or a path to a YAML file or folder"
    )


def load_controls(
    folders: Sequence[Path] = (), plugin_controls: Iterable[Any] = (), *, plugin: str | None = None
) -> dict[str, Control]:
    """Every control by id: built-ins, then the config's folders, then plugins' (later wins)."""
    found: dict[str, Control] = {c.id: c for c in load_folder(BUILTIN_DIR)}
    for folder in folders:
        for control in load_folder(Path(folder)):
            found[control.id] = control
    for item in plugin_controls:
        for control in from_plugin(item, plugin):
            found[control.id] = control
    return dict(sorted(found.items()))


def controls_for(config: Any, pm: Registry) -> dict[str, Control]:
    """The controls in effect, by id: the registry's (the standard pack's, then plugins'), then
    the config's folders (later wins, so the City may replace any control)."""
    found: dict[str, Control] = {c.id: c for c in pm.controls()}
    for folder in list(config.controls.folders) if config is not None else []:
        for control in load_folder(Path(folder)):
            found[control.id] = control
    return dict(sorted(found.items()))


FRAMEWORK_BENCHMARKS = {"cis-v8": "cis", "nist-800-53": "nist"}
"""Benchmarks every control joins by its references: ``--benchmark cis-v8`` runs the controls
that map to a CIS Controls v8 safeguard."""


def _in_benchmark(control: Control, name: str) -> bool:
    framework = FRAMEWORK_BENCHMARKS.get(name)
    if framework is not None and getattr(control.references, framework):
        return True
    return name in control.benchmarks


def benchmarks(controls: Mapping[str, Control]) -> list[str]:
    """Every benchmark name ``--benchmark`` accepts: those the controls join, and the
    frameworks every control joins by its references."""
    return sorted({b for c in controls.values() for b in c.benchmarks} | set(FRAMEWORK_BENCHMARKS))


def select(
    controls: Mapping[str, Control],
    *,
    benchmark: str | None = None,
    ids: Sequence[str] = (),
) -> list[Control]:
    """The controls of a benchmark (default: the City's), or exactly ``ids`` (of that
    benchmark, when one is named too)."""
    if ids:
        unknown = [i for i in ids if i not in controls]
        if unknown:
            raise ConfigError(
                f"no control {', '.join(unknown)}; known: {', '.join(sorted(controls))}"
            )
        chosen = [controls[i] for i in ids]
        return [c for c in chosen if benchmark is None or _in_benchmark(c, benchmark)]
    name = benchmark or DEFAULT_BENCHMARK
    chosen = [c for c in controls.values() if _in_benchmark(c, name)]
    if not chosen:
        raise ConfigError(f"no benchmark {name!r}; known: {', '.join(benchmarks(controls))}")
    return chosen
