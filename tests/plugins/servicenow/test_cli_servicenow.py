"""`crosswalk check` and `crosswalk sync` through the CLI against the live emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError
from itcrosswalk.core.sync import SyncEngine

from .conftest import PASSWORD, Instance


def test_check_reports_each_table_and_exits_3_when_one_is_missing(
    instance_factory: Callable[..., Instance], make_config: Callable[..., Config], pm: Any
) -> None:
    instance = instance_factory(missing_tables={"dmn_demand"})
    config = make_config(instance)
    result = CliRunner().invoke(
        make_cli(pm), ["--config", str(config.path), "check", "--format", "json"]
    )
    assert result.exit_code == 3, result.output
    rows = {row["stream"]: row for row in json.loads(result.output)}
    assert rows["incident"]["ok"] and rows["incident"]["first_sync_requests"] >= 1
    assert rows["dmn_demand"]["status"] == "missing"


def test_sync_through_the_cli_prints_counts_and_never_the_password(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance, extra='streams = ["incident", "sys_user"]')
    result = CliRunner().invoke(
        make_cli(pm), ["--config", str(config.path), "-v", "sync", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["stream"]: row for row in json.loads(result.output[result.output.index("[") :])}
    assert rows["incident"]["read"] == rows["incident"]["platform_count"] > 0
    assert PASSWORD not in result.output


def test_an_expired_bearer_token_is_an_authentication_failure(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOW_TOKEN", "expired-token-value")
    config = make_config(instance, auth='{ type = "bearer", token = "env:SNOW_TOKEN" }')
    with pytest.raises(
        AuthError, match=r"authentication failed for source snow \(HTTP 401\).*env:SNOW_TOKEN"
    ) as caught:
        SyncEngine(config, open_store(config), pm=pm).sync("snow")
    assert "expired-token-value" not in str(caught.value)
