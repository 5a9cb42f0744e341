"""Credentials as a first real subscription meets them: `az login` (AzureCliCredential, which caches nothing) behind
the product's one-token-per-scope cache, and Azure's sign-in / policy / registration refusals with their own next
step. The real SDK over HTTPS against the local cloud; `az` is a stand-in script on PATH that counts its runs."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import fake_az
from tests.helpers.cloud import flwrazure

SCOPE = "https://management.azure.com/.default"


@pytest.fixture
def az_only(tmp_path, monkeypatch, product_cloud, home):
    """An environment where DefaultAzureCredential finds nothing but `az login` (the fake az)."""
    log = tmp_path / "az.log"
    fake_az.install(tmp_path / "bin", home / "local" / "server.json", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "user" / ".azure"))
    for var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST",
                "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "IDENTITY_ENDPOINT", "MSI_ENDPOINT",
                "AZURE_TOKEN_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    return log


def _runs(log) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_one_az_run_for_every_first_request_and_the_prefetched_token_is_used(product_cloud, az_only):
    """connect()'s credential: the token fetched while the SDK imports serves the concurrent first requests of all
    three clients (preflight's four reads, a five-kind snapshot); before, each client's first request ran az."""
    from flwrazure.azure import inventory, preflight
    from flwrazure.azure.target import Target, _prefetch_token, azure_credential

    info = product_cloud.info
    cred = azure_credential()
    _prefetch_token(cred)
    target = Target("azure", info["subscription_id"], cred, info["endpoint"], info["ca_bundle"], poll=0.05)
    product_cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        facts = preflight.fetch(target, "eastus", pool)
        snap = pool.submit(inventory.snapshot, target, "rg")
        preflight.check(target, "eastus", facts, ["Standard_D2s_v3"], 1)
        assert set(snap.result()) == set(inventory.KINDS)
    assert _runs(az_only) == 1, az_only.read_text()
    assert cred.get_token(SCOPE).token == cred.get_token(SCOPE).token and _runs(az_only) == 1


def test_an_unregistered_provider_answers_409_until_registered(cloud):
    """As on a new subscription: every request for the provider's resource types is refused with
    MissingSubscriptionRegistration; POST .../register makes it Registering, then Registered."""
    cloud.admin("PATCH", "config", {"unregistered_providers": ["Microsoft.Network"], "registration_seconds": 0.5})
    cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
    path = f"/subscriptions/{cloud.sub}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"
    resp = cloud.raw("PUT", path, {"location": "eastus"}, api="2025-05-01")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "MissingSubscriptionRegistration"
    assert "namespace 'Microsoft.Network'" in resp.json()["error"]["message"]
    provider = f"/subscriptions/{cloud.sub}/providers/Microsoft.Network"
    assert cloud.raw("GET", provider, api="2016-02-01").json()["registrationState"] == "NotRegistered"
    reg = cloud.raw("POST", provider + "/register", api="2016-02-01")
    assert reg.status_code == 200 and reg.json()["registrationState"] == "Registering"
    assert cloud.raw("PUT", path, {"location": "eastus"}, api="2025-05-01").status_code == 409
    time.sleep(0.6)
    assert cloud.raw("GET", provider, api="2016-02-01").json()["registrationState"] == "Registered"
    assert cloud.raw("PUT", path, {"location": "eastus"}, api="2025-05-01").status_code == 201


def test_create_cluster_on_a_subscription_without_the_network_provider(product_cloud, home):
    """A first subscription's classic: the SDK's ARM pipeline (azure-mgmt-core's auto-registration policy) registers
    the provider itself and retries; create-cluster succeeds (about 10 s later: the policy polls every 10 s)."""
    product_cloud.admin("PATCH", "config", {"unregistered_providers": ["Microsoft.Network"],
                                            "registration_seconds": 1})
    since = time.time()
    result = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert all(r["state"] == "running" for r in json.loads(result.stdout)["vms"])
    assert any(r["method"] == "POST" and r["path"].lower().endswith("/providers/microsoft.network/register")
               for r in product_cloud.writes(since))
    assert product_cloud.resources.providers.get("Microsoft.Network").registration_state == "Registered"


CREATE = ("create-cluster", "--cloud", "local", "--clients", "1")


@pytest.mark.parametrize("fault, code, step", [
    ({"kind": "http", "status": 401, "method": "GET", "path": "/providers/Microsoft.Compute",
      "code": "InvalidAuthenticationTokenTenant",
      "message": "The access token is from the wrong issuer 'https://sts.windows.net/11111111-1111-1111-1111-"
                 "111111111111/'. It must match the tenant 'https://sts.windows.net/22222222-2222-2222-2222-"
                 "222222222222/' associated with this subscription."},
     "InvalidAuthenticationTokenTenant", "az login --tenant"),
    ({"kind": "http", "status": 403, "method": "PUT", "path": "virtualNetworks", "code": "RequestDisallowedByPolicy",
      "message": "Resource 'flower-vnet' was disallowed by policy. Policy identifiers: '[{\"policyAssignment\":"
                 "{\"name\":\"Allowed locations\"}}]'."},
     "RequestDisallowedByPolicy", "Azure Policy assignment forbids"),
    ({"kind": "http", "status": 403, "method": "PUT", "path": "networkInterfaces", "code": "LinkedAuthorizationFailed",
      "message": "The client has permission to perform action 'Microsoft.Network/networkInterfaces/write' on scope "
                 "'flower-client-1-nic'; however, it does not have permission to perform action "
                 "'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s)."},
     "LinkedAuthorizationFailed", "Network Contributor"),
    ({"kind": "http", "status": 400, "method": "PUT", "path": "virtualMachines", "code": "InvalidParameter",
      "message": "The value of parameter imageReference is invalid."},
     "InvalidParameter", "change that option"),
    ({"kind": "http", "status": 403, "method": "POST", "path": "/register", "code": "AuthorizationFailed",
      "times": -1, "message": "The client does not have authorization to perform action "
                              "'Microsoft.Network/register/action'."},
     "MissingSubscriptionRegistration", "az provider register --namespace Microsoft.Network"),
])
def test_azure_refusals_get_their_own_next_step(product_cloud, home, fault, code, step):
    if code == "MissingSubscriptionRegistration":  # and the SDK's own registration is refused
        product_cloud.admin("PATCH", "config", {"unregistered_providers": ["Microsoft.Network"]})
    product_cloud.admin("POST", "faults", fault)
    result = flwrazure(home, *CREATE)
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == (2 if code == "InvalidAuthenticationTokenTenant" else 1), result.stderr
    assert "Traceback" not in result.stderr and f"({code})" in line and step in line, line
    assert "it resumes where it stopped" not in line


def test_one_target_per_cloud_for_the_whole_process(product_cloud, home, monkeypatch):
    """`up` runs create-cluster, open-ports and start in one process, `scale` and `resume` likewise: they share one
    Target (one credential, one first token; with `az login` each new one ran `az`), whichever subscription spelling
    they pass; the local cloud's single subscription is still checked."""
    from flwrazure.azure.target import connect
    from flwrazure.errors import UsageError

    monkeypatch.setenv("FLWRAZURE_HOME", str(home))
    product_cloud.token()  # the test's own credential has its token before the count starts
    since = time.time()
    first = connect("local")
    assert connect("local", product_cloud.sub) is first and connect("local") is first
    first.credential.get_token(SCOPE)
    with pytest.raises(UsageError, match="does not exist in the local cloud"):
        connect("local", "00000000-0000-0000-0000-000000000000")
    tokens = [r for r in product_cloud.admin("GET", f"requests?since={since}").json()["value"]
              if r["path"].endswith("/token")]
    assert first.credential.fetches == 1 and len(tokens) == 1, tokens
    monkeypatch.setenv("FLWRAZURE_HOME", str(home.parent / "elsewhere"))
    with pytest.raises(UsageError, match="not running"):
        connect("local")  # another home: another local cloud (here none)
