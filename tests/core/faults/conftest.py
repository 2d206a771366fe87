"""The fault suite runs against real emulators: the shared emulator fixtures and ServiceNow's
configs, one place for every fault test here."""

from __future__ import annotations

from tests.plugins.conftest import open_store, pm, serve
from tests.plugins.servicenow.conftest import (
    instance,
    instance_factory,
    make_config,
    snow_env,
    world,
)

__all__ = [
    "instance",
    "instance_factory",
    "make_config",
    "open_store",
    "pm",
    "serve",
    "snow_env",
    "world",
]
