"""The plugin author's guide stays true: every hook with its exact callback signature, the
example plugin's files with their real sizes, and a link from the README."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from itcrosswalk import hookspecs
from itcrosswalk.registry import _ACCEPTS, _signature
from tests.example_plugin import HELPDESK

ROOT = Path(__file__).parent.parent
GUIDE = (ROOT / "docs" / "plugins.md").read_text()


def test_every_hook_is_in_the_guide_with_its_signature() -> None:
    hooks = [
        n for n, _ in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("register_")
    ]
    for name in hooks:
        assert f"`{name}`" in GUIDE, f"the guide does not document {name}"
    for name, accept in _ACCEPTS.items():
        row = next(line for line in GUIDE.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"`{_signature(accept)}`" in row, f"{name}: the guide's signature is stale"
        spec = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert f"``{_signature(accept)}``" in spec, f"{name}: the hook's docstring is stale"


def test_the_example_plugin_s_files_are_as_long_as_the_guide_says() -> None:
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \|", GUIDE, re.MULTILINE)
    assert len(rows) == 6
    for path, lines in rows:
        text = (HELPDESK / path).read_text()
        assert len(text.splitlines()) == int(lines), f"{path} has {len(text.splitlines())} lines"


def test_the_readme_links_the_guide() -> None:
    assert "docs/plugins.md" in (ROOT / "README.md").read_text()
