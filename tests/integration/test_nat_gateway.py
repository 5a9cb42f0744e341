"""natGateways and the subnet's NAT association / defaultOutboundAccess through the real azure-mgmt-network client
(API-only local cloud): shapes, references, errors, deletion order, prices."""

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.helpers import arm


def nat(*pip_ids: str, idle: int | None = None) -> dict:
    props: dict = {"publicIpAddresses": [{"id": i} for i in pip_ids]}
    if idle is not None:
        props["idleTimeoutInMinutes"] = idle
    return {"location": "eastus", "sku": {"name": "Standard"}, "properties": props, "tags": {"role": "egress"}}


def subnet(nat_id: str | None = None, prefix: str = "10.0.0.0/24", **extra) -> dict:
    props: dict = {"addressPrefix": prefix, **extra}
    if nat_id:
        props["natGateway"] = {"id": nat_id}
    return {"properties": props}


def code_of(call) -> str:
    with pytest.raises(HttpResponseError) as err:
        call()
    assert err.value.status_code == 400
    return err.value.error.code


def test_nat_gateway_shape_lro_and_lists(cloud, net_stack):
    ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "natip", arm.pip()).result()
    path = f"{cloud.rg_path('rg')}/providers/Microsoft.Network/natGateways/nat"
    first = cloud.raw("PUT", path, nat(ip.id), api="2026-03-01")
    assert first.status_code == 201 and "Azure-AsyncOperation" in first.headers
    assert first.json()["properties"]["provisioningState"] == "Updating"
    got = cloud.network.nat_gateways.begin_create_or_update("rg", "nat", nat(ip.id)).result()
    assert got.provisioning_state == "Succeeded" and got.sku.name == "Standard"
    assert got.idle_timeout_in_minutes == 4 and got.tags == {"role": "egress"} and got.resource_guid
    assert [p.id for p in got.public_ip_addresses] == [ip.id] and not got.subnets
    assert cloud.network.public_ip_addresses.get("rg", "natip").nat_gateway.id == got.id
    assert [n.name for n in cloud.network.nat_gateways.list("rg")] == ["nat"]
    assert [n.name for n in cloud.network.nat_gateways.list_all()] == ["nat"]
    listed = [(r.type, r.name) for r in cloud.resources.resources.list_by_resource_group("rg")]
    assert ("Microsoft.Network/natGateways", "nat") in listed
    with pytest.raises(ResourceNotFoundError):
        cloud.network.nat_gateways.get("rg", "other")


def test_subnet_association_back_references_and_deletion_order(cloud, net_stack):
    ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "natip", arm.pip()).result()
    gw = cloud.network.nat_gateways.begin_create_or_update("rg", "nat", nat(ip.id)).result()
    sub = cloud.network.subnets.begin_create_or_update("rg", "vnet", "default", subnet(gw.id)).result()
    assert sub.nat_gateway.id == gw.id
    assert [s.id for s in cloud.network.nat_gateways.get("rg", "nat").subnets] == [sub.id]
    # a VNet PUT carries the association too; a second VNet's subnet can use the same gateway's region
    v2 = cloud.network.virtual_networks.begin_create_or_update("rg", "v2", {
        "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                                             "subnets": [{"name": "s", **subnet(gw.id, "10.9.0.0/24")}]}}).result()
    assert v2.subnets[0].nat_gateway.id == gw.id
    assert len(cloud.network.nat_gateways.get("rg", "nat").subnets) == 2
    assert code_of(lambda: cloud.network.nat_gateways.begin_delete("rg", "nat")) == "InUseNatGatewayCannotBeDeleted"
    assert code_of(lambda: cloud.network.public_ip_addresses.begin_delete("rg", "natip")) == \
        "PublicIPAddressCannotBeDeleted"
    # dissociating (subnet PUT without it; VNet PUT without it) frees the gateway, which then frees its address
    cloud.network.subnets.begin_create_or_update("rg", "vnet", "default", subnet()).result()
    cloud.network.virtual_networks.begin_create_or_update("rg", "v2", {
        "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                                             "subnets": [{"name": "s", **subnet(None, "10.9.0.0/24")}]}}).result()
    assert not cloud.network.nat_gateways.get("rg", "nat").subnets
    cloud.network.nat_gateways.begin_delete("rg", "nat").result()
    assert cloud.network.public_ip_addresses.get("rg", "natip").nat_gateway is None
    cloud.network.public_ip_addresses.begin_delete("rg", "natip").result()


def test_public_ip_is_either_a_nics_or_a_nat_gateways(cloud, net_stack):
    ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
    cloud.network.nat_gateways.begin_create_or_update("rg", "nat", nat(ip.id)).result()
    assert code_of(lambda: cloud.network.network_interfaces.begin_create_or_update(
        "rg", "nic", arm.nic(net_stack["subnet"], ip.id))) == "PublicIPAddressInUse"
    ip2 = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip2", arm.pip()).result()
    cloud.network.network_interfaces.begin_create_or_update("rg", "nic", arm.nic(net_stack["subnet"], ip2.id)).result()
    assert code_of(lambda: cloud.network.nat_gateways.begin_create_or_update("rg", "nat2", nat(ip2.id))) == \
        "PublicIPAddressInUse"
    # swapping the gateway's address releases the first one
    ip3 = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip3", arm.pip()).result()
    cloud.network.nat_gateways.begin_create_or_update("rg", "nat", nat(ip3.id)).result()
    assert cloud.network.public_ip_addresses.get("rg", "ip").nat_gateway is None
    assert cloud.network.public_ip_addresses.get("rg", "ip3").nat_gateway is not None


@pytest.mark.parametrize("body_change, code", [
    ({"properties": {"idleTimeoutInMinutes": 3}}, "NatGatewayInvalidIdleTimeout"),
    ({"properties": {"idleTimeoutInMinutes": 121}}, "NatGatewayInvalidIdleTimeout"),
    ({"sku": {"name": "Premium"}}, "InvalidRequestFormat"),
    ({"properties": {"publicIpAddresses": [{"id": "/subscriptions/x/resourceGroups/rg/providers/"
                                                  "Microsoft.Network/publicIPAddresses/missing"}]}},
     "InvalidResourceReference"),
])
def test_nat_gateway_validation(cloud, net_stack, body_change, code):
    body = nat()
    for key, value in body_change.items():
        body[key] = {**body.get(key, {}), **value}
    if body["properties"]["publicIpAddresses"]:
        ref = body["properties"]["publicIpAddresses"][0]["id"].replace("/subscriptions/x/", f"/subscriptions/{cloud.sub}/")
        body["properties"]["publicIpAddresses"] = [{"id": ref}]
    assert code_of(lambda: cloud.network.nat_gateways.begin_create_or_update("rg", "nat", body)) == code


def test_idle_timeout_range_and_other_region(cloud, net_stack):
    assert cloud.network.nat_gateways.begin_create_or_update("rg", "n120", nat(idle=120)).result() \
        .idle_timeout_in_minutes == 120
    west = cloud.network.public_ip_addresses.begin_create_or_update("rg", "west", arm.pip("westus")).result()
    assert code_of(lambda: cloud.network.nat_gateways.begin_create_or_update("rg", "n", nat(west.id))) == \
        "InvalidResourceReference"


def test_default_outbound_access_follows_the_api_version(cloud, net_stack):
    # the SDK's version (2026-03-01) is after 2025-07-01: a new subnet is private unless it says otherwise
    private = cloud.network.subnets.begin_create_or_update("rg", "vnet", "p", subnet(prefix="10.0.1.0/24")).result()
    assert private.default_outbound_access is False
    open_ = cloud.network.subnets.begin_create_or_update(
        "rg", "vnet", "o", subnet(prefix="10.0.2.0/24", defaultOutboundAccess=True)).result()
    assert open_.default_outbound_access is True
    path = f"{cloud.rg_path('rg')}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/old"
    assert cloud.raw("PUT", path, subnet(prefix="10.0.3.0/24"), api="2024-05-01").status_code == 201
    assert "defaultOutboundAccess" not in cloud.raw("GET", path, api="2024-05-01").json()["properties"]
    # an update that leaves it out keeps what the subnet has
    again = cloud.network.subnets.begin_create_or_update("rg", "vnet", "o", subnet(prefix="10.0.2.0/24")).result()
    assert again.default_outbound_access is True
    assert code_of(lambda: cloud.network.subnets.begin_create_or_update("rg", "vnet", "bad", {"properties": {
        "addressPrefix": "10.0.4.0/24", "defaultOutboundAccess": "yes"}})) == "InvalidRequestFormat"


def test_group_delete_removes_nat_gateways(cloud, net_stack):
    ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "natip", arm.pip()).result()
    gw = cloud.network.nat_gateways.begin_create_or_update("rg", "nat", nat(ip.id)).result()
    cloud.network.subnets.begin_create_or_update("rg", "vnet", "default", subnet(gw.id)).result()
    cloud.resources.resource_groups.begin_delete("rg").result()
    assert list(cloud.network.nat_gateways.list_all()) == []


def test_price_list_has_the_nat_gateway_meters(cloud):
    resp = cloud.raw("GET", "/api/retail/prices", token=None, api="2023-01-01-preview", **{
        "$filter": "serviceName eq 'NAT Gateway' and armRegionName eq 'eastus'"})
    items = resp.json()["Items"]
    assert {(i["meterName"], i["unitOfMeasure"], i["skuName"], i["serviceFamily"]) for i in items} == {
        ("Standard Gateway", "1 Hour", "Standard", "Networking"),
        ("Standard Data Processed", "1 GB", "Standard", "Networking")}
    assert all(i["productName"].startswith("NAT Gateway ") and i["retailPrice"] > 0 for i in items)
