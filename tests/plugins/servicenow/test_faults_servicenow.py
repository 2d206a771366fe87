"""Transport faults against PySNC over real HTTPS: answers cut off mid-body, answers trickling
in, 429 without ``Retry-After``, and a token read with its trailing newline, which must reach
neither the output, the logs nor the store in any encoding."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config
from itcrosswalk.core.sync import SyncEngine
from tests.leaks import leaks, store_text

from .conftest import Instance, count_kind

TWO_STREAMS = 'streams = ["incident", "sys_user"]'


def _by_stream(result: Any) -> dict[str, Any]:
    return {s.stream: s for s in result.streams}


def test_an_answer_cut_off_mid_body_is_read_again(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra=TWO_STREAMS)
    store = open_store(config)
    instance.faults.reset_mid_body_next = 2
    result = SyncEngine(config, store, pm=pm).sync("snow")
    streams = _by_stream(result)
    assert result.exit_code == 0, [s.message for s in result.streams]
    assert streams["incident"].read == count_kind(instance.world, "incident")
    assert store.count("ticket", source="snow") == count_kind(instance.world, "incident")
    assert streams["incident"].requests == 3  # one page, cut twice


def test_cuts_that_persist_fail_that_stream_only_and_say_so(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra=TWO_STREAMS)
    config.sources["snow"].max_retries = 2
    instance.faults.reset_mid_body_next = 3  # the first stream's three attempts
    result = SyncEngine(config, open_store(config), pm=pm).sync("snow")
    streams = _by_stream(result)
    assert streams["incident"].status == "error"
    assert streams["incident"].message == (
        "source snow: the connection was cut while reading the answer to GET "
        "/api/now/table/incident (3 attempts); the network or the platform is unsteady; "
        "try again later"
    )
    # A transient failure, not an unreachable source: the next stream is read.
    assert streams["sys_user"].status == "ok" and streams["sys_user"].read > 0


def test_an_answer_trickling_past_the_deadline_fails_that_stream_only_and_says_so(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra=TWO_STREAMS + "\ntimeout = 3\ndeadline = 0.5")
    instance.faults.trickle_next = 1
    instance.faults.trickle_rate = 200  # bytes per second: each byte well within timeout = 3
    result = SyncEngine(config, open_store(config), pm=pm).sync("snow")
    streams = _by_stream(result)
    assert streams["incident"].status == "error"
    assert streams["incident"].message == (
        "source snow: GET /api/now/table/incident took longer than the deadline of 0.5s for "
        "one request: the answer arrives too slowly; the platform or a proxy on the way may be "
        "overloaded; try again later, or raise deadline in [sources.snow]"
    )
    # Left after half a second: a small part of the body went out, and the next stream is read.
    assert instance.faults.trickled < 400
    assert streams["sys_user"].status == "ok" and streams["sys_user"].read > 0


def test_a_429_without_retry_after_is_ridden_out_with_the_policys_backoff(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="itcrosswalk.http")
    config = make_config(instance, extra='streams = ["incident"]')
    instance.faults.omit_retry_after = True
    instance.faults.throttle_next = 1
    result = SyncEngine(config, open_store(config), pm=pm).sync("snow")
    assert result.exit_code == 0 and result.streams[0].requests == 2
    waits = [r.getMessage() for r in caplog.records if "HTTP 429 from GET" in r.getMessage()]
    assert len(waits) == 1 and waits[0].endswith("(backoff)"), waits


TOKEN = "snow-token-0123456789abcdef\n"


@pytest.fixture
def newline_token(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> str:
    """A valid token whose variable was set with its trailing newline."""
    instance.app.tokens[TOKEN.strip()] = ("svc_crosswalk", 4102444800.0)
    monkeypatch.setenv("SNOW_TOKEN", TOKEN)
    return TOKEN


def test_a_token_with_a_trailing_newline_never_leaks_in_any_encoding(
    instance: Instance,
    make_config: Callable[..., Config],
    pm: Any,
    newline_token: str,
    store_url: str,
) -> None:
    config = make_config(
        instance,
        auth='{ type = "bearer", token = "env:SNOW_TOKEN" }',
        extra=TWO_STREAMS,
    )
    cli = make_cli(pm)
    runner = CliRunner()
    synced = runner.invoke(cli, ["--config", str(config.path), "-vv", "sync"])
    status = runner.invoke(cli, ["--config", str(config.path), "status", "--format", "json"])
    assert synced.exit_code != 0
    # Said in words that point at the cause, without the value.
    assert "the Authorization header holds a line break" in synced.output
    for name, text in {
        "sync output and logs": synced.output,
        "status": status.output,
        "store": store_text(store_url),
    }.items():
        assert leaks(text, newline_token) == [], name
