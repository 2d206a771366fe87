"""The plugin manager: built-in plugins and entry points, loaded one at a time so one broken
plugin is reported instead of taking the others down.

The built-in plugins live in the sub-packages here and go through the same hooks as
third-party ones. The rest of the code reaches hooks only through the typed getters here.
(DESIGN.md names this module ``plugins.py`` beside a ``plugins/`` folder; Python resolves the
package first, so the manager is the package's ``__init__``, with the same import path.)
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from .. import hookspecs

DEFAULT_PLUGINS: tuple[str, ...] = (
    "itcrosswalk.plugins.servicenow",
    "itcrosswalk.plugins.intune",
    "itcrosswalk.plugins.jira_align",
    "itcrosswalk.plugins.project_online",
    "itcrosswalk.plugins.jira",
)

ENTRY_POINT_GROUP = "itcrosswalk"


@dataclass
class PlatformInfo:
    """A platform as a plugin registered it."""

    name: str
    adapter: type
    plugin: str
    mapping: Any = None
    config_model: Any = None


@dataclass
class LoadState:
    """What loading found: plugin name -> module or dist, and plugin name -> error."""

    loaded: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _wanted() -> set[str] | None:
    # ITCROSSWALK_LOAD_PLUGINS='' loads none; 'a,b' loads only those (by plugin name or module).
    value = os.environ.get("ITCROSSWALK_LOAD_PLUGINS")
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _short_name(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def make_manager(
    *,
    builtins: tuple[str, ...] = DEFAULT_PLUGINS,
    entry_points_group: str | None = ENTRY_POINT_GROUP,
) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-ins and installed plugins loaded."""
    pm = pluggy.PluginManager("itcrosswalk")
    pm.add_hookspecs(hookspecs)
    state = LoadState()
    pm.crosswalk_state = state  # type: ignore[attr-defined]
    wanted = _wanted()
    for module_name in builtins:
        name = _short_name(module_name)
        if wanted is not None and name not in wanted and module_name not in wanted:
            continue
        try:
            module = importlib.import_module(module_name)
            pm.register(module, name=name)
            state.loaded[name] = module_name
        except Exception as exc:  # a broken plugin is reported, never fatal
            state.errors[name] = _describe(exc)
    if entry_points_group:
        for ep in entry_points(group=entry_points_group):
            if wanted is not None and ep.name not in wanted:
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
                dist = ep.dist.name if ep.dist else ep.value
                state.loaded[ep.name] = dist
            except Exception as exc:
                state.errors[ep.name] = _describe(exc)
    return pm


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


_PM: pluggy.PluginManager | None = None


def get_manager() -> pluggy.PluginManager:
    """The process-wide manager, made on first use (never at import time)."""
    global _PM
    if _PM is None:
        _PM = make_manager()
    return _PM


def set_manager(pm: pluggy.PluginManager | None) -> None:
    """Swap the process-wide manager (tests use a fresh one each)."""
    global _PM
    _PM = pm


def _collect(
    hook_name: str, pm: pluggy.PluginManager | None, errors: dict[str, str]
) -> list[tuple[str, tuple, dict]]:
    """Call a registration hook plugin by plugin, so one that raises is reported, not fatal."""
    pm = pm or get_manager()
    collected: list[tuple[str, tuple, dict]] = []
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

        def register(*args: Any, _plugin: str = plugin_name, **kwargs: Any) -> None:
            collected.append((_plugin, args, kwargs))

        try:
            impl.function(register=register)
        except Exception as exc:
            errors[plugin_name] = _describe(exc)
    return collected


def load_state(pm: pluggy.PluginManager | None = None) -> LoadState:
    pm = pm or get_manager()
    return pm.crosswalk_state  # type: ignore[attr-defined,no-any-return]


def get_platforms(pm: pluggy.PluginManager | None = None) -> dict[str, PlatformInfo]:
    """Platform id -> its adapter class and crosswalk tables."""
    state = load_state(pm)
    platforms: dict[str, PlatformInfo] = {}
    for plugin, args, kwargs in _collect("register_platforms", pm, state.errors):
        name, adapter = args[0], args[1]
        platforms[name] = PlatformInfo(name=name, adapter=adapter, plugin=plugin, **kwargs)
    return platforms


@dataclass
class SandboxInfo:
    """A platform emulator as a plugin registered it."""

    name: str
    factory: Any
    plugin: str
    source: Any = None
    """``source(user, secret_ref)`` -> the source table's keys (auth, ...), or None for basic."""


def get_sandboxes(pm: pluggy.PluginManager | None = None) -> dict[str, SandboxInfo]:
    """Platform id -> its emulator factory ``factory(world, faults, *, users)``."""
    state = load_state(pm)
    return {
        args[0]: SandboxInfo(name=args[0], factory=args[1], plugin=plugin, **kwargs)
        for plugin, args, kwargs in _collect("register_sandboxes", pm, state.errors)
    }


def get_metrics(pm: pluggy.PluginManager | None = None) -> list[Any]:
    state = load_state(pm)
    return [args[0] for _p, args, _kw in _collect("register_metrics", pm, state.errors)]


def get_controls(pm: pluggy.PluginManager | None = None) -> list[Any]:
    state = load_state(pm)
    return [args[0] for _p, args, _kw in _collect("register_controls", pm, state.errors)]


def get_templates(pm: pluggy.PluginManager | None = None) -> list[Any]:
    state = load_state(pm)
    return [args[0] for _p, args, _kw in _collect("register_templates", pm, state.errors)]


def attach_commands(cli: Any, pm: pluggy.PluginManager | None = None) -> None:
    """Let plugins add click commands; a plugin whose hook raises is reported, not fatal."""
    pm = pm or get_manager()
    state = load_state(pm)
    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        try:
            impl.function(cli=cli)
        except Exception as exc:
            state.errors[pm.get_name(impl.plugin) or repr(impl.plugin)] = _describe(exc)


def describe_plugins(pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """What ``crosswalk plugins`` prints: every plugin, its hooks, and its error if it failed."""
    pm = pm or get_manager()
    state = load_state(pm)
    get_platforms(pm)  # registration errors surface here too
    rows: list[dict[str, Any]] = []
    for name, origin in sorted(state.loaded.items()):
        plugin = pm.get_plugin(name)
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or [])) if plugin else []
        rows.append(
            {"name": name, "origin": origin, "hooks": hooks, "error": state.errors.get(name)}
        )
    for name, error in sorted(state.errors.items()):
        if name not in state.loaded:
            rows.append({"name": name, "origin": None, "hooks": [], "error": error})
    return rows
