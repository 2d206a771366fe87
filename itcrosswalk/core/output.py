"""Rendering rows as a table, JSON or CSV. Returns text or writes to a stream; never prints.

Tables are for people at a terminal: they fit the width they are given, one line per row, a
cell too long for its column cut with an ellipsis (never folded over several lines), times to
the second in the local zone, booleans as yes/no, and data never read as markup. JSON is for
scripts: times in UTC, ISO 8601.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP's CSV-injection advice)."""
    return "'" + cell if cell.startswith(_FORMULA_PREFIXES) else cell


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 strings (aware ones in UTC) and mappings as dicts."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def write_json(rows: Iterable[Mapping[str, Any]], out: TextIO) -> None:
    """A JSON array, streamed row by row so an export of a million records stays small in memory."""
    out.write("[")
    first = True
    for row in rows:
        out.write("\n  " if first else ",\n  ")
        out.write(json.dumps(jsonable(row), ensure_ascii=False, sort_keys=False))
        first = False
    out.write("\n]\n" if not first else "]\n")


def write_csv(
    rows: Iterable[Mapping[str, Any]], out: TextIO, columns: Sequence[str] | None = None
) -> None:
    iterator: Iterator[Mapping[str, Any]] = iter(rows)
    first = next(iterator, None)
    if first is None:
        if columns:
            csv.writer(out).writerow(columns)
        return
    names = list(columns or first.keys())
    writer = csv.writer(out)
    writer.writerow(names)
    for row in _chain(first, iterator):
        writer.writerow([neutralize(_cell(row.get(name))) for name in names])


def _chain(
    first: Mapping[str, Any], rest: Iterator[Mapping[str, Any]]
) -> Iterator[Mapping[str, Any]]:
    yield first
    yield from rest


def table_cell(value: Any) -> str:
    """One cell as a person reads it: local time to the second, yes/no, one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        local = value.astimezone() if value.tzinfo else value
        return local.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    text = _cell(value)
    # A newline or tab in data would fold the row or shift the columns after it.
    return " ".join(text.split()) if any(c in text for c in "\n\r\t") else text


def table_rows(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and one-line string cells for a table."""
    materialized = list(rows)
    names = list(columns or (materialized[0].keys() if materialized else []))
    return names, [[table_cell(row.get(name)) for name in names] for row in materialized]


ELLIPSIS = "\u2026"
_GAP = 2
_FLOOR = 8
"""A text column is never cut narrower than this (or its natural width, if smaller)."""


@dataclass
class Table:
    """A rendered table: its lines, and the columns that did not fit even when cut."""

    lines: list[str]
    hidden: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def _fit(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return set_cell_size(text, width)
    if width <= 1:
        return ELLIPSIS[:width]
    return set_cell_size(text, width - 1) + ELLIPSIS


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+\s?%?$")
_PLACEHOLDERS = ("-", "n/a", "")


def _numeric(values: list[Any]) -> bool:
    """A column of numbers (or numbers already formatted as text, beside - and n/a)."""
    present = [v for v in values if v is not None and v not in _PLACEHOLDERS]
    return bool(present) and all(
        (isinstance(v, int | float) and not isinstance(v, bool))
        or (isinstance(v, str) and _NUMBER.match(v))
        for v in present
    )


def render_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    width: int | None = 80,
    title: str | None = None,
    whole: Sequence[str] = ("source", "stream", "id", "metric"),
) -> Table:
    """Rows as a plain-text table of at most ``width`` cells a line (None: as wide as needed).

    Columns are given in the order of their importance: they are taken while they fit whole,
    and the first that does not is cut to the room left (the rest are left out and named in
    :attr:`Table.hidden`, so the caller can say so). Numbers, times and the ``whole`` columns
    (names a reader types back) are never cut: a cut number misleads.
    """
    from rich.cells import cell_len

    materialized = list(rows)
    names, cells = table_rows(materialized, columns)
    if not names:
        return Table([title] if title else [])
    raw = [[row.get(name) for row in materialized] for name in names]
    natural = [
        max([cell_len(names[i])] + [cell_len(row[i]) for row in cells]) for i in range(len(names))
    ]
    floor = []
    for i, values in enumerate(raw):
        longest = max([cell_len(row[i]) for row in cells], default=0)
        rigid = (
            names[i] in whole
            or _numeric(values)
            or all(isinstance(v, datetime | date) for v in values if v is not None)
        )
        # A rigid column keeps its values whole; only a long header may be cut.
        floor.append(
            max(longest, min(cell_len(names[i]), 11)) if rigid else min(natural[i], _FLOOR)
        )
    widths = list(natural)
    shown = list(range(len(names)))
    hidden: list[str] = []

    def total() -> int:
        return sum(widths[i] for i in shown) + _GAP * (len(shown) - 1)

    if width is not None:
        # Columns come in the order of their importance: they are taken while they fit whole;
        # the first that does not is taken cut (if its floor fits) and ends the line.
        taken: list[int] = []
        for i in range(len(names)):
            whole_fits = sum(natural[j] for j in taken) + natural[i] + _GAP * len(taken) <= width
            if whole_fits:
                taken.append(i)
                continue
            if sum(floor[j] for j in taken) + floor[i] + _GAP * len(taken) <= width:
                taken.append(i)
            break
        shown = taken or [0]
        hidden = [names[i] for i in range(len(names)) if i not in shown]
        excess = total() - width
        slack_total = sum(widths[i] - floor[i] for i in shown)
        if excess > 0 and slack_total > 0:
            # Text columns give way in proportion to what they can spare, so a long message
            # keeps most of the line rather than being cut to the floor first.
            share = min(1.0, excess / slack_total)
            for i in shown:
                widths[i] -= int((widths[i] - floor[i]) * share)
        while total() > width:
            slack = [i for i in shown if widths[i] > floor[i]]
            if slack:
                widest = max(slack, key=lambda i: widths[i])
                widths[widest] -= 1
                continue
            if len(shown) == 1:
                widths[shown[0]] = max(1, width)
                break
            hidden.insert(0, names[shown.pop()])
    gap = " " * _GAP

    def line(values: list[str]) -> str:
        return gap.join(_fit(values[i], widths[i]) for i in shown).rstrip()

    lines = [title] if title else []
    lines.append(line(names))
    lines.append(gap.join("\u2500" * widths[i] for i in shown))
    lines += [line(row) for row in cells]
    return Table(lines, hidden)


def to_text(
    rows: Iterable[Mapping[str, Any]], fmt: str, columns: Sequence[str] | None = None
) -> str:
    buffer = io.StringIO()
    if fmt == "json":
        write_json(rows, buffer)
    elif fmt == "csv":
        write_csv(rows, buffer, columns)
    else:
        raise ValueError(f"to_text renders json or csv, not {fmt}")
    return buffer.getvalue()
