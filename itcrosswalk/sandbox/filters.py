"""What the emulators' query languages share once a filter is parsed: comparing a row's value
with a literal the way a platform's server does (``None`` equals only ``None``; a number
literal compares numerically, a string literal as text; values that do not compare never
match)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "=": operator.eq,
    "ne": operator.ne, "!=": operator.ne,
    "gt": operator.gt, ">": operator.gt,
    "ge": operator.ge, ">=": operator.ge,
    "lt": operator.lt, "<": operator.lt,
    "le": operator.le, "<=": operator.le,
}  # fmt: skip
"""OData's words and the symbols other platforms use, for the same comparisons."""


def compare(op: str, left: Any, right: Any) -> bool:
    """Whether ``left`` (a row's value) ``op`` ``right`` (the literal) holds."""
    test = OPERATORS[op]
    if left is None or right is None:
        if test is operator.eq:
            return left is right
        return test is operator.ne and (left is None) != (right is None)
    if isinstance(right, bool) or isinstance(left, bool):
        left, right = bool(left), bool(right)
    elif isinstance(right, int | float) and not isinstance(left, int | float):
        try:
            left = float(left)
        except (TypeError, ValueError):
            return False
    elif isinstance(right, str):
        left = str(left)
    try:
        return bool(test(left, right))
    except TypeError:
        return False
