"""Where templates come from: the standard set shipped in the package, plugins'
``register_templates`` hook, and the City's own folders named in ``[templates] folders``.

Later sources override earlier ones by id, in that order, so a City can replace a standard
template with its own version without forking the package. A template that does not validate
is reported with where it came from and why; the others stay usable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from .model import Template

if TYPE_CHECKING:
    from ..contract import Registry

STANDARD_DIR = Path(__file__).parent / "standard"


@dataclass
class Catalog:
    """The templates in effect, by id, and the problems found while loading them."""

    templates: dict[str, Template] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> Template:
        """The template ``name``, or a ConfigError listing the ones there are."""
        try:
            return self.templates[name]
        except KeyError:
            known = ", ".join(sorted(self.templates)) or "none"
            hint = f" ({'; '.join(self.problems)})" if self.problems else ""
            raise ConfigError(f"no template named {name!r}; templates: {known}{hint}") from None

    def add(self, template: Template) -> None:
        previous = self.templates.get(template.id)
        if previous is not None:
            template.overrides = previous.origin
        self.templates[template.id] = template

    def with_checks(self) -> list[Template]:
        return [t for _, t in sorted(self.templates.items()) if t.check is not None]


def _problem(origin: str, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'template'}: {err['msg']}"
            for err in exc.errors()
        ]
        return f"{origin}: " + "; ".join(parts)
    return f"{origin}: {exc}"


def parse(data: Any, origin: str) -> Template:
    """One template from a mapping (a YAML document or a plugin's dict) or a Template."""
    if isinstance(data, Template):
        return data.model_copy(update={"origin": origin})
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: a template is a mapping with at least id and title")
    return Template.model_validate({**data, "origin": origin})


def _documents(path: Path) -> Iterable[Any]:
    text = path.read_text(encoding="utf-8")
    for document in yaml.safe_load_all(text):
        if isinstance(document, list):
            yield from document
        elif document is not None:
            yield document


def load_folder(catalog: Catalog, folder: Path, *, origin: str | None = None) -> None:
    """Add every template in ``*.yaml``/``*.yml`` files of ``folder`` (one or more a file)."""
    if not folder.is_dir():
        catalog.problems.append(f"templates folder {folder} does not exist")
        return
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        where = origin or str(path)
        try:
            documents = list(_documents(path))
        except (OSError, yaml.YAMLError) as exc:
            catalog.problems.append(f"{where}: not readable YAML: {exc}".replace("\n", " "))
            continue
        for document in documents:
            try:
                catalog.add(parse(document, where))
            except (ValidationError, ConfigError) as exc:
                catalog.problems.append(_problem(where, exc))


def standard_templates() -> list[Template]:
    """The standard set shipped in the package (the standard plugin registers them)."""
    catalog = Catalog()
    load_folder(catalog, STANDARD_DIR, origin="built-in")
    if catalog.problems:
        raise ConfigError("; ".join(catalog.problems))
    return list(catalog.templates.values())


def load_catalog(config: Any, pm: Registry) -> Catalog:
    """The templates in effect: the registry's (standard, then plugins'), then the config's
    folders."""
    catalog = Catalog()
    for registered in pm.templates():
        origin = (
            registered.origin
            if isinstance(registered, Template)
            else str(registered.get("origin", "plugin"))
        )
        try:
            catalog.add(parse(registered, origin))
        except (ValidationError, ConfigError) as exc:
            catalog.problems.append(_problem(origin, exc))
    if config is not None:
        for folder in config.templates.folders:  # resolved against the config file's folder
            load_folder(catalog, Path(folder).expanduser())
    return catalog
