"""The JSON text the store writes is ``json.dumps``'s, whichever way it is made: one encoder
made once, and lists of plain text joined without it."""

from __future__ import annotations

import json
import random
from enum import StrEnum
from typing import Any

import pytest

from itcrosswalk.core.store import _json_value, json_text


class _Kind(StrEnum):
    APP = "app"


CASES: list[Any] = [
    [], [""], ["a"], ["a", "b"], ['a"b'], ["a\\b"], ["é"], ["\x00"], ["\x1f", "x"], ["\x7f"],
    [_Kind.APP, "b"], ["a", 1], [None], [["a"]], ["\ud800"], ["a b", " ", "~", "}", "[", "!"],
    {"a": 1, "b": [1.5, None, True]}, "text", 1.5, float("nan"), None, {"é": "\u2028"},
]  # fmt: skip


@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_the_text_is_json_dumps(value: Any) -> None:
    assert json_text(value) == json.dumps(value)
    assert _json_value(value) == json.dumps(value)


def test_every_character_in_a_list_of_text_is_written_as_json_dumps_writes_it() -> None:
    for code in range(0x3000):
        value = ["id-" + chr(code), "x"]
        assert _json_value(value) == json.dumps(value), hex(code)
    rng = random.Random(7)
    for _ in range(20000):
        value = [
            "".join(chr(rng.randrange(0, 300)) for _ in range(rng.randrange(0, 4)))
            for _ in range(rng.randrange(1, 4))
        ]
        assert _json_value(value) == json.dumps(value), value


def test_a_cycle_is_an_error_not_a_hang() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises((ValueError, RecursionError)):
        json_text(cyclic)
