"""--private-clients, the pure part (issue 25, item 2): request bodies, the layout decisions (re-run, SSH route,
SuperLink address, Fleet sources) and the cost estimate."""

from pathlib import Path

import pytest

from flwrazure.errors import UsageError
from flwrazure.plan import cost, layout, resources
from flwrazure.plan import doctor as checks
from flwrazure.remote.shell import ssh_argv

NAT_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/natGateways/flower-nat"
PIP_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/flower-nat-ip"


def test_the_private_subnet_names_its_nat_gateway_and_has_no_default_outbound_access():
    body = resources.vnet("eastus", {}, "10.0.0.0/16", "default", "10.0.0.0/24", NAT_ID)
    assert body["properties"]["subnets"] == [{"name": "default", "properties": {
        "addressPrefix": "10.0.0.0/24", "natGateway": {"id": NAT_ID}, "defaultOutboundAccess": False}}]
    # the default layout's subnet is the seed's, unchanged
    assert resources.vnet("eastus", {}, "10.0.0.0/16", "default", "10.0.0.0/24")["properties"]["subnets"] == [
        {"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]


def test_a_subnet_is_converged_when_its_nat_gateway_or_outbound_setting_differs():
    good = {"properties": {"addressPrefix": "10.0.0.0/24", "natGateway": {"id": NAT_ID.upper()},
                           "defaultOutboundAccess": False}}
    assert resources.subnet_matches(good, NAT_ID)
    assert not resources.subnet_matches({"properties": {**good["properties"], "natGateway": None}}, NAT_ID)
    assert not resources.subnet_matches({"properties": {**good["properties"], "defaultOutboundAccess": True}},
                                        NAT_ID)
    no_setting = {"properties": {"addressPrefix": "10.0.0.0/24", "natGateway": {"id": NAT_ID}}}
    assert not resources.subnet_matches(no_setting, NAT_ID)  # unset means Azure's implicit outbound address
    assert resources.subnet_matches({"properties": {"addressPrefix": "10.0.0.0/24"}}, None)


def test_nat_gateway_body_is_azures_rest_shape():
    assert resources.nat_gateway("eastus", {"t": "v"}, PIP_ID) == {
        "location": "eastus", "tags": {"t": "v"}, "sku": {"name": "Standard"},
        "properties": {"idleTimeoutInMinutes": 30, "publicIpAddresses": [{"id": PIP_ID}]}}


def test_a_private_client_nic_has_no_public_ip():
    config = resources.nic("eastus", {}, "sub", None, "nsg")["properties"]["ipConfigurations"][0]["properties"]
    assert config == {"subnet": {"id": "sub"}, "privateIPAllocationMethod": "Dynamic"}
    with_ip = resources.nic("eastus", {}, "sub", PIP_ID, "nsg")["properties"]["ipConfigurations"][0]["properties"]
    assert with_ip["publicIPAddress"]["id"] == PIP_ID


def test_a_recorded_layout_is_kept_and_never_switched_in_place():
    assert layout.resolve(None, None, "c") is False and layout.resolve(True, None, "c") is True
    assert layout.resolve(None, True, "c") is True and layout.resolve(True, True, "c") is True
    assert layout.resolve(False, False, "c") is False
    with pytest.raises(UsageError) as e:
        layout.resolve(False, True, "exp")
    assert str(e.value) == ("cluster exp was created with --private-clients (its client VMs have no public IPs) and "
                            "a layout is not changed in place: re-run without --public-clients, or `flwrazure "
                            "teardown --cluster exp` and create it again with --public-clients.")
    with pytest.raises(UsageError, match="re-run without --private-clients"):
        layout.resolve(True, False, "exp")


SERVER = {"vm": "f-server", "role": "server", "public_ip": "198.18.0.4", "private_ip": "10.0.0.4"}


def test_ssh_goes_through_the_server_only_to_a_client_without_a_public_ip():
    assert layout.route(SERVER, SERVER) == ("198.18.0.4", None)
    public = {"role": "client", "public_ip": "198.18.0.5", "private_ip": "10.0.0.5"}
    assert layout.route(public, SERVER) == ("198.18.0.5", None)
    private = {"role": "client", "public_ip": None, "private_ip": "10.0.0.5"}
    assert layout.route(private, SERVER) == ("10.0.0.5", "198.18.0.4")
    assert layout.route(private, {**SERVER, "public_ip": None}) is None  # no way in: not reachable
    assert layout.route({**private, "private_ip": None}, SERVER) is None
    assert layout.route({**SERVER, "public_ip": None}, SERVER) is None  # the server is never jumped to


def test_supernodes_dial_the_private_address_only_when_clients_are_private():
    assert layout.superlink_ip(SERVER, True) == "10.0.0.4" and layout.superlink_ip(SERVER, False) == "198.18.0.4"


def test_the_fleet_rule_admits_the_subnet_for_private_clients_plus_silos_and_nothing_wider():
    assert layout.fleet_sources(True, "10.0.0.0/24", [], ("203.0.113.9",)) == ["10.0.0.0/24", "203.0.113.9"]
    assert layout.fleet_sources(False, "10.0.0.0/24", ["198.18.0.6", "198.18.0.5"], ()) == [
        "198.18.0.5", "198.18.0.6"]
    with pytest.raises(ValueError):
        layout.fleet_sources(False, "10.0.0.0/24", ["198.18.0.5", None], ())


def test_network_summary():
    nat = {"name": "f-nat"}
    ip = {"properties": {"ipAddress": "198.18.0.9"}}
    assert layout.summary(True, "10.0.0.0/24", nat, ip) == {
        "layout": "private-clients", "subnet": "10.0.0.0/24", "nat_gateway": "f-nat", "nat_public_ip": "198.18.0.9"}
    assert layout.summary(False, "10.0.0.0/24", None, None) == {
        "layout": "public", "subnet": "10.0.0.0/24", "nat_gateway": None, "nat_public_ip": None}


PRICES = {"vm:Standard_D2s_v3": 0.096, "ip": 0.005, "disk:Premium_LRS": 0.0073, "nat": 0.045, "nat_gb": 0.045}


def test_cost_private_clients_nat_gateway_and_saved_ips_against_the_default_layout():
    sizes = ["Standard_D2s_v3"] * 3  # the default cluster: server + 2 clients
    public = cost.estimate(sizes, PRICES, "src")
    private = cost.estimate(sizes, PRICES, "src", private=True)
    lines = {ln["what"]: ln for ln in private.lines}
    assert lines["Standard public IP"]["count"] == 2  # the server's and the NAT gateway's
    assert lines["NAT gateway"] == {"what": "NAT gateway", "count": 1, "usd_per_hour_each": 0.045,
                                    "usd_per_hour": 0.045, "billed_while_paused": True}
    assert private.running == round(public.running - 0.005 + 0.045, 4)
    assert private.paused == round(public.paused - 0.005 + 0.045, 4)
    d = private.to_dict()
    assert d["usd_per_gb_processed"] == 0.045 and d["public_ips_saved"] == 1
    assert d["usd_per_hour_public_layout"] == public.running
    text = cost.describe(d)
    assert "NAT gateway $0.0450/hour + $0.0450 per GB it processes (not in the total)" in text
    assert f"the default layout would cost ${public.running:.4f}/hour (+$0.0400/hour for private clients)" in text
    assert "usd_per_gb_processed" not in public.to_dict() and "Private clients" not in cost.describe(
        public.to_dict())
    # 10 clients: 9 IPs saved
    assert cost.estimate(["Standard_D2s_v3"] * 11, PRICES, "src", private=True).to_dict()["public_ips_saved"] == 9


def test_cost_private_queries_and_nat_meters():
    keys = [q.key for q in cost.queries("eastus", ["Standard_D2s_v3"], private=True)]
    assert keys[-2:] == ["nat", "nat_gb"] and "nat" not in [q.key for q in cost.queries("eastus", ["X"])]
    item = {"meterName": "Standard Gateway", "unitOfMeasure": "1 Hour", "skuName": "Standard", "retailPrice": 0.045}
    gb = {**item, "meterName": "Standard Data Processed", "unitOfMeasure": "1 GB"}
    assert cost.hourly("nat", [gb, item]) == 0.045 and cost.hourly("nat_gb", [item]) is None
    missing = cost.estimate(["Standard_D2s_v3"], {**PRICES, "nat": None}, "src", private=True)
    assert missing.running is None and "nat" in missing.missing


def test_interactive_ssh_jumps_through_the_server_with_the_same_pinned_keys():
    argv = ssh_argv("10.0.0.5", "azureuser", "/k/id 1", Path("/k/known_hosts"), "198.18.0.4")
    assert argv[-1] == "azureuser@10.0.0.5"
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    assert proxy == ("ProxyCommand=ssh -F /dev/null -i '/k/id 1' -o IdentitiesOnly=yes -o IdentityAgent=none "
                     "-o UserKnownHostsFile=/k/known_hosts -o GlobalKnownHostsFile=/dev/null "
                     "-o StrictHostKeyChecking=yes -o HashKnownHosts=no -o ConnectTimeout=10 "
                     "-W %h:%p azureuser@198.18.0.4")
    assert not any(a.startswith("ProxyCommand") for a in ssh_argv("198.18.0.5", "u", "/k", Path("/kh")))


def test_doctor_says_when_the_private_clients_have_no_way_out():
    ok = checks.client_outbound({"name": "default", "properties": {"natGateway": {"id": NAT_ID}}}, "flower-nat", "F")
    assert (ok.ok, ok.detail) == (True, "through NAT gateway flower-nat")
    other = checks.client_outbound({"properties": {"natGateway": {"id": NAT_ID + "2"}}}, "flower-nat", "F")
    assert other.ok is False and "(it has flower-nat2)" in other.detail and other.fix == "F"
    assert "(it has none)" in checks.client_outbound({"properties": {}}, "flower-nat", "F").detail
    assert checks.client_outbound(None, "flower-nat", "F").detail == "the cluster's subnet is missing"
