"""The Entra ID endpoints with azure-identity's own credentials, and ARM's authentication errors."""

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, EnvironmentCredential
from azure.mgmt.resource.resources import ResourceManagementClient


def test_client_secret_credential_gets_a_token(cloud):
    assert cloud.resources.resource_groups.check_existence("x") is False  # the fixture's clients use it


def test_environment_credential(cloud, monkeypatch):
    info = cloud.info
    for key, value in {"AZURE_TENANT_ID": info["tenant_id"], "AZURE_CLIENT_ID": info["client_id"],
                       "AZURE_CLIENT_SECRET": info["client_secret"], "AZURE_AUTHORITY_HOST": info["endpoint"],
                       "REQUESTS_CA_BUNDLE": info["ca_bundle"]}.items():
        monkeypatch.setenv(key, value)
    cred = EnvironmentCredential(disable_instance_discovery=True)
    client = ResourceManagementClient(cred, info["subscription_id"], base_url=info["endpoint"],
                                      connection_verify=info["ca_bundle"])
    client.resource_groups.create_or_update("rg", {"location": "eastus"})
    assert client.resource_groups.get("rg").name == "rg"


def test_wrong_secret_is_refused(cloud):
    info = cloud.info
    cred = ClientSecretCredential(info["tenant_id"], info["client_id"], "wrong", authority=info["endpoint"],
                                  disable_instance_discovery=True, connection_verify=info["ca_bundle"])
    with pytest.raises(ClientAuthenticationError) as err:
        cred.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(err.value)


def test_arm_requires_a_valid_bearer_token(cloud):
    path = f"/subscriptions/{cloud.sub}/resourcegroups"
    missing = cloud.raw("GET", path, token=None)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in missing.headers
    forged = cloud.token()[:-4] + "AAAA"
    assert cloud.raw("GET", path, token=forged).json()["error"]["code"] == "InvalidAuthenticationToken"
