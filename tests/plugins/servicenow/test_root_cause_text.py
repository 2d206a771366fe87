"""The text of a problem's HTML notes: plain notes are read without HTMLParser, and read the
same as the parser reads them; anything else (comments, raw-text elements, a stray ``<``) goes
through the parser."""

from __future__ import annotations

import random

import pytest

from itcrosswalk.plugins.servicenow import root_cause
from itcrosswalk.plugins.servicenow.root_cause import html_text


def parsed(text: str) -> str:
    """The note as HTMLParser alone reads it (the reference)."""
    import html
    import re

    joined = html.unescape("".join(root_cause._parsed_parts(text))).replace("\xa0", " ")
    return re.sub(r"\s+", " ", joined).strip()


PIECES = [
    "<p>", "</p>", "<P>", "<br>", "<br/>", "<BR />", "<li>", "</li>", "<div class=\"x\">",
    "</div>", "<tr>", "<td>", "</td>", "<span style='color: red'>", "</span>", "<b>", "</b>",
    "<a href=\"https://x/y?a=1&amp;b=2\">", "</a>", "<img src=x alt=\"a > b\">", "<p data-x>",
    "<input disabled>", "<ul>", "</ul>", "<font size=2>", "</ p>", "<p/>", "<p a=b/>",
    "&nbsp;", "&amp;", "&lt;", "&gt;", "&amp;lt;", "&#160;", "&#x41;", "&unknown;", "&", "&#",
    "Disk full", " on ", "the SAN", "\n", "\t", "  ", "café", "Root cause:", "x" * 40,
    "<", ">", "a < b", "<!-- note -->", "<!DOCTYPE html>", "<?xml?>", "<script>if (a<b) {}</script>",
    "<style>p { }</style>", "<script><p>x</p></script>", "<textarea><p></textarea>", "<title>&amp;</title>", "</", "<1>",
    "<p", "\"", "'", "=",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_generated_notes_read_as_the_parser_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for _ in range(250):
        note = "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 14)))
        assert html_text(note) == parsed(note), note
        fast += root_cause._plain_parts(note) is not None
    assert fast >= 25  # the fast path is what most of these test


def test_plain_notes_take_the_fast_path_and_the_rest_the_parser() -> None:
    plain = ["<p>Disk &amp; SAN</p>", '<P CLASS="a">A<br/>B</P>', "&amp;lt;", "<p a=b/>x"]
    for note in plain:
        assert root_cause._plain_parts(note) == root_cause._parsed_parts(note), note
    for note in ["a < b", "<!-- c --><p>x</p>", "<script>x<p></script>", "<p", "<style>p</style>"]:
        assert root_cause._plain_parts(note) is None, note


def test_known_notes() -> None:
    assert html_text("<p></p>") == ""
    assert html_text("<p>Root cause:&nbsp;disk</p><p>full</p>") == "Root cause: disk full"
    assert html_text("<script>a<b</script>") == "a<b"
    assert html_text("  plain   text ") == "plain text"
