"""teardown and status never touch, or misreport, what is not the cluster's: the real CLI against a local cloud
(API only), the real SDK over HTTPS."""

import json

from tests.helpers.cloud import flwrazure


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def create(home, *extra):
    return ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", *extra))


def names_in(cloud, rg):
    """What the providers themselves list in the group (not ARM's lagging generic list)."""
    found = [p.name for p in cloud.network.public_ip_addresses.list(rg)]
    found += [n.name for n in cloud.network.network_interfaces.list(rg)]
    found += [n.name for n in cloud.network.network_security_groups.list(rg)]
    found += [v.name for v in cloud.network.virtual_networks.list(rg)]
    found += [v.name for v in cloud.compute.virtual_machines.list(rg)]
    return sorted(found)


def test_final_check_confirms_listed_leftovers_with_their_provider(product_cloud, home):
    """ARM's /resources still lists what was deleted moments ago (Azure's cache): the check after a tagged
    teardown GETs each listed leftover and does not call a 404 left over."""
    cloud = product_cloud
    cloud.resources.resource_groups.create_or_update("shared-rg", {"location": "eastus"})
    create(home, "--resource-group", "shared-rg", "--use-existing-group")
    cloud.admin("PATCH", "config", {"resource_list_lag": 60})
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)
    assert result["mode"] == "tagged"
    assert names_in(cloud, "shared-rg") == []
    assert "flower-server" in [r.name for r in cloud.resources.resources.list_by_resource_group("shared-rg")]
    assert not (home / "clusters" / "flower" / "state.json").exists()
