"""--private-clients against the API-only local cloud (issue 25, item 2): what create-cluster sends (no public IP for
a client VM, one NAT gateway with its own Standard static IP on a subnet without default outbound access), the
Fleet rule (the subnet, nothing wider), re-runs (the layout is kept; switching it is one line, exit 2, nothing
written; a dissociated NAT gateway is associated again), scale, status/list/--json, the cost, teardown."""

import json
import time

from tests.helpers import contract
from tests.helpers.cloud import flwrazure
from tests.integration.test_bad_input import assert_one_line_exit_2

RG = "flower-rg"
BASE = ("create-cluster", "--cloud", "local", "--clients", "2", "--ssh-source", "203.0.113.9",
        "--flwr-version", "1.42.0")


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result


def _json(home, *args):
    return contract.documented(args[0], _ok(flwrazure(home, *args, "--json")).stdout)


def _put_paths(cloud, since):
    return sorted(w["path"].split("/providers/", 1)[-1] for w in cloud.writes(since) if w["method"] == "PUT")


def test_private_clients_have_no_public_ip_and_go_out_through_the_nat_gateway(product_cloud, home):
    since = time.time()
    out = _json(home, *BASE, "--private-clients")
    net = product_cloud.network
    # what was sent: one public IP for the server, one for the NAT gateway; none for a client
    puts = _put_paths(product_cloud, since)
    assert [p for p in puts if "publicIPAddresses" in p] == [
        "Microsoft.Network/publicIPAddresses/flower-nat-ip", "Microsoft.Network/publicIPAddresses/flower-server-ip"]
    assert "Microsoft.Network/natGateways/flower-nat" in puts
    nat = net.nat_gateways.get(RG, "flower-nat")
    nat_ip = net.public_ip_addresses.get(RG, "flower-nat-ip")
    assert nat.sku.name == "Standard" and [p.id for p in nat.public_ip_addresses] == [nat_ip.id]
    assert nat_ip.sku.name == "Standard" and nat_ip.public_ip_allocation_method == "Static"
    subnet = net.subnets.get(RG, "flower-vnet", "default")
    assert subnet.nat_gateway.id.lower() == nat.id.lower() and subnet.default_outbound_access is False
    assert [s.id.lower() for s in nat.subnets] == [subnet.id.lower()]
    for i in (1, 2):
        nic = net.network_interfaces.get(RG, f"flower-client-{i}-nic")
        assert nic.ip_configurations[0].public_ip_address is None
    assert net.network_interfaces.get(RG, "flower-server-nic").ip_configurations[0].public_ip_address is not None
    # what it says
    clients = [v for v in out["vms"] if v["role"] == "client"]
    assert [v["public_ip"] for v in clients] == [None, None] and all(v["private_ip"] for v in clients)
    assert out["network"] == {"layout": "private-clients", "subnet": "10.0.0.0/24", "nat_gateway": "flower-nat",
                              "nat_public_ip": nat_ip.ip_address}
    lines = {ln["what"]: ln["count"] for ln in out["cost"]["lines"]}
    assert lines["Standard public IP"] == 2 and lines["NAT gateway"] == 1
    assert out["cost"]["public_ips_saved"] == 1 and out["cost"]["usd_per_gb_processed"] is not None
    assert json.loads((home / "clusters" / "flower" / "state.json").read_text())["private_clients"] is True

    # the Fleet rule admits the subnet only (the clients have no public IP it could name)
    ports = _json(home, "open-ports", "--source", "203.0.113.9")
    fleet = next(r for r in ports["rules"] if r["name"] == "flwrazure-fleet")
    assert fleet["sources"] == ["10.0.0.0/24"]
    rule = net.security_rules.get(RG, "flower-nsg", "flwrazure-fleet")
    assert rule.source_address_prefix == "10.0.0.0/24" and not rule.source_address_prefixes

    # status and list show the layout; the table says how clients are reached
    status = _json(home, "status")
    assert status["network"] == out["network"]
    assert [v["public_ip"] for v in status["vms"] if v["role"] == "client"] == [None, None]
    listed = json.loads(_ok(flwrazure(home, "list", "--json")).stdout)
    assert [r["private_clients"] for r in listed] == [True]
    text = _ok(flwrazure(home, "status")).stdout
    assert "Private clients: no public IPs; outbound through NAT gateway flower-nat" in " ".join(text.split())

    # a re-run without the option keeps the layout and writes nothing
    since = time.time()
    again = _json(home, *BASE)
    assert again["network"] == out["network"] and product_cloud.writes(since) == []

    # scale keeps it: the new client has no public IP either
    since = time.time()
    _ok(flwrazure(home, "scale", "--clients", "3", "--json"))
    assert not [p for p in _put_paths(product_cloud, since) if "publicIPAddresses" in p]
    assert net.network_interfaces.get(RG, "flower-client-3-nic").ip_configurations[0].public_ip_address is None


def test_switching_a_clusters_layout_is_refused_in_one_line_and_nothing_is_written(product_cloud, home):
    _ok(flwrazure(home, *BASE, "--private-clients"))
    record = (home / "clusters" / "flower" / "state.json").read_text()
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *BASE, "--public-clients"),
                           "cluster flower was created with --private-clients")
    assert product_cloud.writes(since) == [] and (home / "clusters" / "flower" / "state.json").read_text() == record
    _ok(flwrazure(home, *BASE, "--cluster", "pub", "-g", "pub-rg"))
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *BASE, "--cluster", "pub", "-g", "pub-rg", "--private-clients"),
                           "re-run without --private-clients, or `flwrazure teardown --cluster pub`")
    assert product_cloud.writes(since) == []
    assert product_cloud.network.network_interfaces.get("pub-rg", "pub-client-1-nic").ip_configurations[
        0].public_ip_address is not None  # the default layout is the seed's


def test_a_dissociated_nat_gateway_is_associated_again_by_a_rerun(product_cloud, home):
    _ok(flwrazure(home, *BASE, "--private-clients"))
    net = product_cloud.network
    net.subnets.begin_create_or_update(RG, "flower-vnet", "default", {"properties": {
        "addressPrefix": "10.0.0.0/24", "defaultOutboundAccess": False}}).result()
    assert net.subnets.get(RG, "flower-vnet", "default").nat_gateway is None
    check = _outbound_check(home)
    assert check["ok"] is False and "NAT gateway flower-nat is not on the subnet (it has none)" in check["detail"]
    assert check["fix"].startswith("flwrazure create-cluster --cluster flower") and \
        check["fix"].endswith("--private-clients")
    since = time.time()
    _ok(flwrazure(home, *BASE))
    assert _put_paths(product_cloud, since) == ["Microsoft.Network/virtualNetworks/flower-vnet/subnets/default"]
    subnet = net.subnets.get(RG, "flower-vnet", "default")
    assert subnet.nat_gateway.id.lower().endswith("/natgateways/flower-nat") and not subnet.default_outbound_access
    assert _outbound_check(home) == {"name": "client outbound", "ok": True, "detail": "through NAT gateway flower-nat",
                                     "fix": ""}


def _outbound_check(home) -> dict:
    result = flwrazure(home, "doctor", "--local-only", "--json")
    assert result.returncode in (0, 1), result.stderr
    return next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "client outbound")


def test_teardown_of_a_cluster_in_a_shared_group_deletes_the_nat_gateway_after_the_vnet(product_cloud, home):
    """In a group flwrazure did not create, teardown deletes resource by resource: the NAT gateway only once no
    subnet uses it, its IP only once the gateway is gone (Azure refuses either while in use)."""
    product_cloud.resources.resource_groups.create_or_update("shared-rg", {"location": "eastus"})
    _ok(flwrazure(home, *BASE, "-g", "shared-rg", "--use-existing-group", "--private-clients"))
    out = json.loads(_ok(flwrazure(home, "teardown", "-y", "--json")).stdout)
    gone = [i.rsplit("/", 1)[-1] for i in out["deleted"]]
    assert out["mode"] == "tagged" and {"flower-nat", "flower-nat-ip"} <= set(gone)
    assert gone.index("flower-vnet") < gone.index("flower-nat") < gone.index("flower-nat-ip")
    assert list(product_cloud.resources.resources.list_by_resource_group("shared-rg")) == []
