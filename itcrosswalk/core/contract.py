"""What the core needs from the plugins: the shape of the registry it is handed.

The core never loads plugins and never imports the plugin manager (``itcrosswalk.registry``);
the caller (the CLI, a test, a job runner) builds the registry and passes it down. This module
declares the registry's typed getters and the records they return, so the core is typed
against an interface, not against pluggy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the real classes import SQLAlchemy and pydantic models
    from .adapter import Adapter
    from .compliance.controls import Control
    from .metrics import Metric
    from .templates.model import Template


@dataclass(frozen=True)
class PlatformInfo:
    """A platform as a plugin registered it."""

    name: str
    adapter: type[Adapter]
    plugin: str
    mapping: Any = None
    config_model: Any = None


@dataclass(frozen=True)
class SandboxInfo:
    """A platform emulator as a plugin registered it."""

    name: str
    factory: Callable[..., Any]
    plugin: str
    source: Callable[[str, str], dict[str, Any]] | None = None
    """``source(user, secret_ref)`` -> the source table's keys (auth, ...), or None for basic."""


class Registry(Protocol):
    """The plugins' contributions, validated, in registration order (built-ins first)."""

    @property
    def errors(self) -> Mapping[str, str]:
        """Plugin name -> why it failed to load or register (empty when all is well)."""
        ...

    def platforms(self) -> Mapping[str, PlatformInfo]:
        """Platform id -> its adapter class and crosswalk tables."""
        ...

    def sandboxes(self) -> Mapping[str, SandboxInfo]:
        """Platform id -> its emulator factory."""
        ...

    def metrics(self) -> Sequence[Metric]:
        """Every metric definition: the standard pack's, then the plugins'."""
        ...

    def controls(self) -> Sequence[Control]:
        """Every compliance control: the standard pack's, then the plugins'."""
        ...

    def templates(self) -> Sequence[Template | Mapping[str, Any]]:
        """Every registered template (a mapping is parsed, and its problems reported, later)."""
        ...
