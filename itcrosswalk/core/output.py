"""Rendering rows as a table, JSON or CSV. Returns text or writes to a stream; never prints."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP's CSV-injection advice)."""
    return "'" + cell if cell.startswith(_FORMULA_PREFIXES) else cell


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
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


def table_rows(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and string cells for a rich table."""
    materialized = list(rows)
    names = list(columns or (materialized[0].keys() if materialized else []))
    return names, [[_cell(row.get(name)) for name in names] for row in materialized]


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
