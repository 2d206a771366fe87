"""The plugin manager: loads the built-in plugins and installed ones, one at a time, and hands
the rest of itcrosswalk a typed registry of what they registered.

Every contribution goes through a hook, the standard metrics, controls and templates included
(the ``standard`` plugin). Each ``register`` callback has a real signature and checks what it
is given, so a plugin that registers the wrong thing is reported by name when it registers,
not when a command trips over it later. A plugin that fails in any way -- does not import,
implements a hook that does not exist, calls ``register`` wrongly, raises -- is recorded in
``errors`` and left out; the other plugins load as if it were not there.

The core never imports this module: it is typed against :class:`itcrosswalk.core.contract.Registry`
and receives a :class:`PluginRegistry` from its caller.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import traceback
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .core.contract import PlatformInfo, SandboxInfo
from .core.errors import PluginLoadError

if TYPE_CHECKING:
    from .core.compliance.controls import Control
    from .core.metrics import Metric
    from .core.templates.model import Template

STANDARD_PLUGIN = "itcrosswalk.plugins.standard"
"""The standard metrics, controls and templates: always loaded, through the same hooks."""
_STANDARD_NAME = "standard"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "itcrosswalk.plugins.servicenow",
    "itcrosswalk.plugins.intune",
    "itcrosswalk.plugins.jira_align",
    "itcrosswalk.plugins.project_online",
    "itcrosswalk.plugins.clarity",
    "itcrosswalk.plugins.jira",
    "itcrosswalk.plugins.planner_premium",
)
"""The built-in platform plugins (``ITCROSSWALK_LOAD_PLUGINS`` may leave them out)."""

ENTRY_POINT_GROUP = "itcrosswalk"

_PLATFORM_ID = re.compile(r"[a-z][a-z0-9_]*\Z")


def _wanted() -> set[str] | None:
    # ITCROSSWALK_LOAD_PLUGINS='' loads none; 'a,b' loads only those (by plugin name or module).
    value = os.environ.get("ITCROSSWALK_LOAD_PLUGINS")
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _short_name(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PluginLoadError):
        return str(exc)  # already says what and where
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:120]


# -- what each register callback accepts ----------------------------------------------------
#
# One function per hook: its signature is the callback's signature (the hook's docstring
# repeats it), and it returns the validated records or raises PluginLoadError naming the problem.


def _platform(
    plugin: str,
    name: str,
    adapter: type,
    *,
    mapping: Any = None,
    config_model: Any = None,
) -> list[PlatformInfo]:
    from pydantic import BaseModel

    from .core.adapter import Adapter

    if not isinstance(name, str) or not _PLATFORM_ID.match(name):
        raise PluginLoadError(
            f"platform name {name!r} is not an id (lower case letters, digits, underscores)"
        )
    if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
        raise PluginLoadError(
            f"platform {name!r}: the adapter must be a subclass of "
            f"itcrosswalk.core.adapter.Adapter, got {_kind(adapter)}"
        )
    if config_model is not None and not (
        isinstance(config_model, type) and issubclass(config_model, BaseModel)
    ):
        raise PluginLoadError(
            f"platform {name!r}: config_model must be a pydantic model class, got {_kind(config_model)}"
        )
    return [PlatformInfo(name, adapter, plugin, mapping=mapping, config_model=config_model)]


def _sandbox(
    plugin: str,
    name: str,
    factory: Callable[..., Any],
    *,
    source: Callable[[str, str], dict[str, Any]] | None = None,
) -> list[SandboxInfo]:
    if not isinstance(name, str) or not _PLATFORM_ID.match(name):
        raise PluginLoadError(f"sandbox name {name!r} is not a platform id")
    if not callable(factory):
        raise PluginLoadError(
            f"sandbox {name!r}: factory(world, faults, *, users) must be callable, got {_kind(factory)}"
        )
    if source is not None and not callable(source):
        raise PluginLoadError(
            f"sandbox {name!r}: source(user, secret_ref) must be callable, got {_kind(source)}"
        )
    return [SandboxInfo(name, factory, plugin, source=source)]


def _metric(plugin: str, metric: Metric) -> list[Metric]:
    from .core.metrics import Metric

    if not isinstance(metric, Metric):
        raise PluginLoadError(
            f"a metric must be an instance of a subclass of itcrosswalk.core.metrics.Metric, "
            f"got {_kind(metric)}"
        )
    if not isinstance(metric.id, str) or not metric.id:
        raise PluginLoadError(f"metric {type(metric).__name__} has no id")
    return [metric]


def _control(plugin: str, control: Control | Mapping[str, Any] | str | Path) -> list[Control]:
    from .core.compliance.controls import from_plugin
    from .core.errors import ConfigError

    try:
        # Parsed now, so a malformed control is this plugin's load error, not a failed report.
        return from_plugin(control, None if plugin == _STANDARD_NAME else plugin)
    except ConfigError as exc:
        raise PluginLoadError(str(exc)) from None


def _template(plugin: str, template: Template | Mapping[str, Any]) -> list[Any]:
    from .core.templates.model import Template

    if not isinstance(template, Template | Mapping):
        raise PluginLoadError(
            f"a template must be an itcrosswalk.core.templates.model.Template or a mapping "
            f"of its keys, got {_kind(template)}"
        )
    # A mapping's own validation stays with the catalog: it reports the template's problems by
    # field while the plugin's other templates stay usable.
    origin = "built-in" if plugin == _STANDARD_NAME else "plugin"
    if isinstance(template, Template):
        return [template.model_copy(update={"origin": origin})]
    return [{**template, "origin": origin}]


_ACCEPTS: dict[str, Callable[..., list[Any]]] = {
    "register_platforms": _platform,
    "register_sandboxes": _sandbox,
    "register_metrics": _metric,
    "register_controls": _control,
    "register_templates": _template,
}


def _signature(accept: Callable[..., Any]) -> str:
    """``register(name, adapter, *, mapping=None, ...)``: the callback as a plugin calls it."""
    params = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in list(inspect.signature(accept).parameters.values())[1:]  # drop `plugin`
    ]
    return "register" + str(inspect.Signature(params))


class PluginRegistry:
    """The loaded plugins and their validated contributions (see :class:`core.contract.Registry`).

    ``pm`` is the underlying pluggy manager, for introspection; contributions are read through
    the typed getters, each computed once and recomputed after :meth:`register`.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("itcrosswalk")
        self.pm.add_hookspecs(hookspecs)
        self.loaded: dict[str, str] = {}
        """Plugin name -> the module or distribution it came from."""
        self._errors: dict[str, list[str]] = {}
        self._cache: dict[str, list[Any]] = {}

    # -- loading -------------------------------------------------------------------------------

    @property
    def errors(self) -> dict[str, str]:
        """Plugin name -> why it failed to load or to register something."""
        return {name: "; ".join(problems) for name, problems in self._errors.items()}

    def _fail(self, plugin: str, problem: str) -> None:
        if problem not in self._errors.setdefault(plugin, []):
            self._errors[plugin].append(problem)

    def register(self, plugin: object, name: str | None = None, *, origin: str = "") -> bool:
        """Add one plugin object or module; False (and the reason in ``errors``) if it is broken."""
        name = name or _short_name(getattr(plugin, "__name__", type(plugin).__name__))
        self._cache.clear()
        try:
            self.pm.register(plugin, name=name)
            # Per plugin: every plugin before this one passed, so a hook implementation without
            # a spec (a misspelt hook name) found now is this plugin's.
            self.pm.check_pending()
        except Exception as exc:
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            self._fail(name, _describe(exc))
            return False
        self.loaded[name] = origin or getattr(plugin, "__name__", type(plugin).__module__)
        return True

    def load_module(self, module_name: str, name: str | None = None) -> bool:
        """Import a plugin module and register it; an import error is that plugin's alone."""
        name = name or _short_name(module_name)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            self._fail(name, _describe(exc))
            return False
        return self.register(module, name, origin=module_name)

    def load_entry_points(self, group: str, wanted: set[str] | None = None) -> None:
        """Load the installed plugins of an entry-point group, one at a time."""
        for ep in entry_points(group=group):
            if wanted is not None and ep.name not in wanted:
                continue
            if self.pm.get_plugin(ep.name) is not None or ep.name in self._errors:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(ep.name, _describe(exc))
                continue
            self.register(plugin, ep.name, origin=ep.dist.name if ep.dist else ep.value)

    # -- the typed getters -------------------------------------------------------------------

    def _collect(self, hook_name: str) -> list[Any]:
        """Call one registration hook plugin by plugin, in registration order.

        A plugin's registrations to this hook count only if all of them were valid and its
        hook returned: a half-registered plugin would be harder to explain than a missing one.
        """
        if hook_name in self._cache:
            return self._cache[hook_name]
        accept = _ACCEPTS[hook_name]
        signature = inspect.signature(accept)
        collected: list[Any] = []
        # get_hookimpls() is in registration order (pluggy calls them in reverse): the standard
        # pack first, so a later plugin's contribution replaces one with the same id.
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            pending: list[Any] = []

            def register(
                *args: Any, _plugin: str = plugin, _pending: list[Any] = pending, **kwargs: Any
            ) -> None:
                try:
                    signature.bind(_plugin, *args, **kwargs)
                except TypeError as exc:
                    raise PluginLoadError(
                        f"plugin {_plugin}: {hook_name}: {exc}; call {_signature(accept)}"
                    ) from None
                try:
                    _pending.extend(accept(_plugin, *args, **kwargs))
                except PluginLoadError as exc:
                    raise PluginLoadError(f"plugin {_plugin}: {hook_name}: {exc}") from None

            try:
                impl.function(register=register)
            except Exception as exc:
                problem = _describe(exc)
                if not isinstance(exc, PluginLoadError):
                    problem = f"plugin {plugin}: {hook_name} raised {problem}"
                self._fail(plugin, problem)
                continue
            collected.extend(pending)
        self._cache[hook_name] = collected
        return collected

    def platforms(self) -> dict[str, PlatformInfo]:
        """Platform id -> its adapter class and crosswalk tables."""
        return {info.name: info for info in self._collect("register_platforms")}

    def sandboxes(self) -> dict[str, SandboxInfo]:
        """Platform id -> its emulator factory ``factory(world, faults, *, users)``."""
        return {info.name: info for info in self._collect("register_sandboxes")}

    def metrics(self) -> list[Metric]:
        """Every metric, the standard pack's first."""
        return list(self._collect("register_metrics"))

    def controls(self) -> list[Control]:
        """Every control, the standard pack's first, parsed and validated."""
        return list(self._collect("register_controls"))

    def templates(self) -> list[Template | Mapping[str, Any]]:
        """Every registered template, the standard set's first."""
        return list(self._collect("register_templates"))

    def attach_commands(self, cli: Any) -> None:
        """Let plugins add click commands; a plugin whose hook raises is reported, not fatal."""
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            plugin = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self._fail(plugin, f"plugin {plugin}: register_commands raised {_describe(exc)}")

    def describe(self) -> list[dict[str, Any]]:
        """What ``crosswalk plugins`` prints: every plugin, its hooks, and its error if any."""
        for hook_name in _ACCEPTS:  # registration errors surface here too
            self._collect(hook_name)
        errors = self.errors
        rows: list[dict[str, Any]] = []
        for name, origin in sorted(self.loaded.items()):
            plugin = self.pm.get_plugin(name)
            hooks = (
                sorted(h.name for h in (self.pm.get_hookcallers(plugin) or [])) if plugin else []
            )
            rows.append({"name": name, "origin": origin, "hooks": hooks, "error": errors.get(name)})
        for name, error in sorted(errors.items()):
            if name not in self.loaded:
                rows.append({"name": name, "origin": None, "hooks": [], "error": error})
        return rows


def make_registry(
    *,
    builtins: tuple[str, ...] = DEFAULT_PLUGINS,
    entry_points_group: str | None = ENTRY_POINT_GROUP,
    standard: bool = True,
) -> PluginRegistry:
    """A fresh registry: the standard pack, the built-ins and the installed plugins."""
    registry = PluginRegistry()
    if standard:
        registry.load_module(STANDARD_PLUGIN)
    wanted = _wanted()
    for module_name in builtins:
        name = _short_name(module_name)
        if wanted is None or name in wanted or module_name in wanted:
            registry.load_module(module_name, name)
    if entry_points_group:
        registry.load_entry_points(entry_points_group, wanted)
    return registry


_REGISTRY: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry, made on first use (never at import time)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = make_registry()
    return _REGISTRY


def set_registry(registry: PluginRegistry | None) -> None:
    """Swap the process-wide registry (tests use a fresh one each)."""
    global _REGISTRY
    _REGISTRY = registry
