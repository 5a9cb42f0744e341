"""The egress gateways (NAT gateway, default outbound access) VMs without public IPs get: a pure plan."""

from flwrazure.localcloud.hosts import egress
from flwrazure.localcloud.hosts.egress import Egress, PrivateHost

V = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
NAT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/natGateways/nat"


def sub(name: str, prefix: str, nat: str | None = None, doa: bool | None = None) -> dict:
    props: dict = {"addressPrefix": prefix}
    if nat:
        props["natGateway"] = {"id": nat}
    if doa is not None:
        props["defaultOutboundAccess"] = doa
    return {"id": f"{V}/subnets/{name}", "properties": props}


def test_subnets_with_a_nat_gateway_share_one_gateway_with_its_address():
    subnets = {s["id"].lower(): s for s in (sub("a", "10.0.1.0/24", NAT, False), sub("b", "10.0.2.0/25", NAT))}
    hosts = [PrivateHost(f"{V}/subnets/a", V), PrivateHost(f"{V}/subnets/b", V), PrivateHost(f"{V}/subnets/a", V)]
    assert egress.plan(hosts, subnets, {NAT.lower(): "198.18.0.12"}) == {
        f"nat|{NAT.lower()}": Egress(f"nat|{NAT.lower()}", "198.18.0.12", ((V, ("10.0.1.1/24", "10.0.2.1/25")),),
                                     ("10.0.1.0/24", "10.0.2.0/25"))}


def test_private_subnet_without_nat_and_nat_without_address_have_no_way_out():
    subnets = {s["id"].lower(): s for s in (sub("p", "10.0.1.0/24", doa=False), sub("n", "10.0.2.0/24", NAT))}
    hosts = [PrivateHost(f"{V}/subnets/p", V), PrivateHost(f"{V}/subnets/n", V)]
    assert egress.plan(hosts, subnets, {NAT.lower(): None}) == {}
    assert egress.plan([], subnets, {NAT.lower(): "198.18.0.12"}) == {}  # no VM there: no gateway


def test_default_outbound_access_gets_a_stable_implicit_address_per_subnet():
    subnets = {s["id"].lower(): s for s in (sub("d", "10.0.3.0/24"), sub("t", "10.0.4.0/24", doa=True))}
    hosts = [PrivateHost(f"{V}/subnets/d", V), PrivateHost(f"{V}/subnets/t", V)]
    first = egress.plan(hosts, subnets, {})
    assert sorted(first) == [f"doa|{V.lower()}/subnets/d", f"doa|{V.lower()}/subnets/t"]
    addresses = [e.public_ip for e in first.values()]
    assert len(set(addresses)) == 2 and all(a.startswith("198.19.") for a in addresses)
    assert egress.plan(hosts, subnets, {}) == first
    assert egress.implicit_address("x", set()) not in ("198.19.240.0", "198.19.255.255")


def test_modes_and_gateway_address():
    assert egress.mode(sub("a", "10.0.0.0/24")) == "default"
    assert egress.mode(sub("a", "10.0.0.0/24", doa=False)) == "none"
    assert egress.mode(sub("a", "10.0.0.0/24", NAT, doa=False)) == "nat"
    assert egress.gateway_address("10.2.0.64/26") == "10.2.0.65/26"


def test_ruleset_forwards_only_its_subnets_out_and_snats_to_the_public_address():
    spec = Egress("nat|x", "198.18.0.12", ((V, ("10.0.1.1/24",)),), ("10.0.1.0/24",))
    rules = egress.ruleset(spec, ["vnet0"]).splitlines()
    assert ":FORWARD DROP [0:0]" in rules and ":INPUT DROP [0:0]" in rules
    assert "-A FORWARD -i vnet0 -o pub -s 10.0.1.0/24 -j ACCEPT" in rules
    assert "-A POSTROUTING -o pub -j SNAT --to-source 198.18.0.12" in rules
    assert not any("-i pub" in r and "ACCEPT" in r and "ESTABLISHED" not in r for r in rules)


def test_vms_route_their_whole_vnet_on_the_private_interface():
    from flwrazure.localcloud.hosts.nspawn import vnet_routes

    assert vnet_routes(("10.0.0.0/16",), "10.0.1.4/24") == ["10.0.0.0/16"]
    assert vnet_routes(("10.0.0.0/24",), "10.0.0.4/24") == []  # the subnet is the VNet: connected already
    assert vnet_routes(("10.0.0.0/16", "10.8.0.0/16", "fd00::/48"), "10.0.0.4/24") == ["10.0.0.0/16", "10.8.0.0/16"]
