"""Sign-ins against the shared Entra ID emulator: an application user by certificate, and the
Schedule API user by device code once, its refresh token in the (in-memory) keyring."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.planner_premium.sandbox import SANDBOX_PUBLIC_CLIENT, SANDBOX_TENANT
from tests.keyrings import MemoryKeyring

from .conftest import USER, Env


def test_an_application_user_signs_in_with_a_certificate(
    env_factory: Callable[..., Env],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    tmp_path: Path,
) -> None:
    rsa = trustme.KeyType.RSA
    cert = trustme.CA(key_type=rsa).issue_cert("crosswalk.city.example.gov", key_type=rsa)
    pem = tmp_path / "app.pem"
    pem.write_bytes(cert.private_key_and_cert_chain_pem.bytes())
    env = env_factory(certificates={"cert-app": cert.cert_chain_pems[0].bytes()})
    auth = f'{{ type = "client_certificate", client_id = "cert-app", certificate_path = "{pem}" }}'
    config = make_config(env, auth=auth, extra=f'tenant_id = "{SANDBOX_TENANT}"')
    result = SyncEngine(config, open_store(config), pm=pm).sync(
        "planner", streams=["msdyn_project"]
    )
    assert result.exit_code == 0 and result.streams[0].read > 0
    assert any(path.endswith("/oauth2/v2.0/token") for _m, path in env.app.requests)
    other = tmp_path / "other.pem"
    other.write_bytes(
        trustme.CA(key_type=rsa)
        .issue_cert("x", key_type=rsa)
        .private_key_and_cert_chain_pem.bytes()
    )
    auth = (
        f'{{ type = "client_certificate", client_id = "cert-app", certificate_path = "{other}" }}'
    )
    bad = make_config(env, auth=auth, extra=f'tenant_id = "{SANDBOX_TENANT}"',
                      store_url=f"sqlite:///{tmp_path / 'b.db'}")  # fmt: skip
    with pytest.raises(AuthError, match=r"refused app cert-app.*AADSTS700027"):
        SyncEngine(bad, open_store(bad), pm=pm).sync("planner")


def test_the_schedule_user_signs_in_once_by_device_code_and_then_writes(
    env: Env, make_config: Callable[..., Config], pm: Any, memory_keyring: MemoryKeyring
) -> None:
    config = make_config(env, extra=f'schedule_user = {{ client_id = "{SANDBOX_PUBLIC_CLIENT}" }}')
    entra = env.app.entra

    cli = make_cli(pm)
    runner = CliRunner()
    original = entra.approve
    pending_before = len(entra.pending())
    # The person at the browser approves the code while the CLI polls the token endpoint.
    done = {"approved": False}

    real_serve = env.app.entra.serve

    def serve(environ: dict[str, Any], method: str, path: str) -> Any:
        if path.endswith("/oauth2/v2.0/token") and not done["approved"]:
            for waiting in entra.pending():
                original(waiting.user_code, USER)
                done["approved"] = True
        return real_serve(environ, method, path)

    env.app.entra.serve = serve  # type: ignore[method-assign]
    try:
        signed = runner.invoke(
            cli, ["--config", str(config.path), "planner-premium", "login", "planner"]
        )
    finally:
        env.app.entra.serve = real_serve  # type: ignore[method-assign]
    assert signed.exit_code == 0, signed.output
    assert done["approved"] and pending_before == 0
    assert "refresh token kept in the keyring" in signed.output
    [(service, user)] = list(memory_keyring.values)
    assert (service, user) == ("itcrosswalk-planner-premium", "planner")
    refresh = memory_keyring.values[(service, user)]
    assert refresh not in signed.output
    # A later write needs no sign-in: the refresh token is redeemed for the licensed user.
    adapter = build_adapter(config, "planner", pm)
    try:
        made = adapter.writers["work_item:project"](
            {"name": "Fleet telematics", "planned_start": datetime(2027, 1, 11, tzinfo=UTC),
             "planned_finish": datetime(2027, 8, 27, tzinfo=UTC)},
            correlation_id="cw-fleet",
        )  # fmt: skip
    finally:
        adapter.close()
    assert made.action == "created"
    plan = env.app.tables["msdyn_project"].rows[made.source_id]
    owner = env.app.principals[USER]
    assert plan["_msdyn_projectmanager_value"] == owner.id  # created as the signed-in user
