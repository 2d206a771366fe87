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
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("p", "br", "li", "div", "tr"):
            self.parts.append(" ")


def html_text(text: str) -> str:
    """Readable text of an HTML note: tags dropped, entities decoded (``&nbsp;`` is a space),
    whitespace collapsed; ``"<p></p>"`` is ``""``."""
    if not text:
        return ""
    if "<" not in text and "&" not in text:
        return " ".join(text.split())
    parser = _Text()
    parser.feed(text)
    parser.close()
    joined = html.unescape("".join(parser.parts)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", joined).strip()


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
        from .mapping import value

        extra.pop("problem_id", None)
        # "" when the instance keeps the column but names no problem: recorded, and none.
        return {"problem_id": value(raw, "problem_id")}
    if table != "problem":
        return {}
    from .mapping import display, parse_bool, parse_int, value

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
