"""The answers' shapes and timing as Azure's providers give them (issue 11, from the shared recordings): LRO headers
per provider, initial provisioning states, async status bodies, error envelopes, Retry-After of the azure profile."""

from __future__ import annotations

import time

import pytest

from tests.helpers import arm

NET = "/providers/Microsoft.Network"
CMP = "/providers/Microsoft.Compute"


def _profile(cloud):
    """The azure profile at time scale 1 for the headers, but with every operation short. (Set after the SDK made
    the prerequisites: the SDK honours Retry-After, 3 to 50 s at scale 1.)"""
    cloud.admin("PATCH", "config", {"profile": "azure", "latency_by_type": {
        t: 0.3 for t in ("Microsoft.Network/virtualNetworks", "Microsoft.Network/networkSecurityGroups",
                         "Microsoft.Network/publicIPAddresses", "Microsoft.Network/networkInterfaces",
                         "Microsoft.Compute/virtualMachines", "Microsoft.Resources/resourceGroups")}})
    return cloud


@pytest.fixture
def azure(cloud):
    cloud.raw("PUT", cloud.rg_path("rg"), {"location": "eastus"})
    return cloud


def _settle(cloud, path: str, api: str = "2025-01-01") -> dict:
    deadline = time.time() + 10
    while True:
        body = cloud.raw("GET", path, api=api).json()
        if body["properties"]["provisioningState"] == "Succeeded" or time.time() > deadline:
            return body
        time.sleep(0.05)


def test_network_put_answers_updating_with_async_operation_and_retry_after_3(azure):
    _profile(azure)
    resp = azure.raw("PUT", azure.rg_path("rg") + NET + "/virtualNetworks/v", arm.vnet(), api="2024-05-01")
    assert resp.status_code == 201
    assert resp.json()["properties"]["provisioningState"] == "Updating"
    assert resp.json()["properties"]["subnets"][0]["properties"]["provisioningState"] == "Updating"
    assert "Location" not in resp.headers and resp.headers["Azure-AsyncNotification"] == "Enabled"
    assert resp.headers["Retry-After"] == "3"
    poll = azure.raw("GET", resp.headers["Azure-AsyncOperation"].split(azure.info["endpoint"])[1].split("?")[0],
                     api="2024-05-01")
    assert poll.json() == {"status": "InProgress"} and poll.headers["Retry-After"] == "10"
    time.sleep(0.5)
    done = azure.raw("GET", resp.headers["Azure-AsyncOperation"].split(azure.info["endpoint"])[1].split("?")[0],
                     api="2024-05-01")
    assert done.json() == {"status": "Succeeded"} and "Retry-After" not in done.headers


def test_standard_public_ip_has_no_address_until_succeeded(azure):
    _profile(azure)
    path = azure.rg_path("rg") + NET + "/publicIPAddresses/ip"
    resp = azure.raw("PUT", path, arm.pip(), api="2024-05-01")
    assert resp.status_code == 201 and resp.json()["properties"]["provisioningState"] == "Updating"
    assert "ipAddress" not in resp.json()["properties"]
    assert _settle(azure, path, "2024-05-01")["properties"]["ipAddress"].startswith("198.1")


def test_nic_put_is_already_succeeded_with_its_private_address(azure):
    v = azure.network.virtual_networks.begin_create_or_update("rg", "v", arm.vnet()).result()
    _profile(azure)
    resp = azure.raw("PUT", azure.rg_path("rg") + NET + "/networkInterfaces/n", arm.nic(v.subnets[0].id),
                     api="2024-05-01")
    assert resp.status_code == 201 and resp.json()["properties"]["provisioningState"] == "Succeeded"
    assert resp.json()["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.0.4"
    assert "Azure-AsyncOperation" in resp.headers and "Retry-After" not in resp.headers


def test_compute_lro_headers_and_status_bodies(azure):
    v = azure.network.virtual_networks.begin_create_or_update("rg", "v", arm.vnet()).result()
    nic = azure.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(v.subnets[0].id)).result()
    _profile(azure)
    path = azure.rg_path("rg") + CMP + "/virtualMachines/vm"
    put = azure.raw("PUT", path, arm.vm(nic.id), api="2024-07-01")
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Creating"
    assert "Location" not in put.headers and "?p=" in put.headers["Azure-AsyncOperation"]
    assert put.headers["Retry-After"] == "10"
    op = put.headers["Azure-AsyncOperation"].split(azure.info["endpoint"])[1].split("?")[0]
    first = azure.raw("GET", op, api="2024-07-01")
    assert set(first.json()) == {"startTime", "status", "name"} and first.headers["Retry-After"] == "50"
    assert "Retry-After" not in azure.raw("GET", op, api="2024-07-01").headers
    _settle(azure, path, "2024-07-01")
    assert set(azure.raw("GET", op, api="2024-07-01").json()) == {"startTime", "endTime", "status", "name"}
    post = azure.raw("POST", path + "/powerOff", api="2024-07-01")
    assert post.status_code == 202
    assert post.headers["Location"] == post.headers["Azure-AsyncOperation"].replace("&api-version", "&monitor=true&api-version")
    monitor = post.headers["Location"].split(azure.info["endpoint"])[1]
    assert azure.raw("GET", monitor, api=None).status_code == 202
    time.sleep(0.5)
    done = azure.raw("GET", monitor, api=None)
    assert done.status_code == 200 and done.content == b""


def test_error_envelopes_per_provider(azure):
    _profile(azure)
    missing = azure.raw("GET", azure.rg_path("rg") + NET + "/networkSecurityGroups/none", api="2024-05-01")
    assert missing.status_code == 404 and missing.headers["x-ms-failure-cause"] == "gateway"
    assert set(missing.json()["error"]) == {"code", "message"}
    bad = azure.raw("PUT", azure.rg_path("rg") + NET + "/virtualNetworks/v", {"location": "eastus", "properties": {}},
                    api="2024-05-01")
    assert bad.status_code == 400 and bad.json()["error"]["details"] == [] and "x-ms-failure-cause" not in bad.headers
    assert set(bad.json()["error"]) == {"code", "message", "details"}
    head = azure.raw("HEAD", azure.rg_path("nope"))
    assert head.status_code == 404 and head.content == b"" and head.headers["x-ms-failure-cause"] == "gateway"


def test_in_use_deletes_answer_each_network_type_code(azure):
    v = azure.network.virtual_networks.begin_create_or_update("rg", "v", arm.vnet()).result()
    nsg = azure.network.network_security_groups.begin_create_or_update("rg", "g", {"location": "eastus"}).result()
    ip = azure.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
    nic = azure.network.network_interfaces.begin_create_or_update(
        "rg", "n", arm.nic(v.subnets[0].id, ip.id, nsg.id)).result()
    azure.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
    _profile(azure)
    expect = {"/virtualNetworks/v": "InUseSubnetCannotBeDeleted", "/virtualNetworks/v/subnets/default":
              "InUseSubnetCannotBeDeleted", "/networkSecurityGroups/g": "InUseNetworkSecurityGroupCannotBeDeleted",
              "/publicIPAddresses/ip": "PublicIPAddressCannotBeDeleted", "/networkInterfaces/n": "NicInUse"}
    for sub, code in expect.items():
        resp = azure.raw("DELETE", azure.rg_path("rg") + NET + sub, api="2024-05-01")
        assert (resp.status_code, resp.json()["error"]["code"]) == (400, code), sub
        assert resp.json()["error"]["details"] == []
        assert "x-ms-ratelimit-remaining-subscription-deletes" in resp.headers


def test_group_delete_sends_retry_after_15(azure):
    _profile(azure)
    resp = azure.raw("DELETE", azure.rg_path("rg"))
    assert resp.status_code == 202 and resp.headers["Retry-After"] == "15"
    poll = azure.raw("GET", resp.headers["Location"].split(azure.info["endpoint"])[1], api=None)
    assert poll.status_code == 202 and poll.headers["Retry-After"] == "15"


def test_time_scale_shortens_the_azure_profile(cloud, net_stack):
    cloud.admin("PATCH", "config", {"profile": "azure", "time_scale": 0.01})
    nic = cloud.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(net_stack["subnet"])).result()
    start = time.monotonic()
    put = cloud.raw("PUT", cloud.rg_path("rg") + CMP + "/virtualMachines/vm", arm.vm(nic.id), api="2024-07-01")
    assert put.headers["retry-after-ms"] == "100" and "Retry-After" not in put.headers
    cloud.compute.virtual_machines.get("rg", "vm")
    _settle(cloud, cloud.rg_path("rg") + CMP + "/virtualMachines/vm", "2024-07-01")
    assert 0.7 <= time.monotonic() - start < 3  # 75 s x 0.01
