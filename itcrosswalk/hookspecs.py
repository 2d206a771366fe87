"""The hooks a plugin may implement. This module declares hooks and nothing else."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("itcrosswalk")
hookimpl = pluggy.HookimplMarker("itcrosswalk")


@hookspec
def register_platforms(register: Any) -> None:
    """Register platform adapters: ``register(name, adapter, *, mapping=None, config_model=None)``.

    ``name`` is the platform id used in config and the store (``servicenow``); ``adapter`` a
    subclass of ``itcrosswalk.core.adapter.Adapter``; ``mapping`` is
    the module or dict of crosswalk tables ``crosswalk plugins show NAME`` prints;
    ``config_model`` is a pydantic model validating the source's platform-specific keys.
    """


@hookspec
def register_sandboxes(register: Any) -> None:
    """Register platform emulators: ``register(name, factory, *, source=None)``.

    ``factory(world, faults, *, users)`` returns a WSGI application serving the seeded city
    world in the platform's API shape, honouring the fault switches and accepting the
    ``users`` (name -> password or token) it is given; ``name`` is the platform id.
    ``source(user, secret_ref)`` returns the keys of the ``[sources.NAME]`` table that point
    itcrosswalk at the emulator beyond ``platform``, ``url`` and ``ca_bundle`` (its ``auth``,
    a ``tenant_id``); without it the source uses basic auth with ``user`` and the secret.
    """


@hookspec
def register_metrics(register: Any) -> None:
    """Register metric definitions: ``register(metric)``, an instance of a ``Metric`` subclass.

    ``Metric`` is ``itcrosswalk.core.metrics.Metric`` (``SqlMetric`` covers most); a metric with
    the id of a standard one replaces it. A pack computes several metrics at once, in threads
    (``[metrics] threads``): a metric's ``compute`` reads what it is given and keeps no state of
    its own between calls.
    """


@hookspec
def register_controls(register: Any) -> None:
    """Register compliance controls: ``register(control)``.

    ``control`` is a ``Control``, a mapping of its YAML keys, or the path of a YAML file or
    folder of them; it is validated when registered, so a malformed one is this plugin's error.
    """


@hookspec
def register_templates(register: Any) -> None:
    """Register standard templates: ``register(template)``, a ``Template`` or a mapping of its keys.

    A mapping that does not validate is listed among the catalog's problems; the plugin's other
    templates stay usable.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Attach extra click commands to the ``crosswalk`` group ``cli``."""
