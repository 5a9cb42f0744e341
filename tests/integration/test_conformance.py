"""Conformance with the Azure REST API spec examples in shared/reference/azure-rest-examples: for each example,
the emulator's answer to that example's request has every key the example's response shows. Placeholders in the
examples ({subscription-id}, {your-username}, image fields…) are replaced by valid values first."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import arm
from tests.helpers.keys import missing_keys

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(os.environ.get("FLWRAZURE_SHARED", ROOT.parent / "shared")) / "reference" / "azure-rest-examples"
FILES = sorted(p.name for p in EXAMPLES.glob("*.json") if not p.name.startswith("common-types"))
PLACEHOLDERS = {"{your-username}": "azureuser", "{image_publisher}": "Canonical",
                # the example runs a Gen1 image (Ubuntu 16.04) on Standard_D1_v2, which boots only Gen1
                "{image_offer}": "ubuntu-24_04-lts", "{image_sku}": "server-gen1", "{existing-nic-name}": "nic1"}


def test_examples_are_present():
    assert len(FILES) >= 9, f"spec examples not found under {EXAMPLES} (set FLWRAZURE_SHARED to shared/)"


def _load(cloud, name: str) -> dict:
    text = (EXAMPLES / name).read_text()
    for old, new in {**PLACEHOLDERS, "{subscription-id}": cloud.sub, "/subscriptions/subid/": f"/subscriptions/{cloud.sub}/"}.items():
        text = text.replace(old, new)
    data = json.loads(text)
    data["parameters"]["subscriptionId"] = cloud.sub
    return data


def _rg(cloud, name: str, location: str = "eastus") -> None:
    cloud.resources.resource_groups.create_or_update(name, {"location": location})


def _net(cloud, rg: str, kind: str, name: str, body: dict):
    ops = {"vnet": cloud.network.virtual_networks, "nsg": cloud.network.network_security_groups,
           "pip": cloud.network.public_ip_addresses, "nic": cloud.network.network_interfaces}[kind]
    return ops.begin_create_or_update(rg, name, body).result()


def _nic_prereqs(cloud, rg: str, location: str, vnet: str = "rg1-vnet", prefix: str = "172.20.0.0/16",
                 subnet: str = "172.20.2.0/24", ip: str = "test-ip"):
    _rg(cloud, rg, location)
    v = _net(cloud, rg, "vnet", vnet, arm.vnet(prefix, subnet, location))
    p = _net(cloud, rg, "pip", ip, arm.pip(location))
    return v.subnets[0].id, p.id


def _path_and_setup(cloud, op: str, p: dict) -> tuple[str, dict]:
    """The request path and body of an example, after creating what it refers to."""
    s = f"/subscriptions/{cloud.sub}"
    rg = p.get("resourceGroupName")
    net = f"{s}/resourceGroups/{rg}/providers/Microsoft.Network"
    if op == "ResourceGroups_CreateOrUpdate":
        return f"{s}/resourcegroups/{rg}", p["parameters"]
    if op == "VirtualNetworks_CreateOrUpdate":
        _rg(cloud, rg)
        return f"{net}/virtualNetworks/{p['virtualNetworkName']}", p["parameters"]
    if op == "Subnets_CreateOrUpdate":
        _rg(cloud, rg)
        _net(cloud, rg, "vnet", p["virtualNetworkName"], arm.vnet("10.0.0.0/16", None))
        return f"{net}/virtualNetworks/{p['virtualNetworkName']}/subnets/{p['subnetName']}", p["subnetParameters"]
    if op == "NetworkSecurityGroups_CreateOrUpdate":
        _rg(cloud, rg)
        return f"{net}/networkSecurityGroups/{p['networkSecurityGroupName']}", p["parameters"]
    if op == "SecurityRules_CreateOrUpdate":
        _rg(cloud, rg)
        _net(cloud, rg, "nsg", p["networkSecurityGroupName"], {"location": "eastus"})
        return (f"{net}/networkSecurityGroups/{p['networkSecurityGroupName']}/securityRules/{p['securityRuleName']}",
                p["securityRuleParameters"])
    if op == "PublicIPAddresses_CreateOrUpdate":
        _rg(cloud, rg)
        return f"{net}/publicIPAddresses/{p['publicIpAddressName']}", p["parameters"]
    if op == "NetworkInterfaces_CreateOrUpdate":
        _nic_prereqs(cloud, rg, p["parameters"]["location"])
        return f"{net}/networkInterfaces/{p['networkInterfaceName']}", p["parameters"]
    compute = f"{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{p['vmName']}"
    if op == "VirtualMachines_CreateOrUpdate":
        location = p["parameters"]["location"]
        subnet, _ = _nic_prereqs(cloud, rg, location, ip="vm-ip")
        _net(cloud, rg, "nic", "nic1", arm.nic(subnet, location=location))
        body = p["parameters"]
        body["properties"]["networkProfile"]["networkInterfaces"][0]["id"] = \
            f"{s}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/nic1"
        return compute, body
    if op == "VirtualMachines_InstanceView":
        subnet, _ = _nic_prereqs(cloud, rg, "eastus", ip="vm-ip")
        nic = _net(cloud, rg, "nic", "nic1", arm.nic(subnet))
        cloud.compute.virtual_machines.begin_create_or_update(rg, p["vmName"], arm.vm(nic.id)).result()
        return compute + "/instanceView", None
    raise AssertionError(f"no request mapping for {op}")


def _compare(example: dict, status: int, body: dict) -> list[str]:
    return missing_keys(example["responses"][str(status)]["body"], body)


@pytest.mark.parametrize("name", FILES)
def test_response_has_every_key_of_the_example(cloud, name):
    data = _load(cloud, name)
    op = name.split(".")[0]
    p = data["parameters"]
    path, body = _path_and_setup(cloud, op, p)
    api = p["api-version"]
    if body is None:
        resp = cloud.raw("GET", path, api=api)
        assert resp.status_code == 200, resp.text
        assert _compare(data, 200, resp.json()) == []
        return
    first = cloud.raw("PUT", path, body, api=api)
    assert first.status_code == 201, first.text
    missing = _compare(data, 201, first.json())
    if op == "PublicIPAddresses_CreateOrUpdate":
        # the example's address is attached to a NIC ('testDNS649'); a new one is not, until attached below
        assert missing == ["$.properties.ipConfiguration"]
        subnet, _ = _nic_prereqs(cloud, "rg1", "eastus", vnet="v", prefix="10.0.0.0/16", subnet="10.0.0.0/24",
                                 ip="other-ip")
        _net(cloud, "rg1", "nic", "testDNS649", arm.nic(subnet, first.json()["id"]))
    else:
        assert missing == []
    _wait_succeeded(cloud, path, api)
    second = cloud.raw("PUT", path, body, api=api)
    assert second.status_code == 200, second.text
    assert _compare(data, 200, second.json()) == []


def _wait_succeeded(cloud, path: str, api: str) -> None:
    import time

    deadline = time.time() + 10
    while cloud.raw("GET", path, api=api).json().get("properties", {}).get("provisioningState") not in (
            "Succeeded", None):
        assert time.time() < deadline
        time.sleep(0.02)
