"""The core HTTP policy under msgraph-sdk's httpx transport, against the Graph emulator over
HTTPS: Graph's backoff after a 429 without ``Retry-After``, answers cut off mid-body (read
again) or trickling past the deadline (cut there), and the CA environment variables every
adapter honours."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.intune.sandbox import USERS_READ
from tests.leaks import leaks

from .conftest import CLIENT_ID, Tenant

MakeConfig = Callable[..., Config]
TWO_STREAMS = 'streams = ["users", "managedDevices"]'


def _by_stream(result: Any) -> dict[str, Any]:
    return {s.stream: s for s in result.streams}


def _users_asked(tenant: Tenant) -> int:
    return sum(1 for method, path in tenant.app.requests if path.startswith("/v1.0/users"))


def test_a_429_without_retry_after_backs_off_from_graphs_3_seconds(
    tenant: Tenant, make_http_config: MakeConfig, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["users"]')
    adapter = build_adapter(config, "intune", pm)
    waits: list[float] = []
    adapter.policy = dataclasses.replace(adapter.policy, sleep=waits.append)
    tenant.faults.omit_retry_after = True
    tenant.faults.throttle_next = 2
    try:
        adapter.client  # noqa: B018 - builds the SDK client over the policy
        records, _ = adapter.list_page(
            adapter.request_for(f"{adapter.base}/users?$top=5"), what="users", permission=USERS_READ
        )
    finally:
        adapter.close()
    assert len(records) == 5
    assert _users_asked(tenant) == 3
    # Graph's guidance, doubling, never sooner (the SDK's own handler waited 0.25-1.25 s).
    assert len(waits) == 2
    assert 3.0 <= waits[0] <= 3.75 and 6.0 <= waits[1] <= 7.5


def test_an_answer_cut_off_mid_body_is_read_again(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["users"]')
    tenant.faults.reset_mid_body_next = 2
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    users = _by_stream(result)["users"]
    assert users.status == "ok", users.message
    assert users.read == len(tenant.world.people)
    pages = -(-len(tenant.world.people) // 20)
    assert _users_asked(tenant) == pages + 2  # the first page cut twice


def test_cuts_that_persist_fail_that_stream_only_and_say_so(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra=TWO_STREAMS)
    config.sources["intune"].max_retries = 2
    tenant.faults.reset_mid_body_next = 3
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    streams = _by_stream(result)
    assert streams["users"].status == "error"
    assert streams["users"].message == (
        "source intune: the connection was cut while reading the answer to GET /v1.0/users "
        "(3 attempts); the network or the platform is unsteady; try again later"
    )
    assert streams["managedDevices"].status == "ok" and streams["managedDevices"].read > 0


def test_an_answer_trickling_past_the_deadline_fails_that_stream_only_and_says_so(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra=TWO_STREAMS + "\ntimeout = 3\ndeadline = 0.5")
    tenant.faults.trickle_next = 1
    tenant.faults.trickle_rate = 200
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    streams = _by_stream(result)
    assert streams["users"].status == "error"
    assert streams["users"].message == (
        "source intune: GET /v1.0/users took longer than the deadline of 0.5s for one request: "
        "the answer arrives too slowly; the platform or a proxy on the way may be overloaded; "
        "try again later, or raise deadline in [sources.intune]"
    )
    assert tenant.faults.trickled < 400
    assert streams["managedDevices"].status == "ok" and streams["managedDevices"].read > 0


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_the_ca_environment_variables_are_honoured_like_every_adapters(
    tenant: Tenant,
    make_http_config: MakeConfig,
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tenant.ca))
    config = make_http_config(tenant, extra='streams = ["users"]')
    config.sources["intune"].ca_bundle = None  # trust comes from the environment alone
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    users = _by_stream(result)["users"]
    assert users.status == "ok", users.message
    assert users.read == len(tenant.world.people)


def test_a_bearer_token_with_a_trailing_newline_is_named_not_quoted(
    tenant: Tenant,
    make_http_config: MakeConfig,
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = tenant.app.entra.issue_token(CLIENT_ID)
    monkeypatch.setenv("GRAPH_TOKEN", token + "\n")
    config = make_http_config(
        tenant, auth='{ type = "bearer", token = "env:GRAPH_TOKEN" }', extra='streams = ["users"]'
    )
    with pytest.raises(ConfigError, match="the Authorization header holds a line break") as caught:
        SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert leaks(str(caught.value), token + "\n") == []
    assert _users_asked(tenant) == 0  # never sent


def test_a_batch_item_throttled_without_retry_after_waits_graphs_backoff_too(
    tenant: Tenant, make_http_config: MakeConfig, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["detectedApps"]')
    adapter = build_adapter(config, "intune", pm)
    waits: list[float] = []
    adapter.policy = dataclasses.replace(adapter.policy, sleep=waits.append)
    paths = ["/users?$top=1", "/users?$top=2"]
    try:
        adapter.client  # noqa: B018 - builds the SDK client over the policy
        tenant.faults.omit_retry_after = True
        # Requests counted: the $batch (1), its items (2, 3): the second item is throttled.
        tenant.faults.requests = 0
        tenant.faults.throttle_every = 3
        answers = adapter.batch_get(paths, what="users", permission=USERS_READ)
    finally:
        adapter.close()
    assert all(isinstance(answers[p], dict) for p in paths), answers
    # One round waited for its throttled item, from Graph's guidance (it was 1 s flat).
    assert len(waits) == 1 and 3.0 <= waits[0] <= 3.75, waits
