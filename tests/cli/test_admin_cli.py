"""The CLI as an admin lives with it: tables that fit the terminal, names checked, one source's
failure spoiling no other, runs and quarantine on view, store and file errors in one line."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import QuarantineItem, Store
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate

WIDTHS = (80, 120)


@dataclass
class Site:
    """Every emulator serving a tiny city, a config pointing at them, synced once."""

    box: Any
    config: Path
    directory: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    pm = make_registry(entry_points_group=None)
    directory = tmp_path_factory.mktemp("admin")
    with runner.start(generate(7, "tiny"), pm=pm) as box:
        config = runner.write_config(box, directory)
        first = CliRunner().invoke(make_cli(pm), ["--config", str(config), "sync"])
        assert first.exit_code == 0, first.output
        yield Site(box, config, directory)


def invoke(site: Site, *args: str, width: int = 120) -> Any:
    cli = make_cli(make_registry(entry_points_group=None))
    return CliRunner().invoke(
        cli, ["--config", str(site.config), *args], env={"COLUMNS": str(width)}
    )


def assert_fits(text: str, width: int) -> list[str]:
    """Every line within ``width`` cells; returns the lines."""
    lines = text.splitlines()
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, too_long
    return lines


def table_body(lines: list[str]) -> list[str]:
    """The lines after a table's header rule: one per row, if no cell folded."""
    rule = next(i for i, line in enumerate(lines) if line.startswith("\u2500"))
    return [line for line in lines[rule + 1 :] if line and not line.startswith("(")]


# -- output that fits ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_status_is_one_line_per_source_at_the_terminal_width(site: Site, width: int) -> None:
    result = invoke(site, "status", width=width)
    assert result.exit_code == 0, result.output
    body = table_body(assert_fits(result.output, width))
    configured = sorted(tomllib.loads(site.config.read_text())["sources"])
    assert len(configured) >= 4 and "sandbox-servicenow" in configured
    assert [line.split()[0] for line in body] == configured
    assert all(" ok " in line for line in body)
    streams = invoke(site, "status", "sandbox-servicenow", width=width)
    body = table_body(assert_fits(streams.output, width))
    names = [line.split()[0] for line in body]
    assert len(names) == 18 and "incident" in names and "kb_knowledge" in names


@pytest.mark.parametrize("width", WIDTHS)
def test_sync_summary_fits_and_logs_one_greppable_line_per_stream(site: Site, width: int) -> None:
    table = invoke(site, "sync", "--format", "table", width=width)
    assert table.exit_code == 0, table.output
    lines = assert_fits(table.stdout, width)
    assert sum(1 for line in lines if line.startswith("incident ")) == 1
    logged = invoke(site, "sync", "sandbox-servicenow", width=width)  # not a terminal: lines
    assert logged.exit_code == 0, logged.output
    incident = [line for line in logged.stdout.splitlines() if "stream=incident " in line]
    assert len(incident) == 1
    assert incident[0].startswith("sync source=sandbox-servicenow stream=incident status=ok read=")
    assert re.search(r" full=no\b", incident[0])
    assert "outcome=ok exit_code=0 streams=18" in logged.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_check_fits_and_names_streams_as_sync_does(site: Site, width: int) -> None:
    result = invoke(site, "check", width=width)
    assert result.exit_code == 0, result.output
    body = table_body(assert_fits(result.stdout, width))
    checks = json.loads(invoke(site, "check", "--format", "json").stdout)
    assert len(body) == len(checks) >= 25  # one line per check: no cell folded
    assert any(line.split()[1] == "deviceStatuses" for line in body)
    checked = {
        (r["source"], r["stream"])
        for r in json.loads(invoke(site, "check", "--format", "json").stdout)
    }
    synced = {
        (r["source"], r["stream"])
        for r in json.loads(invoke(site, "sync", "--format", "json").stdout)
    }
    # Clarity's sign-in and API key expiry are said on its first stream's line.
    assert checked == synced


@pytest.mark.parametrize("width", WIDTHS)
def test_export_fits_one_line_per_record(site: Site, width: int) -> None:
    result = invoke(site, "export", "tickets", width=width)
    assert result.exit_code == 0, result.output
    body = table_body(assert_fits(result.stdout, width))
    rows = json.loads(invoke(site, "export", "tickets", "--format", "json").stdout)
    assert len(body) == len(rows) > 20


def test_wide_gives_every_column_whole(site: Site) -> None:
    narrow = invoke(site, "status", "sandbox-servicenow", width=80)
    assert "left out" in narrow.stderr
    wide = invoke(site, "status", "sandbox-servicenow", "--wide", width=80)
    assert "left out" not in wide.stderr and "last full read" in wide.stdout


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, suggestion",
    [
        (("export", "tickets", "--source", "sandbox-servicenw"), "sandbox-servicenow"),
        (("export", "ticket"), "tickets"),
        (("status", "sandbox-intun"), "sandbox-intune"),
        (("runs", "sandbox-intun"), "sandbox-intune"),
        (("quarantine", "sandbox-intun"), "sandbox-intune"),
        (("sync", "sandbox-servicenw"), "sandbox-servicenow"),
        (("check", "sandbox-servicenw"), "sandbox-servicenow"),
        (("sync", "--stream", "incidnt"), "incident"),
        (("metrics", "--source", "sandbox-servicenw"), "sandbox-servicenow"),
        (("metrics", "--metric", "itsm.volum"), "itsm.volume"),
        (("metrics", "show", "itsm.volum"), "itsm.volume"),
        (("metrics", "--by", "departmnet"), "department"),
        (("report", "service", "--source", "sandbox-servicenw"), "sandbox-servicenow"),
        (("report", "service", "--by", "departmnet"), "department"),
        (
            ("report", "compliance", "--control", "endpoint.disk_encryptio"),
            "endpoint.disk_encryption",
        ),
        (("template", "check", "--source", "sandbox-servicenw"), "sandbox-servicenow"),
        (("template", "show", "project-charte"), "project-charter"),
    ],
)
def test_a_mistyped_name_is_a_usage_error_naming_the_nearest(
    site: Site, args: tuple[str, ...], suggestion: str, tmp_path: Path
) -> None:
    result = invoke(site, *args)
    assert result.exit_code == 2, result.output
    assert f"did you mean '{suggestion}'?" in result.stderr
    assert "Traceback" not in result.output


def test_a_stream_applies_only_to_the_sources_offering_it(site: Site) -> None:
    store = Store(load_config(site.config).store.url)
    try:
        before = {name: len(store.runs(name, limit=100)) for name in store.source_names()}
        result = invoke(site, "sync", "--stream", "incident")
        assert result.exit_code == 0, result.output
        after = {name: len(store.runs(name, limit=100)) for name in store.source_names()}
    finally:
        store.close()
    assert after["sandbox-servicenow"] == before["sandbox-servicenow"] + 1
    assert {k: v for k, v in after.items() if k != "sandbox-servicenow"} == {
        k: v for k, v in before.items() if k != "sandbox-servicenow"
    }
    assert [line for line in result.stdout.splitlines() if "stream=" in line] == [
        line for line in result.stdout.splitlines() if "stream=incident " in line
    ]


# -- one source failing -------------------------------------------------------------------------------


def test_an_unreachable_source_stops_no_other(site: Site, tmp_path: Path) -> None:
    text = site.config.read_text()
    unreachable = (
        '[sources.aaa-down]\nplatform = "servicenow"\nurl = "https://127.0.0.1:9"\n'
        'auth = { type = "basic", user = "u", password = "env:NOT_NEEDED" }\n\n'
    )
    # First in the file, so it is synced first.
    config = tmp_path / "crosswalk.toml"
    head, _, rest = text.partition("[sources.")
    config.write_text(head + unreachable + "[sources." + rest)
    for name in ("sandbox-secret", runner.CA_FILE):
        (tmp_path / name).write_bytes((site.directory / name).read_bytes())
    (tmp_path / "sandbox-secret").chmod(0o600)
    cli = make_cli(make_registry(entry_points_group=None))
    result = CliRunner(env={"NOT_NEEDED": "x"}).invoke(
        cli, ["--config", str(config), "sync", "aaa-down", "sandbox-jira-align"]
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("sync source=aaa-down outcome=failed exit_code=1") for line in lines)
    assert result.stderr.startswith("error: sync of aaa-down failed: ")
    assert sum(1 for line in lines if "source=sandbox-jira-align stream=" in line) == 6
    assert any("source=sandbox-jira-align outcome=ok" in line for line in lines)


# -- status tells the truth ---------------------------------------------------------------------------


def test_status_lists_sources_never_synced_and_a_running_sync(site: Site, tmp_path: Path) -> None:
    config = tmp_path / "crosswalk.toml"
    config.write_text(
        site.config.read_text()
        + '\n[sources.later]\nplatform = "servicenow"\nurl = "https://snow.example.org"\n'
        'auth = { type = "basic", user = "u", password = "env:LATER" }\n'
    )
    for name in ("sandbox-secret", runner.CA_FILE):
        (tmp_path / name).write_bytes((site.directory / name).read_bytes())
    store = Store(load_config(config).store.url)
    try:
        store.acquire_lock("sandbox-jira-align", "ops@host pid 4242", host="elsewhere", pid=4242)
        cli = make_cli(make_registry(entry_points_group=None))
        result = CliRunner(env={"COLUMNS": "200"}).invoke(
            cli, ["--config", str(config), "status", "--format", "json"]
        )
    finally:
        store.release_lock("sandbox-jira-align", "ops@host pid 4242")
        store.close()
    rows = {r["source"]: r for r in json.loads(result.stdout)}
    assert rows["later"]["outcome"] == "never"
    assert "never synced: run `crosswalk sync later`" in rows["later"]["note"]
    assert rows["sandbox-jira-align"]["outcome"] == "running"
    assert "ops@host pid 4242" in rows["sandbox-jira-align"]["note"]


def test_a_failed_runs_reason_is_in_status_and_runs(site: Site, tmp_path: Path) -> None:
    store = Store(load_config(site.config).store.url)
    try:
        run_id = store.start_run(
            source="sandbox-intune", full=False, dry_run=False, holder="me", manifest={}
        )
        store.finish_run(
            run_id,
            outcome="failed",
            counts={},
            error="cannot reach source sandbox-intune: check the url",
            manifest={},
        )
        status = invoke(site, "status", width=80)
        runs = invoke(site, "runs", "sandbox-intune", "--format", "json")
    finally:
        store.close()
        # Later tests expect this source healthy again.
        invoke(site, "sync", "sandbox-intune")
    line = next(line for line in status.stdout.splitlines() if line.startswith("sandbox-intune"))
    assert " failed " in line and "cannot reach" in line
    assert len(line) <= 80
    latest = json.loads(runs.stdout)[0]
    assert latest["outcome"] == "failed" and "cannot reach" in latest["reason"]


def test_incremental_windows_leave_the_platform_count_of_the_full_read(site: Site) -> None:
    invoke(site, "sync", "sandbox-servicenow")
    rows = json.loads(invoke(site, "status", "sandbox-servicenow", "--format", "json").stdout)
    incident = next(r for r in rows if r["stream"] == "incident")
    assert incident["platform_count"] == incident["records"] > 1
    assert incident["gap"] == 0 and incident["platform_count_at"]
    assert incident["window_count"] is not None and incident["window_count"] < incident["records"]


# -- runs and quarantine ---------------------------------------------------------------------------------


def test_runs_and_quarantine_show_what_happened(site: Site, tmp_path: Path) -> None:
    runs = invoke(site, "runs", "--format", "json")
    assert runs.exit_code == 0
    history = json.loads(runs.stdout)
    assert history and {"id", "source", "outcome", "seconds", "read", "reason"} <= set(history[0])
    store = Store(load_config(site.config).store.url)
    try:
        store.write_page(
            source="sandbox-servicenow",
            stream="incident",
            entity="ticket",
            records=[],
            quarantined=[
                QuarantineItem("bad1", "ValueError: priority [red]x[/red]", {"number": "INC1"})
            ],
        )
        listed = invoke(site, "quarantine", "sandbox-servicenow", "--format", "json")
        [item] = [r for r in json.loads(listed.stdout) if r["source_id"] == "bad1"]
        shown = invoke(site, "quarantine", "--show", str(item["id"]))
        table = invoke(site, "quarantine", width=80)
        missing = invoke(site, "quarantine", "--show", "999999")
    finally:
        store.close()
    assert shown.exit_code == 0, shown.output
    assert "ValueError: priority [red]x[/red]" in shown.stdout
    assert '"number": "INC1"' in shown.stdout
    assert "crosswalk sync sandbox-servicenow --stream incident --full" in shown.stdout
    assert_fits(table.stdout, 80)
    assert missing.exit_code == 2


# -- errors in one line -------------------------------------------------------------------------------


def _config_with_store(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "crosswalk.toml"
    path.write_text(f'[store]\nurl = "{url}"\n')
    return path


def test_a_store_that_cannot_open_is_one_line_naming_it(tmp_path: Path) -> None:
    cli = make_cli(make_registry(entry_points_group=None))
    down = _config_with_store(tmp_path, "postgresql+psycopg://crosswalk:s3cret-pw@127.0.0.1:9/cw")
    result = CliRunner().invoke(cli, ["--config", str(down), "status"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "store postgresql+psycopg://crosswalk:***@127.0.0.1:9/cw" in line
    assert "s3cret-pw" not in result.output and "database server is up" in line
    folder = tmp_path / "db-is-a-folder"
    folder.mkdir()
    bad = _config_with_store(tmp_path, f"sqlite:///{folder}")
    result = CliRunner().invoke(cli, ["--config", str(bad), "status"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert str(folder) in line and "Background on this error" not in line


def test_a_store_under_a_file_is_one_line_naming_the_path(tmp_path: Path) -> None:
    cli = make_cli(make_registry(entry_points_group=None))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = _config_with_store(tmp_path, f"sqlite:///{blocker}/crosswalk.db")
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert str(blocker) in line and "unexpected" not in line


@pytest.mark.parametrize("url", ["sqlit:///x.db", "postgresql+psycopg3://u@h/db"])
def test_a_store_url_typo_names_the_key_the_file_and_the_known_dialects(
    tmp_path: Path, url: str
) -> None:
    cli = make_cli(make_registry(entry_points_group=None))
    config = _config_with_store(tmp_path, url)
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    dialect = url.split("://")[0]
    assert line.startswith(f"error: {config.resolve()}: store.url: ")
    assert f"unknown database dialect {dialect!r}" in line
    assert "known: sqlite, postgresql+psycopg" in line
    assert "bug" not in line and "NoSuchModuleError" not in line


def test_store_failure_blames_a_url_sqlalchemy_cannot_use_on_store_url() -> None:
    import sqlalchemy as sa

    from itcrosswalk.core.errors import ConfigError
    from itcrosswalk.core.store import store_failure

    line = store_failure("sqlit:///x.db", sa.exc.NoSuchModuleError("no sqlit"))
    assert line.startswith("store.url: unknown database dialect 'sqlit'") and "bug" not in line
    with pytest.raises(ConfigError, match=r"store\.url: unknown database dialect 'mysqll'"):
        Store("mysqll://u@h/db")


def test_a_command_failing_on_its_arguments_leaves_no_file(site: Site, tmp_path: Path) -> None:
    for args in (
        ("export", "tickets", "-o", str(tmp_path / "t.xlsx")),
        ("export", "tickets", "--source", "nope", "-o", str(tmp_path / "t.json")),
        ("status", "-o", str(tmp_path / "s.html")),
    ):
        result = invoke(site, *args)
        assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == []
    written = invoke(site, "export", "tickets", "-o", str(tmp_path / "t.csv"))
    assert written.exit_code == 0, written.output
    assert (tmp_path / "t.csv").read_text().startswith("source,platform,")
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


@pytest.mark.parametrize(
    "args, name",
    [
        (("plugins",), "p.json"),
        (("metrics", "list"), "m.csv"),
        (("metrics", "--metric", "itsm.volume"), "v.json"),
        (("report", "controls"), "c.csv"),
        (("status",), "s.json"),
        (("runs",), "r.csv"),
        (("template", "list"), "t.json"),
        (("check",), "k.json"),
    ],
)
def test_every_data_command_writes_o_in_the_format_of_its_extension(
    site: Site, args: tuple[str, ...], name: str, tmp_path: Path
) -> None:
    target = tmp_path / name
    result = invoke(site, *args, "-o", str(target))
    assert result.exit_code == 0, result.output
    text = target.read_text()
    if name.endswith(".json"):
        assert isinstance(json.loads(text), list)
    else:
        assert "," in text.splitlines()[0] and "\u2500" not in text


# -- check validates what sync would --------------------------------------------------------------


def _config(tmp_path: Path, site: Site, extra: str) -> Path:
    text = site.config.read_text().replace(
        "[sources.sandbox-servicenow]", extra + "\n[sources.sandbox-servicenow]"
    )
    for name in ("sandbox-secret", runner.CA_FILE):
        (tmp_path / name).write_bytes((site.directory / name).read_bytes())
    (tmp_path / "sandbox-secret").chmod(0o600)
    path = tmp_path / "crosswalk.toml"
    path.write_text(text)
    return path


def test_check_fails_as_sync_would_one_line_per_problem(site: Site, tmp_path: Path) -> None:
    url = site.box.urls["servicenow"]
    config = _config(
        tmp_path,
        site,
        f'[sources.nosecret]\nplatform = "servicenow"\nurl = "{url}"\nca_bundle = "{runner.CA_FILE}"\n'
        'auth = { type = "basic", user = "crosswalk", password = "env:CROSSWALK_UNSET_SECRET" }\n'
        '\n[sources.badstreams]\nplatform = "servicenow"\n'
        f'url = "{url}"\nca_bundle = "{runner.CA_FILE}"\nstreams = ["incidents"]\n'
        'auth = { type = "basic", user = "crosswalk", password = "env:CROSSWALK_UNSET_SECRET" }\n'
        '\n[sources.refused]\nplatform = "servicenow"\nurl = "https://127.0.0.1:9"\n'
        'auth = { type = "basic", user = "u", password = "env:CROSSWALK_UNSET_SECRET" }\n',
    )
    cli = make_cli(make_registry(entry_points_group=None))
    for source in ("nosecret", "badstreams", "refused"):
        checked = CliRunner(env={"COLUMNS": "200"}).invoke(
            cli, ["--config", str(config), "check", source]
        )
        synced = CliRunner().invoke(cli, ["--config", str(config), "sync", source])
        assert checked.exit_code == synced.exit_code == 1, (source, checked.output, synced.output)
        body = table_body(checked.stdout.splitlines())
        assert len(body) == 1, (source, body)
    streams = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["--config", str(config), "check", "badstreams"]
    )
    assert "unknown stream(s) incidents" in streams.stdout


def test_check_and_sync_refuse_a_config_without_sources(tmp_path: Path) -> None:
    config = _config_with_store(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    cli = make_cli(make_registry(entry_points_group=None))
    for command in ("check", "sync"):
        result = CliRunner().invoke(cli, ["--config", str(config), command])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {config.resolve()}: no sources configured")


_MISSING_SECRET = {
    "servicenow": 'auth = { type = "basic", user = "svc", password = "env:CROSSWALK_UNSET_SECRET" }',
    "jira": 'auth = { type = "basic", user = "a@city.gov", password = "env:CROSSWALK_UNSET_SECRET" }',
    "clarity": 'auth = { type = "basic", user = "svc", password = "env:CROSSWALK_UNSET_SECRET" }',
    "jira_align": 'auth = { type = "bearer", token = "env:CROSSWALK_UNSET_SECRET" }',
    "project_online": 'auth = { type = "basic", user = "svc", password = "env:CROSSWALK_UNSET_SECRET" }',
    "intune": 'tenant_id = "00000000-0000-0000-0000-000000000000"\n'
    'auth = { type = "oauth_client_credentials", client_id = "x", '
    'client_secret = "env:CROSSWALK_UNSET_SECRET" }',
}


def test_a_missing_secret_is_config_on_every_platform_and_check_gives_no_estimate(
    tmp_path: Path,
) -> None:
    # Clarity said "config" and Jira "error" for the same unset variable; and check printed
    # "a first sync will make about 0 requests" under the rows saying no sync could run.
    text = f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
    for platform, auth in _MISSING_SECRET.items():
        text += f'\n[sources.{platform}]\nplatform = "{platform}"\n'
        if platform != "intune":
            text += 'url = "https://127.0.0.1:9"\n'
        text += auth + "\n"
    config = tmp_path / "crosswalk.toml"
    config.write_text(text)
    cli = make_cli(make_registry(entry_points_group=None))
    result = CliRunner().invoke(cli, ["--config", str(config), "check", "--format", "json"])
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert {r["source"] for r in rows} == set(_MISSING_SECRET)
    assert {(r["source"], r["status"]) for r in rows} == {(p, "config") for p in _MISSING_SECRET}
    assert all("CROSSWALK_UNSET_SECRET is not set" in r["detail"] for r in rows)
    table = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["--config", str(config), "check"])
    assert table.exit_code == 1
    assert "a first sync will make" not in table.stderr


def test_check_gives_the_estimate_only_when_every_row_passed(site: Site, tmp_path: Path) -> None:
    cli = make_cli(make_registry(entry_points_group=None))
    good = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["--config", str(site.config), "check"])
    assert good.exit_code == 0, good.output
    assert re.search(r"a first sync will make about [1-9]\d* requests", good.stderr)
    url = site.box.urls["servicenow"]
    config = _config(
        tmp_path,
        site,
        f'[sources.badstreams]\nplatform = "servicenow"\nurl = "{url}"\n'
        f'ca_bundle = "{runner.CA_FILE}"\nstreams = ["incidents"]\n'
        'auth = { type = "basic", user = "crosswalk", password = "env:CROSSWALK_UNSET_SECRET" }\n',
    )
    bad = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["--config", str(config), "check", "badstreams"]
    )
    assert bad.exit_code == 1 and "unknown stream(s) incidents" in bad.stdout
    assert "a first sync will make" not in bad.stderr
