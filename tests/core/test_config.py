"""crosswalk.toml: loading, validation messages, secret references, digest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from itcrosswalk.core.config import (
    STARTER_CONFIG,
    BasicAuth,
    Config,
    OAuthClientCredentialsAuth,
    config_digest,
    find_config_path,
    load_config,
)
from itcrosswalk.core.errors import ConfigError

VALID = """
[store]
url = "sqlite:///data/crosswalk.db"

[sources.snow-prod]
platform = "servicenow"
url = "https://city.service-now.com"
auth = { type = "basic", user = "svc_crosswalk", password = "env:SNOW_PASSWORD" }
page_size = 500
streams = ["incident"]
columns = { incident = { department = "u_department" } }

[sources.intune]
platform = "intune"
tenant_id = "tenant-1"
enabled = false
auth = { type = "oauth_client_credentials", client_id = "app-1", client_secret = "keyring:graph/app-1" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crosswalk.toml"
    path.write_text(text)
    return path


def problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return str(caught.value)


def test_a_valid_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    snow = config.sources["snow-prod"]
    assert snow.name == "snow-prod"
    assert isinstance(snow.auth, BasicAuth) and snow.auth.password == "env:SNOW_PASSWORD"
    assert snow.page_size == 500 and snow.streams == ["incident"]
    assert snow.timeout == 60 and snow.max_retries == 5 and snow.overlap_seconds == 300
    assert snow.platform_options() == {"columns": {"incident": {"department": "u_department"}}}
    intune = config.sources["intune"]
    assert isinstance(intune.auth, OAuthClientCredentialsAuth)
    assert intune.enabled is False and intune.platform_options() == {"tenant_id": "tenant-1"}
    assert config.path == (tmp_path / "crosswalk.toml").resolve()


def test_relative_sqlite_path_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.store.url == f"sqlite:///{tmp_path.resolve() / 'data' / 'crosswalk.db'}"


def test_other_store_urls_are_kept(tmp_path: Path) -> None:
    for url in (
        "sqlite:///:memory:",
        "postgresql+psycopg://crosswalk@db/crosswalk",
        "sqlite:////srv/x.db",
    ):
        config = load_config(write(tmp_path, f'[store]\nurl = "{url}"\n'))
        assert config.store.url == url


def test_the_starter_config_is_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, STARTER_CONFIG))
    assert config.sources["snow-prod"].platform == "servicenow"
    assert "env:SNOW_PASSWORD" in STARTER_CONFIG
    for platform in ("intune", "jira_align", "project_online"):
        assert f'# platform = "{platform}"' in STARTER_CONFIG


def test_every_commented_line_of_the_starter_is_valid_toml_once_uncommented(
    tmp_path: Path,
) -> None:
    # `user = "CITY\svc_crosswalk"` was an "Unescaped '\'" error the moment it was uncommented.
    assignment = re.compile(r"^# ?([A-Za-z_][\w-]*) = ")
    lines = [line[2:] for line in STARTER_CONFIG.splitlines() if assignment.match(line)]
    assert len(lines) >= 15
    for line in lines:
        try:
            tomllib.loads(line)
        except tomllib.TOMLDecodeError as exc:
            raise AssertionError(f"{line!r}: {exc}") from None
    # The Project Server block, uncommented as an admin would (the OAuth line is the
    # alternative to auth), is a source whose Windows account keeps its backslash.
    block = STARTER_CONFIG.split("# [sources.pwa]")[1].split("# Project Online refuses")[0]
    text = (
        STARTER_CONFIG
        + "\n[sources.pwa]"
        + "".join(f"\n{line[2:]}" for line in block.splitlines() if assignment.match(line))
    )
    pwa = load_config(write(tmp_path, text)).sources["pwa"]
    assert pwa.auth is not None and pwa.auth.user == "CITY\\svc_crosswalk"


def test_a_misspelt_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    text = VALID.replace('password = "env:SNOW_PASSWORD"', 'pasword = "env:SNOW_PASSWORD"')
    message = problem(tmp_path, text)
    assert "sources.snow-prod.auth.pasword: unknown key; did you mean 'password'?" in message
    assert "sources.snow-prod.auth.password: required key is missing" in message


def test_unknown_top_level_and_store_keys(tmp_path: Path) -> None:
    message = problem(tmp_path, '[store]\nurll = "sqlite:///x.db"\n\n[sourcse.x]\nplatform = "y"\n')
    assert "store.urll: unknown key; did you mean 'url'?" in message
    assert "sourcse: unknown key; did you mean 'sources'?" in message
    assert "2 problems" in message


def test_out_of_range_values(tmp_path: Path) -> None:
    message = problem(tmp_path, VALID.replace("page_size = 500", "page_size = 20000\ntimeout = 0"))
    assert "sources.snow-prod.page_size: must be at most 10000" in message
    assert "sources.snow-prod.timeout: must be greater than 0" in message


def test_a_literal_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = VALID.replace('"env:SNOW_PASSWORD"', '"Correct-Horse-Battery"')
    message = problem(tmp_path, text)
    assert (
        "sources.snow-prod.auth.password: a literal secret is not allowed; "
        "use env:NAME, keyring:SERVICE/USER or file:PATH"
    ) in message
    assert "Correct-Horse-Battery" not in message


def test_an_unknown_auth_type(tmp_path: Path) -> None:
    message = problem(tmp_path, VALID.replace('type = "basic"', 'type = "basik"'))
    assert "sources.snow-prod.auth: unknown type 'basik'; expected one of 'basic'" in message
    assert "env:SNOW_PASSWORD" not in message


def test_a_bad_source_name(tmp_path: Path) -> None:
    message = problem(tmp_path, '[sources."Snow Prod"]\nplatform = "servicenow"\n')
    assert message.endswith(
        'sources."Snow Prod": source names use lowercase letters, digits, - and _, '
        "starting with a letter or digit (e.g. snow-prod)"
    )


def test_ca_bundle_is_resolved_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "city-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = '[sources.snow]\nplatform = "servicenow"\nca_bundle = "city-ca.pem"\n'
    assert (
        load_config(write(tmp_path, text)).sources["snow"].ca_bundle
        == tmp_path.resolve() / "city-ca.pem"
    )
    message = problem(tmp_path, text.replace("city-ca.pem", "missing.pem"))
    assert (
        f"sources.snow.ca_bundle: file {tmp_path.resolve() / 'missing.pem'} does not exist"
        in message
    )


def test_a_url_must_be_http(tmp_path: Path) -> None:
    message = problem(
        tmp_path, '[sources.snow]\nplatform = "servicenow"\nurl = "city.service-now.com"\n'
    )
    assert "sources.snow.url: must be an https:// URL" in message


def test_a_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    message = problem(tmp_path, '[store]\nurl = "sqlite:///x.db"\nbroken line here\n')
    assert "is not valid TOML" in message
    assert "line 3" in message


def test_a_missing_file_points_to_crosswalk_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`crosswalk init` writes a starter"):
        load_config(tmp_path / "nowhere.toml")


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROSSWALK_CONFIG", raising=False)
    assert find_config_path(None) == tmp_path / "crosswalk.toml"
    elsewhere = tmp_path / "etc" / "crosswalk.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(VALID)
    monkeypatch.setenv("CROSSWALK_CONFIG", str(elsewhere))
    assert find_config_path(None) == elsewhere
    assert find_config_path("explicit.toml") == Path("explicit.toml")
    assert set(load_config().sources) == {"snow-prod", "intune"}


def test_digest_is_stable_and_free_of_secret_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOW_PASSWORD", "value-one")
    first = config_digest(load_config(write(tmp_path, VALID)))
    monkeypatch.setenv("SNOW_PASSWORD", "value-two")
    second = config_digest(load_config(write(tmp_path, VALID)))
    assert first == second and len(first) == 64
    changed = config_digest(
        load_config(write(tmp_path, VALID.replace("page_size = 500", "page_size = 400")))
    )
    assert changed != first


def test_config_built_in_code_has_defaults() -> None:
    config = Config()
    assert config.store.url.startswith("sqlite:///") and config.sources == {}


def test_metrics_policy_defaults_and_bad_values_are_named(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.metrics.sla_targets == {"1": "4h", "2": "8h", "3": "3bd", "4": "5bd"}
    assert config.metrics.calendar.workdays == [0, 1, 2, 3, 4]
    text = VALID + (
        '\n[metrics]\nstale_dayz = 10\nsla_targets = { "1" = "4 hours" }\n'
        '[metrics.calendar]\ntimezone = "Mars/Olympus"\nstart = "8am"\n'
    )
    message = problem(tmp_path, text)
    assert "metrics.stale_dayz: unknown key; did you mean 'stale_days'?" in message
    assert "metrics.sla_targets.1" in message
    assert "metrics.calendar.timezone: not a known time zone name" in message
    assert "metrics.calendar.start" in message


def test_content_folders_resolve_against_the_config_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "our-templates").mkdir()
    config = load_config(write(tmp_path, VALID + '\n[templates]\nfolders = ["our-templates"]\n'))
    assert config.templates.folders == [tmp_path / "our-templates"]
    message = problem(tmp_path, VALID + '\n[controls]\nfolders = ["nowhere"]\n')
    assert "controls.folders: file" in message and "nowhere does not exist" in message


@pytest.mark.parametrize(
    "before, after, expected",
    [
        (
            "page_size = 500",
            "ful_sweep_every_days = 7",
            "sources.snow-prod.ful_sweep_every_days: unknown key; "
            "did you mean 'full_sweep_every_days'?",
        ),
        (
            "columns = {",
            "colums = {",
            "sources.snow-prod.colums: unknown key; did you mean 'columns'?",
        ),
        (
            'tenant_id = "tenant-1"',
            'tenant_id = "tenant-1"\noperating_system = ["iOS"]',
            "sources.intune.operating_system: unknown key; did you mean 'operating_systems'?",
        ),
    ],
)
def test_a_misspelt_platform_key_is_named_with_the_file_and_a_suggestion(
    tmp_path: Path, before: str, after: str, expected: str
) -> None:
    from itcrosswalk.core.sync import build_adapter
    from itcrosswalk.registry import make_registry

    path = write(tmp_path, VALID.replace(before, after))
    config = load_config(path)
    source = "intune" if "intune" in expected else "snow-prod"
    with pytest.raises(ConfigError) as caught:
        build_adapter(config, source, make_registry(entry_points_group=None))
    assert str(caught.value) == f"{path.resolve()}: {expected}"


def test_a_misspelt_key_deep_in_the_metrics_policy(tmp_path: Path) -> None:
    message = problem(tmp_path, '[metrics.calendar]\ntimezon = "UTC"\n')
    assert "metrics.calendar.timezon: unknown key; did you mean 'timezone'?" in message
    assert str(tmp_path) in message
