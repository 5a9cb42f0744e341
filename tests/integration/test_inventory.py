"""The product's lists (azure/inventory.py): raw ARM JSON through the resource client's pipeline, every page, the
SDK's errors; and what they cost the product in imports."""

import subprocess
import sys

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.helpers import arm


@pytest.fixture
def target(cloud):
    from flwrazure.azure.credential import CachedCredential
    from flwrazure.azure.target import Target

    info = cloud.info
    return Target("local", info["subscription_id"], CachedCredential(cloud.credential), info["endpoint"],
                  info["ca_bundle"], poll=0.05)


def test_lists_follow_every_page_and_are_rest_shaped(cloud, net_stack, target):
    from flwrazure.azure import inventory

    cloud.admin("PATCH", "config", {"page_size": 2})
    for i in range(5):
        cloud.network.public_ip_addresses.begin_create_or_update("rg", f"ip{i}", arm.pip()).result()
    items = inventory.listers(target, "rg")["pip"]()
    assert sorted(p["name"] for p in items) == [f"ip{i}" for i in range(5)]
    assert all(p["properties"]["provisioningState"] == "Succeeded" and p["properties"]["ipAddress"] for p in items)
    pages = [r for r in cloud.admin("GET", "requests").json()["value"]
             if r["method"] == "GET" and r["path"].endswith("/publicIPAddresses")]
    assert len(pages) == 3  # 2 + 2 + 1
    snap = inventory.snapshot(target, "rg", ("pip", "nsg", "vnet"))
    assert set(snap["pip"]) == {f"ip{i}" for i in range(5)} and set(snap["nsg"]) == {"nsg"}


def test_list_errors_are_the_sdks(cloud, target):
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate

    with pytest.raises(ResourceNotFoundError) as gone:
        inventory.listers(target, "nope")["vm"]()
    assert gone.value.error.code == "ResourceGroupNotFound"
    assert "ResourceGroupNotFound" in str(translate(gone.value, "resource group nope"))
    cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
    with pytest.raises(HttpResponseError) as bad:
        inventory.list_raw(target.resources, f"/subscriptions/{target.subscription}/resourceGroups/rg/providers/"
                           "Microsoft.Network/virtualNetworks", {"api-version": "latest"})
    assert bad.value.status_code == 400 and bad.value.error.code == "InvalidApiVersionParameter"


def test_teardown_and_status_lists_import_no_network_or_compute_sdk():
    """A command that only lists (teardown of a group, status' snapshot) reads through the resource client:
    the network and compute SDKs (~0.35 s of imports) stay unloaded."""
    code = ("import sys; from flwrazure.azure import inventory; from flwrazure.azure.target import Target; "
            "from flwrazure.azure.credential import CachedCredential; t = Target('local', 's', CachedCredential(None), 'https://127.0.0.1:9', True); inventory.listers(t, 'rg'); "
            "t.resources; print(sorted(m for m in ('azure.mgmt.network', 'azure.mgmt.compute') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_raw_writes_answer_rest_json_and_fail_as_the_sdks(cloud, net_stack, target):
    """create-cluster's PUTs (inventory.put_raw): the answer's body as Azure sends it (a public IP: Updating, no
    address yet), Retry-After seen by a response hook, and errors as the SDK raises them."""
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate

    rid = f"/subscriptions/{target.subscription}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip9"
    seen = {}
    body = inventory.put_raw(target.resources, rid, arm.pip(),
                             lambda r: seen.setdefault("ra", r.http_response.headers.get("Retry-After")))
    assert body["name"] == "ip9" and body["properties"]["provisioningState"] in ("Updating", "Succeeded")
    assert "ra" in seen
    with pytest.raises(ResourceNotFoundError) as gone:
        inventory.put_raw(target.resources, rid.replace("/rg/", "/nope/"), arm.pip())
    assert gone.value.error.code == "ResourceGroupNotFound"
    bad_body = {**arm.pip(), "sku": {"name": "NoSuchSku"}}
    with pytest.raises(HttpResponseError) as bad:
        inventory.put_raw(target.resources, rid.replace("ip9", "ip10"), bad_body)
    assert bad.value.status_code == 400 and bad.value.error.code
    assert bad.value.error.code in str(translate(bad.value, "public IP ip10"))


def test_create_cluster_writes_import_no_network_or_compute_sdk():
    """create-cluster's preflight lists and PUTs go through the resource client: the network and compute SDKs
    (~0.4 s of CPU) are not imported in front of its first write."""
    code = ("import sys; from flwrazure.azure import inventory, preflight, provision; "
            "print(sorted(m for m in ('azure.mgmt.network', 'azure.mgmt.compute') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
