"""Plugins broken in each way a plugin can be, one object each (entry points name them):
the tests prove each is reported by name while every other plugin keeps working."""

from __future__ import annotations

from typing import Any

from itcrosswalk.hookspecs import hookimpl


class _NotAnAdapter:
    """Has the look of an adapter but does not subclass itcrosswalk.core.adapter.Adapter."""

    def streams(self) -> list[Any]:
        return []


class Misspelt:
    """``register_metric`` is not a hook: pluggy's check_pending finds it."""

    @hookimpl
    def register_metric(self, register: Any) -> None:  # the hook is register_metrics
        raise AssertionError("never called")


class BadArguments:
    """Calls register with a keyword the callback does not take."""

    @hookimpl
    def register_platforms(self, register: Any) -> None:
        register(name="badargs", adaptor=_NotAnAdapter)


class Raises:
    """A hook that raises while registering."""

    @hookimpl
    def register_sandboxes(self, register: Any) -> None:
        raise RuntimeError("the emulator needs a vendor file that is missing")


class WrongType:
    """Registers a plain dict where a Metric belongs, and a class that is not an Adapter."""

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register({"id": "wrongtype.count", "title": "A dict is not a metric"})

    @hookimpl
    def register_platforms(self, register: Any) -> None:
        register("wrongtype", _NotAnAdapter)


class HalfAControl:
    """A control mapping without its query: a load error, not a failed compliance report."""

    @hookimpl
    def register_controls(self, register: Any) -> None:
        register({"id": "halfcontrol.x", "title": "No query"})


MISSPELT = Misspelt()
BAD_ARGUMENTS = BadArguments()
RAISES = Raises()
WRONG_TYPE = WrongType()
HALF_A_CONTROL = HalfAControl()
