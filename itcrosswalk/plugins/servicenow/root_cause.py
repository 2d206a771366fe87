"""Root-cause fields of ServiceNow problems, and the problem an incident names, for the ticket
mapping.

The Madrid state model's problems keep ``cause_notes``, ``fix_notes`` and ``workaround`` as
HTML, reduced here to text so "no root cause" is judged on words, not on ``<p></p>``. A column
the instance lacks (legacy problems have none of them) stays None: not recorded, which is not
the same as recorded empty (``""``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

# The module, not its names: it imports this one too (either may be imported first).
from . import mapping as _mapping

MADRID_STATES = {"101", "102", "103", "104", "106", "107"}
LEGACY_STATES = {"1", "2", "3", "4"}

# native column -> model field, for the problem columns read as text
_NOTES = {"cause_notes": "cause_notes", "fix_notes": "fix_notes", "workaround": "workaround"}
_PROBLEM_COLUMNS = (
    *_NOTES,
    "known_error",
    "resolution_code",
    "duplicate_of",
    "rfc",
    "related_incidents",
    "problem_state",
)


class _Text(HTMLParser):
    """The text of a note, a space for each tag that starts a block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _BLOCK:
            self.parts.append(" ")


_BLOCK = frozenset(("p", "br", "li", "div", "tr"))

# A start or end tag as HTMLParser reads one: a name, then attributes (quoted, unquoted or
# bare), an optional "/" (a self-closing tag is a start tag here, as for the parser).
_TAG = re.compile(
    r"""<(/?)([a-zA-Z][-.a-zA-Z0-9:_]*)"""
    r"""(?:\s+[^\s"'>/=<]+(?:\s*=\s*(?:"[^"<]*"|'[^'<]*'|[^\s"'=<>`]+))?)*\s*/?>"""
)
# Elements whose content the parser reads as raw text, not as tags and data.
_RAW_TEXT = frozenset(
    (*HTMLParser.CDATA_CONTENT_ELEMENTS, *getattr(HTMLParser, "RCDATA_CONTENT_ELEMENTS", ()))
)
_SPACES = re.compile(r"\s+")


def _plain_parts(text: str) -> list[str] | None:
    """What :class:`_Text` collects from ``text``, without the parser, where ``text`` is only
    plain tags and text: every ``<`` opens a tag :data:`_TAG` matches, and none is a comment,
    a declaration or an element of raw text. None for anything else (the parser reads it)."""
    parts: list[str] = []
    add = parts.append
    unescape = html.unescape
    at = 0
    for tag in _TAG.finditer(text):
        data = text[at : tag.start()]
        if "<" in data:
            return None
        if data:
            add(unescape(data))  # what convert_charrefs does to the data between tags
        name = tag[2].lower()
        if name in _RAW_TEXT:
            return None
        if not tag[1] and name in _BLOCK:
            add(" ")
        at = tag.end()
    tail = text[at:]
    if "<" in tail:
        return None
    if tail:
        add(unescape(tail))
    return parts


def _parsed_parts(text: str) -> list[str]:
    parser = _Text()
    parser.feed(text)
    parser.close()
    return parser.parts


def html_text(text: str) -> str:
    """Readable text of an HTML note: tags dropped, entities decoded (``&nbsp;`` is a space),
    whitespace collapsed; ``"<p></p>"`` is ``""``. A note of plain tags and text is read
    without ``HTMLParser`` (a third of a problem's mapping), with the same result
    (test_root_cause.py compares the two on generated notes)."""
    if not text:
        return ""
    if "<" not in text and "&" not in text:
        return " ".join(text.split())
    parts = _plain_parts(text)
    if parts is None:
        parts = _parsed_parts(text)
    joined = html.unescape("".join(parts)).replace("\xa0", " ")
    return _SPACES.sub(" ", joined).strip()


def state_model_of(value: str) -> str | None:
    """The state model a problem's stored state belongs to, from the value alone (the two
    models' codes do not overlap); None for a custom value."""
    if value in MADRID_STATES:
        return "madrid"
    if value in LEGACY_STATES:
        return "legacy"
    return None


def problem_fields(raw: Mapping[str, Any], table: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The root-cause fields of a problem (or the problem an incident names), as model
    fields; their native columns leave ``extra``."""
    if table == "incident":
        if "problem_id" not in raw:
            return {}
        extra.pop("problem_id", None)
        # "" when the instance keeps the column but names no problem: recorded, and none.
        return {"problem_id": _mapping.value(raw, "problem_id")}
    if table != "problem":
        return {}
    display, value = _mapping.display, _mapping.value
    parse_bool, parse_int = _mapping.parse_bool, _mapping.parse_int
    out: dict[str, Any] = {"problem_state_model": state_model_of(value(raw, "state"))}
    for column, name in _NOTES.items():
        if column in raw:
            out[name] = html_text(value(raw, column))
    if "known_error" in raw:
        out["known_error"] = parse_bool(value(raw, "known_error"))
    if "resolution_code" in raw:
        out["resolution_code"] = value(raw, "resolution_code") or None
    if "duplicate_of" in raw:
        out["duplicate_of"] = display(raw, "duplicate_of")
    if "rfc" in raw:
        out["fix_change"] = display(raw, "rfc")
    if "related_incidents" in raw:
        out["related_incidents"] = parse_int(value(raw, "related_incidents"))
    for column in _PROBLEM_COLUMNS:
        extra.pop(column, None)
    return out
