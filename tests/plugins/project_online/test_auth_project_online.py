"""Delegated OAuth for Project Online: MSAL's device-code sign-in against the emulated Entra
endpoints, the refresh token kept in the keyring (never in the config), and its renewal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError, ConfigError
from itcrosswalk.core.sync import SyncEngine, build_adapter
from tests.keyrings import MemoryKeyring

from .conftest import PASSWORD, USER, Instance


def delegated(instance: Instance) -> str:
    return (
        f'oauth = {{ client_id = "7f1e0c52-crosswalk", tenant_id = "city", '
        f'authority = "{instance.root}/city" }}'
    )


def approve(instance: Instance, message: str, password: str = PASSWORD) -> None:
    """Play the person at the browser: open the page the message names and enter the code."""
    words = message.split()
    page = next(w for w in words if w.startswith("https://"))
    code = words[words.index("code") + 1]
    answer = requests.post(
        page,
        data={"user_code": code, "user": USER, "password": password},
        verify=str(instance.ca),
        timeout=10,
    )
    answer.raise_for_status()


def test_device_code_sign_in_keeps_the_refresh_token_in_the_keyring_and_syncs(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    memory_keyring: MemoryKeyring,
) -> None:
    config = make_config(instance, auth=None, extra=delegated(instance))
    adapter = build_adapter(config, "pwa", pm)
    shown: list[str] = []

    def prompt(message: str) -> None:
        shown.append(message)
        approve(instance, message)

    try:
        done = adapter.device_login(prompt)
    finally:
        adapter.close()
    assert done["keyring"] == "itcrosswalk-project-online"
    assert "enter the code" in shown[0]
    stored = memory_keyring.values[("itcrosswalk-project-online", "pwa")]
    assert stored.startswith("0.AAAA")
    assert stored not in config.path.read_text()
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("pwa")
    assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
    assert store.count("work_item", source="pwa") > 0
    rotated = memory_keyring.values[("itcrosswalk-project-online", "pwa")]
    assert rotated != stored, "the refresh token the platform rotated is the one kept"


def test_an_expired_access_token_is_renewed_from_the_refresh_token_mid_read(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    memory_keyring: MemoryKeyring,
) -> None:
    # Tokens die before their advertised lifetime: the 401 is answered by renewing once.
    instance = instance_factory(token_lifetime=-1, page_limits={"Resources": 10})
    config = make_config(instance, auth=None, extra=delegated(instance))
    adapter = build_adapter(config, "pwa", pm)
    try:
        adapter.device_login(lambda message: approve(instance, message))
    finally:
        adapter.close()
    instance.app.entra.token_lifetime = 3600
    result = SyncEngine(config, open_store(config), pm=pm).sync("pwa", streams=["Resources"])
    assert result.exit_code == 0, result.streams[0].message


def test_without_a_sign_in_the_sync_says_to_run_login(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    memory_keyring: MemoryKeyring,
) -> None:
    config = make_config(instance, auth=None, extra=delegated(instance))
    with pytest.raises(AuthError, match="crosswalk project-online login pwa"):
        SyncEngine(config, open_store(config), pm=pm).sync("pwa")


def test_a_revoked_refresh_token_is_an_auth_failure_that_names_the_fix(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    memory_keyring: MemoryKeyring,
) -> None:
    memory_keyring.set_password("itcrosswalk-project-online", "pwa", "0.AAAA-revoked-refresh-token")
    config = make_config(instance, auth=None, extra=delegated(instance))
    with pytest.raises(AuthError, match="AADSTS70008.*login pwa") as caught:
        SyncEngine(config, open_store(config), pm=pm).sync("pwa")
    assert "revoked-refresh-token" not in str(caught.value)


def test_login_through_the_cli_hook_waits_for_the_person_and_keeps_the_token(
    instance: Instance,
    make_config: Callable[..., Config],
    pm: Any,
    memory_keyring: MemoryKeyring,
) -> None:

    config = make_config(instance, auth=None, extra=delegated(instance))
    # The person signs in while the command waits: a second thread watches for the code.
    result_box: dict[str, Any] = {}

    def run() -> None:
        result_box["result"] = CliRunner().invoke(
            make_cli(pm), ["--config", str(config.path), "project-online", "login", "pwa"]
        )

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(100):
        pending = instance.app.entra.pending()
        if pending:
            instance.app.entra.approve(pending[0].user_code, USER)
            break
        time.sleep(0.05)
    thread.join(timeout=30)
    result = result_box["result"]
    assert result.exit_code == 0, result.output
    assert "signed in: source pwa" in result.output
    assert ("itcrosswalk-project-online", "pwa") in memory_keyring.values


def test_login_is_only_for_the_delegated_sign_in(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    adapter = build_adapter(config, "pwa", pm)
    with pytest.raises(ConfigError, match="delegated sign-in"):
        adapter.device_login(print)
