"""What a client needs before it manages any resource: the cloud's endpoint metadata and the subscriptions and tenants
the signed-in identity sees. The Azure CLI uses all three (`az cloud register --endpoint-resource-manager`, then
`az login`); the SDK needs none of them, so until a second client came they were not served.

ARM serves `GET /metadata/endpoints?api-version=2022-09-01` without authentication: one JSON object naming the cloud,
its sign-in endpoint and token audiences, the resource manager and the other services' endpoints and DNS suffixes.
Only what this cloud has is filled in (sign-in and resource manager, both this endpoint); a client then asks for
nothing it would have to look for elsewhere."""

from __future__ import annotations

from flwrazure.localcloud.identity import Identity

CLOUD_NAME = "FlwrazureLocal"


def metadata(base_url: str) -> dict:
    return {"name": CLOUD_NAME, "resourceManager": f"{base_url}/", "portal": "",
            "authentication": {"loginEndpoint": base_url, "audiences": [f"{base_url}/"], "tenant": "common",
                               "identityProvider": "AAD"},
            "suffixes": {}}


def subscription(identity: Identity) -> dict:
    sub = identity.subscription_id
    return {"id": f"/subscriptions/{sub}", "authorizationSource": "RoleBased", "managedByTenants": [],
            "subscriptionId": sub, "tenantId": identity.tenant_id, "displayName": "flwrazure local cloud",
            "state": "Enabled", "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                         "quotaId": "PayAsYouGo_2014-09-01",
                                                         "spendingLimit": "Off"}}


def tenant(identity: Identity) -> dict:
    return {"id": f"/tenants/{identity.tenant_id}", "tenantId": identity.tenant_id, "countryCode": "US",
            "displayName": "flwrazure local cloud", "domains": ["flwrazure.local"], "tenantCategory": "Home",
            "defaultDomain": "flwrazure.local", "tenantType": "AAD"}
