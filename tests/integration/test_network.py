"""Microsoft.Network through the real azure-mgmt-network client: LROs, validation, integrity, back-references."""

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.helpers import arm


def test_put_is_an_lro_with_azure_async_operation(cloud, net_stack):
    path = f"{cloud.rg_path('rg')}/providers/Microsoft.Network/publicIPAddresses/ip1"
    resp = cloud.raw("PUT", path, arm.pip(), api="2025-05-01")
    assert resp.status_code == 201
    assert "/providers/Microsoft.Network/locations/eastus/operations/" in resp.headers["Azure-AsyncOperation"]
    assert resp.json()["properties"]["provisioningState"] == "Updating"
    assert cloud.raw("PUT", path, arm.pip(), api="2025-05-01").status_code == 200
    ip = cloud.network.public_ip_addresses.get("rg", "ip1")
    assert ip.provisioning_state == "Succeeded" and ip.ip_address.startswith("198.18.")
    assert ip.sku.name == "Standard" and ip.public_ip_allocation_method == "Static"


def test_nsg_has_default_rules_and_rule_crud(cloud, net_stack):
    nsg = cloud.network.network_security_groups.get("rg", "nsg")
    assert [r.name for r in nsg.default_security_rules] == [
        "AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound",
        "AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"]
    cloud.network.security_rules.begin_create_or_update("rg", "nsg", "ssh", arm.rule(100)).result()
    cloud.network.security_rules.begin_create_or_update("rg", "nsg", "out", arm.rule(100, direction="Outbound")).result()
    assert sorted(r.name for r in cloud.network.security_rules.list("rg", "nsg")) == ["out", "ssh"]
    assert cloud.network.security_rules.get("rg", "nsg", "ssh").source_address_prefix == "203.0.113.5"
    cloud.network.security_rules.begin_delete("rg", "nsg", "ssh").result()
    with pytest.raises(ResourceNotFoundError):
        cloud.network.security_rules.get("rg", "nsg", "ssh")
    assert cloud.raw("DELETE", f"{cloud.rg_path('rg')}/providers/Microsoft.Network/networkSecurityGroups/nsg/"
                               "securityRules/ssh", api="2025-05-01").status_code == 204


@pytest.mark.parametrize("change, code", [
    ({"priority": 99}, "SecurityRuleInvalidPriority"),
    ({"priority": 4097}, "SecurityRuleInvalidPriority"),
    ({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
    ({"destinationPortRange": "9000-8000"}, "SecurityRuleInvalidPortRange"),
    ({"destinationPortRange": "abc"}, "SecurityRuleInvalidPortRange"),
    ({"sourceAddressPrefix": "300.1.1.1"}, "SecurityRuleInvalidAddressPrefix"),
    ({"sourceAddressPrefix": "10.0.0.0/33"}, "SecurityRuleInvalidAddressPrefix"),
    ({"protocol": "Carrier-Pigeon"}, "InvalidRequestFormat"),
    ({"access": "Maybe"}, "InvalidRequestFormat"),
])
def test_rule_validation_codes(cloud, net_stack, change, code):
    body = arm.rule(200)
    body["properties"].update(change)
    with pytest.raises(HttpResponseError) as err:
        cloud.network.security_rules.begin_create_or_update("rg", "nsg", "r", body)
    assert err.value.status_code == 400 and err.value.error.code == code


def test_rule_priority_conflict_same_direction_only(cloud, net_stack):
    cloud.network.security_rules.begin_create_or_update("rg", "nsg", "a", arm.rule(300)).result()
    with pytest.raises(HttpResponseError) as err:
        cloud.network.security_rules.begin_create_or_update("rg", "nsg", "b", arm.rule(300, port="80"))
    assert err.value.error.code == "SecurityRuleConflict"
    cloud.network.security_rules.begin_create_or_update("rg", "nsg", "a", arm.rule(300, port="23")).result()


def test_names_and_prefixes_validated(cloud, net_stack):
    with pytest.raises(HttpResponseError) as err:
        cloud.network.public_ip_addresses.begin_create_or_update("rg", "-bad", arm.pip())
    assert err.value.error.code == "InvalidResourceName"
    with pytest.raises(HttpResponseError) as err:
        cloud.network.virtual_networks.begin_create_or_update("rg", "v2", arm.vnet("10.1.0.1/16", None))
    assert err.value.error.code == "InvalidCIDRNotation"
    with pytest.raises(HttpResponseError) as err:
        cloud.network.virtual_networks.begin_create_or_update("rg", "v2", arm.vnet("banana", None))
    assert err.value.error.code == "InvalidAddressPrefixFormat"
    with pytest.raises(HttpResponseError) as err:
        cloud.network.subnets.begin_create_or_update("rg", "vnet", "s2", {"properties": {"addressPrefix": "10.9.0.0/24"}})
    assert err.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as err:
        cloud.network.subnets.begin_create_or_update("rg", "vnet", "s2", {"properties": {"addressPrefix": "10.0.0.128/25"}})
    assert err.value.error.code == "NetcfgSubnetRangesOverlap"
    with pytest.raises(HttpResponseError) as err:
        cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", {"location": "nowhere"})
    assert err.value.error.code == "LocationNotAvailableForResourceType"
    with pytest.raises(HttpResponseError) as err:
        cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", {})
    assert err.value.error.code == "LocationRequired"


def test_nic_allocates_private_ips_and_links_everything(cloud, net_stack):
    ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
    a = cloud.network.network_interfaces.begin_create_or_update(
        "rg", "a", arm.nic(net_stack["subnet"], ip.id, net_stack["nsg"])).result()
    b = cloud.network.network_interfaces.begin_create_or_update("rg", "b", arm.nic(net_stack["subnet"])).result()
    assert [a.ip_configurations[0].private_ip_address, b.ip_configurations[0].private_ip_address] == \
        ["10.0.0.4", "10.0.0.5"]  # Azure reserves .0-.3
    assert cloud.network.public_ip_addresses.get("rg", "ip").ip_configuration.id == a.ip_configurations[0].id
    subnet = cloud.network.subnets.get("rg", "vnet", "default")
    assert len(subnet.ip_configurations) == 2
    assert [n.id for n in cloud.network.network_security_groups.get("rg", "nsg").network_interfaces] == [a.id]
    again = cloud.network.network_interfaces.begin_create_or_update(
        "rg", "a", arm.nic(net_stack["subnet"], ip.id, net_stack["nsg"])).result()
    assert again.ip_configurations[0].private_ip_address == "10.0.0.4"  # a re-PUT keeps the address


def test_references_to_missing_resources_fail_like_azure(cloud, net_stack):
    missing = net_stack["subnet"].replace("/subnets/default", "/subnets/nope")
    with pytest.raises(HttpResponseError) as err:
        cloud.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(missing))
    assert err.value.status_code == 400 and err.value.error.code == "InvalidResourceReference"
    ghost_ip = net_stack["nsg"].replace("networkSecurityGroups/nsg", "publicIPAddresses/ghost")
    with pytest.raises(HttpResponseError) as err:
        cloud.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(net_stack["subnet"], ghost_ip))
    assert err.value.error.code == "InvalidResourceReference"


def test_in_use_resources_cannot_be_deleted(cloud, net_stack):
    ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
    cloud.network.network_interfaces.begin_create_or_update(
        "rg", "n", arm.nic(net_stack["subnet"], ip.id, net_stack["nsg"])).result()
    cases = [(cloud.network.public_ip_addresses.begin_delete, ("rg", "ip"), "PublicIPAddressCannotBeDeleted"),
             (cloud.network.network_security_groups.begin_delete, ("rg", "nsg"), "InUseNetworkSecurityGroupCannotBeDeleted"),
             (cloud.network.subnets.begin_delete, ("rg", "vnet", "default"), "InUseSubnetCannotBeDeleted"),
             (cloud.network.virtual_networks.begin_delete, ("rg", "vnet"), "InUseSubnetCannotBeDeleted")]
    for call, args, code in cases:
        with pytest.raises(HttpResponseError) as err:
            call(*args)
        assert err.value.status_code == 400 and err.value.error.code == code, code
    with pytest.raises(HttpResponseError) as err:  # a VNet re-PUT that leaves out a used subnet
        cloud.network.virtual_networks.begin_create_or_update("rg", "vnet", arm.vnet(subnet=None))
    assert err.value.error.code == "InUseSubnetCannotBeDeleted"
    cloud.network.network_interfaces.begin_delete("rg", "n").result()
    cloud.network.public_ip_addresses.begin_delete("rg", "ip").result()
    cloud.network.network_security_groups.begin_delete("rg", "nsg").result()
    cloud.network.virtual_networks.begin_delete("rg", "vnet").result()
    assert list(cloud.resources.resources.list_by_resource_group("rg")) == []


def test_delete_is_202_with_both_headers_and_missing_is_204(cloud, net_stack):
    path = f"{cloud.rg_path('rg')}/providers/Microsoft.Network/networkSecurityGroups/nsg"
    resp = cloud.raw("DELETE", path, api="2025-05-01")
    assert resp.status_code == 202 and {"Azure-AsyncOperation", "Location"} <= set(resp.headers)
    cloud.network.network_security_groups.begin_delete("rg", "nsg").result()
    assert cloud.raw("DELETE", path, api="2025-05-01").status_code == 204
    with pytest.raises(ResourceNotFoundError) as err:
        cloud.network.network_security_groups.get("rg", "nsg")
    assert err.value.error.code == "ResourceNotFound"


def test_public_ip_quota(cloud, net_stack):
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"PublicIPAddresses": 2}}})
    for i in range(2):
        cloud.network.public_ip_addresses.begin_create_or_update("rg", f"ip{i}", arm.pip()).result()
    with pytest.raises(HttpResponseError) as err:
        cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip2", arm.pip())
    assert err.value.error.code == "PublicIPCountLimitReached"
    usage = {u.name.value: (u.current_value, u.limit) for u in cloud.network.usages.list("eastus")}
    assert usage["PublicIPAddresses"] == (2, 2)


def test_nic_on_unfinished_resources_is_refused(cloud, net_stack):
    cloud.admin("PATCH", "config", {"latency": 0.5})
    cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip())  # still Updating
    ip_id = net_stack["nsg"].replace("networkSecurityGroups/nsg", "publicIPAddresses/ip")
    with pytest.raises(HttpResponseError) as err:
        cloud.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(net_stack["subnet"], ip_id))
    assert err.value.error.code == "ReferencedResourceNotProvisioned"


def test_public_ip_idle_timeout_default_range_and_echo(cloud, net_stack):
    assert cloud.network.public_ip_addresses.begin_create_or_update(
        "rg", "ip4", arm.pip()).result().as_dict()["properties"]["idleTimeoutInMinutes"] == 4
    body = arm.pip()
    body["properties"]["idleTimeoutInMinutes"] = 30
    cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip30", body).result()
    assert cloud.network.public_ip_addresses.get("rg", "ip30").as_dict()["properties"]["idleTimeoutInMinutes"] == 30
    for bad in (3, 31, "10"):
        body["properties"]["idleTimeoutInMinutes"] = bad
        with pytest.raises(HttpResponseError) as err:
            cloud.network.public_ip_addresses.begin_create_or_update("rg", f"bad{bad}", body)
        assert err.value.status_code == 400 and "between 4 and 30" in err.value.error.message
        assert err.value.error.code == "PublicIPAddressInvalidIdleTimeout"
