"""`crosswalk schedule` prints lines that work as printed: the cron line run as cron runs it
(a bare environment, another directory), the systemd unit run as systemd would run it."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """A config whose ServiceNow password is ``env:SNOW_PASSWORD`` (given in crosswalk.env),
    a jobs file with one scheduled sync, and the emulator they point at."""
    pm = make_registry(entry_points_group=None)
    folder = tmp_path_factory.mktemp("city ops")  # a space, as real paths have
    with runner.start(generate(7, "tiny"), pm=pm, platforms=["servicenow"]) as box:
        written = runner.write_config(box, folder)
        text = written.read_text().replace(
            f'"file:{(folder / runner.SECRET_FILE).resolve()}"', '"env:SNOW_PASSWORD"'
        )
        assert "env:SNOW_PASSWORD" in text
        written.write_text(text)
        env_file = folder / "crosswalk.env"
        env_file.write_text(f"SNOW_PASSWORD={box.secret}\n")
        env_file.chmod(0o600)
        jobs = folder / "jobs.toml"
        jobs.write_text(
            '[jobs.nightly]\nschedule = "30 1 * * *"\nsync = ["sandbox-servicenow"]\nreports = []\n'
        )
        yield written, jobs, box.secret


def _schedule(jobs: Path, style: str, cwd: Path, *options: str) -> Any:
    cli = make_cli(make_registry(entry_points_group=None))
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [*options, "schedule", str(jobs), style])
    finally:
        os.chdir(old)


def test_the_cron_line_runs_as_printed_in_a_bare_environment(
    scheduled: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, jobs, secret = scheduled
    # As an admin would: from the config's folder, without --config.
    result = _schedule(jobs, "--cron", config.parent)
    assert result.exit_code == 0, result.output
    assert "SNOW_PASSWORD" in result.stdout and secret not in result.stdout
    [line] = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    fields = line.split(None, 5)
    assert fields[:5] == ["30", "1", "*", "*", "*"]
    command = fields[5].replace("\\%", "%")  # what cron hands to /bin/sh
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    ran = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", command], cwd=elsewhere, capture_output=True, text=True
    )
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    log = jobs.parent / "crosswalk-nightly.log"
    assert "nightly" in log.read_text() and secret not in log.read_text()
    assert list(elsewhere.iterdir()) == []


def _units(text: str) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Units as ``{file name: {section: {key: [values]}}}``, parsed as systemd reads them."""
    units: dict[str, dict[str, dict[str, list[str]]]] = {}
    current: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# /etc/systemd/system/"):
            current = units.setdefault(line.rsplit("/", 1)[1], {})
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            current.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        current[section].setdefault(key, []).append(value)
    return units


def _environment_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return values


def test_the_systemd_unit_runs_as_systemd_would_run_it(
    scheduled: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, jobs, secret = scheduled
    # From another folder, with a relative --config.
    relative = os.path.relpath(config, tmp_path)
    result = _schedule(jobs, "--systemd", tmp_path, "--config", relative)
    assert result.exit_code == 0, result.output
    units = _units(result.stdout)
    service = units["crosswalk-job-nightly.service"]["Service"]
    assert units["crosswalk-job-nightly.timer"]["Timer"]["OnCalendar"] == ["*-*-* 01:30:00"]
    assert service["User"] == [getpass.getuser()]
    # systemd: a clean environment, Environment= then EnvironmentFile=, in WorkingDirectory=,
    # ExecStart= split by its own quoting rules with $$ and %% unescaped, no shell.
    env: dict[str, str] = {}
    for assignment in service.get("Environment", []):
        for pair in shlex.split(assignment):
            key, _, value = pair.partition("=")
            env[key] = value
    for file in service.get("EnvironmentFile", []):
        env.update(_environment_file(Path(file.lstrip("-"))))
    assert env["SNOW_PASSWORD"] == secret
    [exec_start] = service["ExecStart"]
    argv = shlex.split(exec_start.replace("$$", "$").replace("%%", "%"))
    assert Path(argv[0]).is_absolute()
    [workdir] = service["WorkingDirectory"]
    ran = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    assert "nightly" in ran.stdout and secret not in ran.stdout + ran.stderr
