"""Third-party plugins the tests install the way pip would -- the package on a ``sys.path``
entry beside a ``.dist-info`` with its entry points -- so they load through the entry-point
path, as an installed plugin does."""

from __future__ import annotations

import shutil
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).parent
HELPDESK = HERE / "helpdesk"
"""The plugin author's guide's complete plugin: a project with its own pyproject.toml."""


def install(site: Path, source: Path, entries: dict[str, str], *, dist: str = "") -> None:
    """Copy the package at ``source`` into ``site`` with a .dist-info naming ``entries``."""
    shutil.copytree(source, site / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = dist or source.name
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[itcrosswalk]\n{lines}")


def install_project(site: Path, project: Path) -> None:
    """Install a plugin project as its pyproject.toml declares it (packages, entry points)."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    entries = meta["project"]["entry-points"]["itcrosswalk"]
    packages = meta["tool"]["setuptools"]["packages"]
    for number, package in enumerate(packages):
        dist = meta["project"]["name"] if number == 0 else package
        install(site, project / package, entries if number == 0 else {}, dist=dist)


@contextmanager
def on_path(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put ``site`` on ``sys.path``; forget the modules imported from it afterwards, so the
    next test imports its own copy."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(site))
    try:
        yield site
    finally:
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            if str(site) in str(getattr(module, "__file__", "") or ""):
                del sys.modules[name]
