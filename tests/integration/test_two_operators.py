"""Two operators, one subscription: two $FLWRAZURE_HOMEs on one local cloud, both with the default cluster name.
Each cluster has an identity of its own (a UUID tag recorded in its state); nothing carrying another identity is
adopted, changed or deleted, and every check stays inside the cluster's resource group."""

import json
import time

import pytest

from tests.helpers.cloud import flwrazure, publish

TAG_ID = "flwrazure-cluster-id"


@pytest.fixture
def home_b(product_cloud, tmp_path):
    home = tmp_path / "home-b"
    publish(product_cloud, home)
    return home


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def create(home, *extra):
    return ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", *extra))


def one_line_refusal(result, *needles):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(n in lines[0] for n in needles), lines[0]


def inventory(cloud, rg):
    return sorted((r.name, (r.tags or {}).get(TAG_ID)) for r in cloud.resources.resources.list_by_resource_group(rg))


def test_each_cluster_has_its_own_identity_on_every_resource(product_cloud, home):
    create(home, "--ssh-source", "203.0.113.1")
    cid = json.loads((home / "clusters" / "flower" / "state.json").read_text())["cluster_id"]
    assert len(cid) == 36
    assert product_cloud.resources.resource_groups.get("flower-rg").tags[TAG_ID] == cid
    tagged = {r.name: (r.tags or {}).get(TAG_ID) for r in product_cloud.resources.resources.list_by_resource_group(
        "flower-rg") if r.type != "Microsoft.Compute/disks"}
    assert set(tagged.values()) == {cid} and len(tagged) == 8  # vnet, nsg, 2x (ip, nic, vm)


def test_second_operator_with_the_same_name_adopts_nothing_and_changes_nothing(product_cloud, home, home_b):
    cloud = product_cloud
    create(home, "--ssh-source", "203.0.113.1")
    before = inventory(cloud, "flower-rg")
    since = time.time()
    refused = flwrazure(home_b, "create-cluster", "--cloud", "local", "--clients", "1", "--ssh-source",
                        "198.51.100.2")
    one_line_refusal(refused, "resource group flower-rg holds flwrazure cluster flower of another user",
                     "choose another --cluster")
    shared = flwrazure(home_b, "create-cluster", "--cloud", "local", "--clients", "1", "--ssh-source",
                       "198.51.100.2", "--use-existing-group")
    one_line_refusal(shared, "already exists in flower-rg and belongs to flwrazure cluster flower of another user")
    assert cloud.writes(since) == [] and inventory(cloud, "flower-rg") == before
    ssh_rule = cloud.network.security_rules.get("flower-rg", "flower-nsg", "flwrazure-ssh")
    assert ssh_rule.source_address_prefix == "203.0.113.1"  # the first operator is not locked out
    assert not (home_b / "clusters" / "flower" / "state.json").exists()


def test_same_name_in_another_group_each_teardown_sees_only_its_own(product_cloud, home, home_b):
    cloud = product_cloud
    create(home)
    create(home_b, "--resource-group", "b-rg")
    theirs = inventory(cloud, "b-rg")
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)  # no "left resources"
    assert result["mode"] == "group" and not cloud.resources.resource_groups.check_existence("flower-rg")
    assert inventory(cloud, "b-rg") == theirs
    ok(flwrazure(home_b, "teardown", "--yes"))
    assert list(cloud.resources.resources.list()) == []


def test_a_cluster_sharing_a_group_is_never_deleted_by_the_other(product_cloud, home, home_b):
    cloud = product_cloud
    create(home)
    create(home_b, "--cluster", "exp", "--resource-group", "flower-rg", "--use-existing-group")
    theirs = [r for r in inventory(cloud, "flower-rg") if r[0].startswith("exp-")]
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)
    assert result["mode"] == "tagged" and cloud.resources.resource_groups.check_existence("flower-rg")
    assert [r for r in inventory(cloud, "flower-rg") if not r[0].startswith("exp-")] == []
    assert [r for r in inventory(cloud, "flower-rg") if r[0].startswith("exp-")] == theirs
    ok(flwrazure(home_b, "teardown", "--cluster", "exp", "--yes"))
    assert inventory(cloud, "flower-rg") == []
