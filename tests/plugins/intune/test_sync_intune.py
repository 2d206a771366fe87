"""The Intune adapter through msgraph-sdk and azure-identity against the Graph emulator over
HTTPS: auth flavours, paging, throttling, $batch, faults, tombstones, national clouds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError, ConfigError, ConnectError
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.intune import mapping
from itcrosswalk.plugins.intune.sandbox import CONFIG_READ, SANDBOX_TENANT, USERS_READ, guid
from itcrosswalk.sandbox.world import generate
from itcrosswalk.testing import AdapterConformance, ConformanceSetup

from .conftest import CLIENT_ID, SECRET, Tenant

Factory = Callable[..., Tenant]
MakeConfig = Callable[..., Config]


def _by_stream(result: Any) -> dict[str, Any]:
    return {s.stream: s for s in result.streams}


def _policies_for(world: Any) -> int:
    return sum(3 for d in world.devices if d.in_intune)


def test_first_sync_reads_every_stream_with_normalized_fields(
    tenant: Tenant, make_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_config(tenant)
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("intune")
    streams = _by_stream(result)
    world = tenant.world
    managed = [d for d in world.devices if d.in_intune]
    assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
    assert streams["managedDevices"].read == len(managed)
    assert streams["deviceStatuses"].read == _policies_for(world)
    assert streams["detectedApps"].read == len(world.apps)
    assert streams["users"].read == len(world.people)

    devices = {d["source_id"]: d for d in store.export("device", source="intune")}
    for d in managed:
        row = devices[guid("device", d.id)]
        assert row["name"] == d.name and row["os"] == d.os
        assert row["encrypted"] is d.encrypted
        owner = next((p for p in world.people if p.id == d.owner_id), None)
        assert row["owner"] == (owner.upn.lower() if owner else None)
        if d.serial.strip() in ("", "0") or d.serial in (
            "To be filled by O.E.M.",
            "Default string",
            "System Serial Number",
        ):
            assert row["serial_key"] is None
        else:
            assert row["serial_key"] == d.serial.upper()
        native = {"inGracePeriod": "in_grace_period"}.get(d.compliance, d.compliance)
        assert row["compliance"] == native
    people = {p["upn"]: p for p in store.export("person", source="intune")}
    director = next(p for p in world.people if p.manager_id is None)
    staff = next(p for p in world.people if p.manager_id == director.id)
    assert people[staff.upn]["manager"] == director.upn
    assert people[staff.upn]["department"]  # only returned because the adapter $select-s it
    apps = list(store.export("installed_app", source="intune"))
    world_app = world.apps[0]
    synced = next(
        a for a in apps if a["name"] == world_app.name and a["version"] == world_app.version
    )
    managed_ids = {d.id for d in managed}
    expected = {guid("device", x) for x in world_app.device_ids if x in managed_ids}
    assert set(synced["device_ids"]) == expected and synced["device_count"] == len(expected)


def test_compliance_requests_grow_with_policies_and_pages_not_devices(
    tenant_factory: Factory, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    world = generate(11, "tiny", devices=400)
    tenant = tenant_factory(world=world, status_page=100)
    config = make_http_config(tenant, extra='streams = ["deviceStatuses"]')
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    outcome = _by_stream(result)["deviceStatuses"]
    managed = sum(1 for d in world.devices if d.in_intune)
    assert outcome.read == 3 * managed
    pages = sum(-(-len(rows) // 100) or 1 for rows in tenant.app.statuses.values())
    # one policy list, then the pages of each policy, plus the token: never one per device
    assert outcome.requests <= 1 + pages + 2
    assert outcome.requests < managed / 10


def test_a_certificate_credential_signs_its_assertion(
    tenant_factory: Factory, make_http_config: MakeConfig, open_store: Any, pm: Any, tmp_path: Path
) -> None:
    # Entra ID signs assertions with RS256: the app's certificate has an RSA key.
    rsa = trustme.KeyType.RSA
    cert = trustme.CA(key_type=rsa).issue_cert("crosswalk-app.city.example.gov", key_type=rsa)
    pem = tmp_path / "app.pem"
    pem.write_bytes(cert.private_key_and_cert_chain_pem.bytes())
    tenant = tenant_factory(certificates={"cert-app": cert.cert_chain_pems[0].bytes()})
    config = make_http_config(
        tenant,
        auth=f'{{ type = "client_certificate", client_id = "cert-app", certificate_path = "{pem}" }}',
        extra='streams = ["users"]',
    )
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert _by_stream(result)["users"].read == len(tenant.world.people)
    assert any(path.endswith("/oauth2/v2.0/token") for _m, path in tenant.app.requests)

    # Another key for the same app: the assertion's signature does not verify.
    other = tmp_path / "other.pem"
    other.write_bytes(
        trustme.CA(key_type=rsa)
        .issue_cert("x", key_type=rsa)
        .private_key_and_cert_chain_pem.bytes()
    )
    config = make_http_config(
        tenant,
        auth=f'{{ type = "client_certificate", client_id = "cert-app", certificate_path = "{other}" }}',
    )
    with pytest.raises(AuthError, match=r"tenant .* refused app cert-app .*AADSTS700027"):
        SyncEngine(config, open_store(config), pm=pm).sync("intune")


def test_a_bearer_token_obtained_elsewhere(
    tenant: Tenant,
    make_http_config: MakeConfig,
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = tenant.app.entra.issue_token(CLIENT_ID)
    monkeypatch.setenv("GRAPH_TOKEN", token)
    config = make_http_config(
        tenant, auth='{ type = "bearer", token = "env:GRAPH_TOKEN" }', extra='streams = ["users"]'
    )
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert _by_stream(result)["users"].read == len(tenant.world.people)

    tenant.app.entra.expire_tokens()
    with pytest.raises(AuthError, match=r"source intune \(HTTP 401 .*env:GRAPH_TOKEN") as caught:
        SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert token not in str(caught.value)


def test_a_wrong_secret_names_tenant_and_app_never_the_secret(
    tenant: Tenant,
    make_http_config: MakeConfig,
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "not-the-right-secret-4711"
    monkeypatch.setenv("GRAPH_SECRET", wrong)
    config = make_http_config(tenant)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as caught:
        SyncEngine(config, open_store(config), pm=pm).sync("intune")
    message = str(caught.value)
    assert SANDBOX_TENANT in message and CLIENT_ID in message and "AADSTS7000215" in message
    assert "env:GRAPH_SECRET" in message
    assert wrong not in message and wrong not in caplog.text
    assert not any(p.startswith("/v1.0/") for _m, p in tenant.app.requests)


def test_an_expired_secret_says_so(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    tenant.app.entra.expired_secrets.add(CLIENT_ID)
    config = make_http_config(tenant)
    with pytest.raises(
        AuthError, match=r"AADSTS7000222: The provided client secret keys .* expired"
    ) as caught:
        SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert SECRET not in str(caught.value)


def test_a_wrong_tenant_is_an_authentication_failure(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, tenant_id="11111111-2222-3333-4444-555555555555")
    with pytest.raises(AuthError, match="11111111-2222-3333-4444-555555555555"):
        SyncEngine(config, open_store(config), pm=pm).sync("intune")


def test_a_missing_permission_is_named_and_the_other_streams_go_on(
    tenant_factory: Factory, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    tenant = tenant_factory(permissions={CLIENT_ID: {"DeviceManagementManagedDevices.Read.All"}})
    config = make_http_config(tenant)
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    streams = _by_stream(result)
    assert result.exit_code == 3
    assert streams["managedDevices"].status == "ok"
    assert streams["deviceStatuses"].status == "no_access"
    assert CONFIG_READ in streams["deviceStatuses"].message
    assert streams["users"].status == "no_access" and USERS_READ in streams["users"].message

    adapter = build_adapter(config, "intune", pm)
    try:
        checks = {c.name: c for c in adapter.check()}
    finally:
        adapter.close()
    assert checks["managedDevices"].ok and checks["detectedApps"].ok
    assert not checks["deviceStatuses"].ok
    assert (
        f"missing Microsoft Graph application permission {CONFIG_READ}"
        in checks["deviceStatuses"].detail
    )
    assert checks["users"].status == "no_access" and USERS_READ in checks["users"].detail


def test_throttling_waits_as_told(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["users"]')
    tenant.faults.retry_after = 1
    tenant.faults.throttle_next = 2
    started = time.monotonic()
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    elapsed = time.monotonic() - started
    outcome = _by_stream(result)["users"]
    assert outcome.status == "ok" and outcome.read == len(tenant.world.people)
    assert elapsed >= 2.0  # two Retry-After: 1 waits
    assert outcome.requests >= 2 + 2  # both pages, both 429s


def test_a_throttled_batch_item_is_sent_again(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["detectedApps"]')
    store = open_store(config)
    tenant.faults.retry_after = 0
    # Every 7th request (batch items count one each) is throttled.
    tenant.faults.throttle_every = 7
    result = SyncEngine(config, store, pm=pm).sync("intune")
    tenant.faults.reset()
    assert _by_stream(result)["detectedApps"].status == "ok"
    managed_ids = {d.id for d in tenant.world.devices if d.in_intune}
    for app in store.export("installed_app", source="intune"):
        world_app = next(
            a for a in tenant.world.apps if a.name == app["name"] and a.version == app["version"]
        )
        assert len(app["device_ids"]) == len([x for x in world_app.device_ids if x in managed_ids])


def test_a_page_link_failing_midway_keeps_the_last_complete_state(
    tenant: Tenant, make_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_config(tenant, extra='streams = ["managedDevices"]')
    store = open_store(config)
    engine = SyncEngine(config, store, pm=pm)
    assert engine.sync("intune").exit_code == 0
    before = {d["source_id"]: d for d in store.export("device", source="intune")}
    gone = next(iter(before))
    tenant.app.retire(gone)
    tenant.app.break_next_links = True
    result = engine.sync("intune")
    outcome = _by_stream(result)["managedDevices"]
    assert result.exit_code == 1 and outcome.status == "error"
    assert (
        "HTTP 500" in outcome.message and "An internal server error has occurred" in outcome.message
    )
    after = {d["source_id"]: d for d in store.export("device", source="intune")}
    assert set(after) == set(before)  # nothing tombstoned by a read that did not finish
    tenant.app.break_next_links = False
    result = engine.sync("intune")
    assert result.exit_code == 0
    assert gone not in {d["source_id"] for d in store.export("device", source="intune")}


def test_retired_devices_are_tombstoned_not_deleted(
    tenant: Tenant, make_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_config(tenant, extra='streams = ["managedDevices", "deviceStatuses"]')
    store = open_store(config)
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("intune")
    victim = tenant.app.devices[3]["id"]
    tenant.app.retire(victim)
    result = _by_stream(engine.sync("intune"))
    assert result["managedDevices"].tombstoned == 1
    assert result["deviceStatuses"].tombstoned >= 1
    rows = {
        d["source_id"]: d for d in store.export("device", source="intune", include_deleted=True)
    }
    assert rows[victim]["deleted"]


def test_odd_devices_every_field_missing_no_id_and_duplicate_serials(
    tenant: Tenant,
    make_config: MakeConfig,
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant.app.add_device(id="bare-device")
    tenant.app.add_device(deviceName="NO-ID", serialNumber="X1")
    twin_serial = next(
        d["serialNumber"] for d in tenant.app.devices if mapping.clean_serial(d.get("serialNumber"))
    )
    tenant.app.add_device(id="re-enrolled", deviceName="CLONE", serialNumber=twin_serial.lower())
    config = make_config(tenant, extra='streams = ["managedDevices"]')
    store = open_store(config)
    caplog.set_level(logging.WARNING, logger="itcrosswalk.intune")
    result = SyncEngine(config, store, pm=pm).sync("intune")
    outcome = _by_stream(result)["managedDevices"]
    assert outcome.quarantined == 1 and result.exit_code == 3
    [item] = store.quarantine_rows("intune", "managedDevices")
    assert "no id" in str(item) and "NO-ID" in str(item)
    rows = {d["source_id"]: d for d in store.export("device", source="intune")}
    assert rows["bare-device"]["compliance"] == "unknown" and rows["bare-device"]["name"] is None
    clone = rows["re-enrolled"]
    original = next(
        d for d in rows.values() if d["serial_key"] == clone["serial_key"] and d is not clone
    )
    assert clone["extra"]["duplicate_serial_of"] == original["source_id"]
    assert "report the same serial number" in caplog.text


def test_an_ignored_filter_is_rechecked_on_the_client(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(
        tenant, extra='streams = ["managedDevices"]\noperating_systems = ["Windows"]'
    )
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("intune")
    assert result.exit_code == 0
    sent = [p for _m, p in tenant.app.requests if "managedDevices" in p]
    assert "$filter=operatingSystem" in sent[0].replace("%20", " ").replace("%24", "$")
    oses = {d["os"] for d in store.export("device", source="intune")}
    assert oses == {"Windows"}
    assert _by_stream(result)["managedDevices"].read == sum(
        1 for d in tenant.world.devices if d.in_intune and d.os == "Windows"
    )


def test_the_ca_bundle_wins_over_the_environment(
    tenant: Tenant,
    make_http_config: MakeConfig,
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(trustme.CA().cert_pem.bytes())
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, str(stranger))
    config = make_http_config(tenant, extra='streams = ["users"]')
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert _by_stream(result)["users"].status == "ok"


def test_an_untrusted_certificate_is_a_clear_tls_error(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any, tmp_path: Path
) -> None:
    config = make_http_config(tenant, extra='streams = ["users"]')
    tenant.ca.write_bytes(trustme.CA().cert_pem.bytes())
    started = time.monotonic()
    with pytest.raises(
        ConnectError, match=r"TLS verification failed for source intune .*ca_bundle"
    ):
        SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert time.monotonic() - started < 3  # a TLS failure is not retried


@pytest.mark.parametrize(
    ("cloud", "graph", "login"),
    [
        ("global", "https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com"),
        ("usgov", "https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("dod", "https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    ],
)
def test_national_clouds_set_login_and_graph(
    tmp_path: Path, pm: Any, cloud: str, graph: str, login: str
) -> None:
    from itcrosswalk.core.config import load_config

    path = tmp_path / "crosswalk.toml"
    path.write_text(
        '[sources.gov]\nplatform = "intune"\ntenant_id = "t"\n'
        f'cloud = "{cloud}"\n'
        'auth = { type = "oauth_client_credentials", client_id = "c", client_secret = "env:X" }\n'
    )
    adapter = build_adapter(load_config(path), "gov", pm)
    assert adapter.base == graph and adapter.authority == login
    assert adapter.scope == graph.removesuffix("/v1.0") + "/.default"


def test_an_explicit_url_overrides_the_cloud_and_bad_keys_are_named(
    tmp_path: Path, pm: Any
) -> None:
    from itcrosswalk.core.config import load_config

    path = tmp_path / "crosswalk.toml"
    path.write_text(
        '[sources.gov]\nplatform = "intune"\ntenant_id = "t"\ncloud = "usgov"\n'
        'url = "https://graph.proxy.city.example.gov/v1.0"\n'
        'auth = { type = "bearer", token = "env:X" }\n'
    )
    adapter = build_adapter(load_config(path), "gov", pm)
    assert adapter.base == "https://graph.proxy.city.example.gov/v1.0"
    assert adapter.authority == "https://login.microsoftonline.us"
    path.write_text(
        '[sources.gov]\nplatform = "intune"\ncloud = "moon"\n'
        'auth = { type = "bearer", token = "env:X" }\n'
    )
    with pytest.raises(ConfigError, match=r"sources\.gov\.tenant_id.*\n?.*|sources\.gov\.cloud"):
        build_adapter(load_config(path), "gov", pm)


def test_secrets_never_reach_the_store(
    tenant: Tenant, make_config: MakeConfig, open_store: Any, pm: Any, tmp_path: Path
) -> None:
    config = make_config(tenant)
    store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("intune")
    for entity in ("device", "device_compliance", "installed_app", "person"):
        for row in store.export(entity, source="intune"):
            assert SECRET not in str(row)
    for db in tmp_path.rglob("*.db"):
        assert SECRET.encode() not in db.read_bytes()


class TestIntuneConformance(AdapterConformance):
    @pytest.fixture
    def conformance(
        self, tenant: Tenant, make_config: MakeConfig, open_store: Any, pm: Any
    ) -> ConformanceSetup:
        config = make_config(tenant)
        return ConformanceSetup(
            config=config,
            source="intune",
            store=open_store(config),
            pm=pm,
            expected_streams={"managedDevices", "deviceStatuses", "detectedApps", "users"},
        )


def test_bursts_of_503_and_malformed_bodies_are_retried(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["managedDevices"]')
    store = open_store(config)
    tenant.faults.server_errors_next = 2
    tenant.faults.malformed_next = 1
    result = SyncEngine(config, store, pm=pm).sync("intune")
    outcome = _by_stream(result)["managedDevices"]
    assert outcome.status == "ok" and outcome.read == len(tenant.app.devices)
    assert outcome.requests >= 3 + 2 + 1  # three pages, two 503s, one truncated body


def test_devices_checking_in_during_the_read_are_neither_lost_nor_doubled(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["managedDevices"]')
    store = open_store(config)
    tenant.faults.mutate_between_pages = 5
    result = SyncEngine(config, store, pm=pm).sync("intune")
    outcome = _by_stream(result)["managedDevices"]
    assert outcome.read == len(tenant.app.devices) == outcome.inserted
    assert len(list(store.export("device", source="intune"))) == len(tenant.app.devices)


def test_a_token_revoked_mid_read_is_replaced_through_the_claims_challenge(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["managedDevices"]')
    store = open_store(config)
    served: list[int] = []

    def revoke_after_first_page() -> None:
        served.append(1)
        if len(served) == 1:
            tenant.app.entra.revoke_tokens()

    tenant.app.after_page(revoke_after_first_page)
    result = SyncEngine(config, store, pm=pm).sync("intune")
    outcome = _by_stream(result)["managedDevices"]
    assert outcome.status == "ok" and outcome.read == len(tenant.app.devices)
    tokens = [p for _m, p in tenant.app.requests if p.endswith("/oauth2/v2.0/token")]
    assert len(tokens) == 2  # the first token, and one more after the challenge


def test_an_unreachable_login_endpoint_is_a_connection_error(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='authority = "https://127.0.0.1:9"')
    with pytest.raises(
        ConnectError, match=r"cannot reach the Entra ID login endpoint https://127\.0\.0\.1:9"
    ):
        SyncEngine(config, open_store(config), pm=pm).sync("intune")


def test_an_auth_type_intune_cannot_use_is_a_config_error(tmp_path: Path, pm: Any) -> None:
    from itcrosswalk.core.config import load_config

    path = tmp_path / "crosswalk.toml"
    path.write_text(
        '[sources.intune]\nplatform = "intune"\ntenant_id = "t"\n'
        'auth = { type = "basic", user = "u", password = "env:X" }\n'
    )
    with pytest.raises(
        ConfigError, match=r"sources\.intune\.auth: Intune takes type .*not 'basic'"
    ):
        build_adapter(load_config(path), "intune", pm)


def test_a_retry_after_beyond_max_wait_fails_at_once(
    tenant: Tenant, make_http_config: MakeConfig, open_store: Any, pm: Any
) -> None:
    config = make_http_config(tenant, extra='streams = ["users"]')
    tenant.faults.retry_after = 60  # max_wait is 20 in these configs
    tenant.faults.throttle_next = 1
    started = time.monotonic()
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    outcome = _by_stream(result)["users"]
    assert time.monotonic() - started < 10
    assert outcome.status == "error" and "HTTP 429 (Retry-After 60s)" in outcome.message


def test_debug_logs_of_a_whole_sync_hold_neither_secret_nor_token(
    tenant: Tenant,
    make_http_config: MakeConfig,
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_http_config(tenant)
    caplog.set_level(logging.DEBUG)
    result = SyncEngine(config, open_store(config), pm=pm).sync("intune")
    assert result.exit_code == 0
    assert caplog.text  # the SDK and azure-identity did log
    assert SECRET not in caplog.text
    for token in tenant.app.entra.tokens:
        assert token not in caplog.text
