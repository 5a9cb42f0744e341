"""What a client needs before it manages any resource: the cloud's endpoint metadata and the subscriptions and tenants
the signed-in identity sees. The Azure CLI uses all three (`az cloud register --endpoint-resource-manager`, then
`az login`); the SDK needs none of them, so until a second client came they were not served.

ARM serves `GET /metadata/endpoints?api-version=2022-09-01` without authentication: one JSON object naming the cloud,
its sign-in endpoint and token audiences, the resource manager and the other services' endpoints and DNS suffixes.
Only what this cloud has is filled in (sign-in and resource manager, both this endpoint); a client then asks for
nothing it would have to look for elsewhere."""

from __future__ import annotations

from flwrazure.localcloud.identity import DEFAULT, Principal

CLOUD_NAME = "FlwrazureLocal"


def metadata(base_url: str) -> dict:
    return {"name": CLOUD_NAME, "resourceManager": f"{base_url}/", "portal": "",
            "authentication": {"loginEndpoint": base_url, "audiences": [f"{base_url}/"], "tenant": "common",
                               "identityProvider": "AAD"},
            "suffixes": {}}


def _display(principal: Principal) -> str:
    return "flwrazure local cloud" + ("" if principal.name == DEFAULT else f" ({principal.name})")


def subscription(principal: Principal) -> dict:
    """The one subscription a principal has a role on (each identity of the local cloud has its own)."""
    sub = principal.subscription_id
    return {"id": f"/subscriptions/{sub}", "authorizationSource": "RoleBased", "managedByTenants": [],
            "subscriptionId": sub, "tenantId": principal.tenant_id, "displayName": _display(principal),
            "state": "Enabled", "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                         "quotaId": "PayAsYouGo_2014-09-01",
                                                         "spendingLimit": "Off"}}


def tenant(principal: Principal) -> dict:
    return {"id": f"/tenants/{principal.tenant_id}", "tenantId": principal.tenant_id, "countryCode": "US",
            "displayName": _display(principal), "domains": ["flwrazure.local"], "tenantCategory": "Home",
            "defaultDomain": "flwrazure.local", "tenantType": "AAD"}
