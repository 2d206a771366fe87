"""The Intune plugin: managed devices, compliance, detected apps and Entra ID users through
Microsoft Graph. Hook implementations only; msgraph-sdk is imported when a source is used."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import IntuneAdapter, IntuneOptions

    register("intune", IntuneAdapter, mapping=mapping.describe(), config_model=IntuneOptions)


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import SANDBOX_TENANT, create_app

    def source(user: str, secret_ref: str) -> dict[str, Any]:
        # The emulator serves its own Entra ID token endpoint, so the demo exercises the real
        # client-credentials flow of azure-identity.
        return {
            "tenant_id": SANDBOX_TENANT,
            "auth": {
                "type": "oauth_client_credentials",
                "client_id": user,
                "client_secret": secret_ref,
            },
        }

    register("intune", create_app, source=source)
