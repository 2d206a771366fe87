"""Tables for people: they fit the width, cut rather than fold, and print data as it is."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from itcrosswalk.core.output import jsonable, render_table, table_cell, to_text


@pytest.fixture
def phoenix(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/Phoenix")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_cells_are_local_to_the_second_and_yes_no(phoenix: None) -> None:
    moment = datetime(2026, 11, 1, 12, 0, 5, 123456, tzinfo=UTC)
    assert table_cell(moment) == "2026-11-01 05:00:05"
    assert table_cell(True) == "yes" and table_cell(False) == "no"
    assert table_cell(None) == ""
    assert table_cell("two\nlines") == "two lines"
    assert jsonable(moment.astimezone()) == "2026-11-01T12:00:05.123456+00:00"
    assert json.loads(to_text([{"at": moment}], "json"))[0]["at"].endswith("+00:00")


def test_markup_in_data_is_printed_as_it_is() -> None:
    rows = [{"title": "[red]core[/red]", "advice": "set ca_bundle in [sources.snow]"}]
    text = render_table(rows, width=120).text
    assert "[red]core[/red]" in text and "[sources.snow]" in text


@pytest.mark.parametrize("width", [40, 80, 120])
def test_a_table_fits_its_width_with_one_line_per_row(width: int) -> None:
    rows = [
        {
            "source": "sandbox-project-online",
            "records": 123456,
            "message": "the platform counts 3000 rows but only 1445 could be read " * 2,
            "when": datetime(2026, 11, 1, tzinfo=UTC),
        }
        for _ in range(5)
    ]
    table = render_table(rows, width=width)
    assert all(len(line) <= width for line in table.lines), table.lines
    assert len(table.lines) == 2 + len(rows)
    body = table.lines[2:]
    assert all(line.startswith("sandbox-project-online") for line in body)
    if width >= 80:
        assert "123456" in body[0] and "\u2026" in body[0]  # the message is cut, not folded
    wide = render_table(rows, width=None)
    assert rows[0]["message"].strip() in wide.lines[2] and not wide.hidden


def test_columns_that_do_not_fit_are_named() -> None:
    rows = [{"source": "s" * 30, "stream": "t" * 30, "detail": "x" * 50}]
    table = render_table(rows, width=70)
    assert table.hidden == ["detail"]
    assert all(len(line) <= 70 for line in table.lines)
