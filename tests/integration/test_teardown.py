"""teardown and status never touch, or misreport, what is not the cluster's: the real CLI against a local cloud
(API only), the real SDK over HTTPS."""

import json

from tests.helpers.cloud import flwrazure


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def said(result) -> str:
    """What the command told the user (messages go to stderr, data to stdout), on one line."""
    return " ".join((result.stdout + result.stderr).split())


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


def test_a_group_created_again_by_someone_else_is_kept(product_cloud, home):
    """The record says flwrazure created the group; the group there now was deleted and created again by someone
    else (other tags): it is not deleted as a whole."""
    cloud = product_cloud
    create(home)
    cloud.resources.resource_groups.begin_delete("flower-rg").result()
    cloud.resources.resource_groups.create_or_update("flower-rg", {"location": "eastus", "tags": {"team": "x"}})
    assert "no longer carries the tags" in said(ok(flwrazure(home, "teardown", "--yes")))
    assert cloud.resources.resource_groups.get("flower-rg").tags == {"team": "x"}
    assert not (home / "clusters" / "flower" / "state.json").exists()


def test_a_resource_added_while_teardown_asks_keeps_the_group(product_cloud, home):
    """The group is listed again after the prompt, right before its DELETE: what appeared meanwhile is not the
    cluster's, so only the cluster's own resources go."""
    import os
    import subprocess
    import sys
    import time

    cloud = product_cloud
    create(home)
    import pty

    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05", "COLUMNS": "200"}
    terminal, tty = pty.openpty()  # a user at a terminal answers the prompt (without one, teardown asks for --yes)
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", "teardown"], env=env, stdin=tty,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(tty)
    seen, deadline = b"", time.monotonic() + 60
    while b"Delete the resources of cluster flower?" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        seen += os.read(proc.stderr.fileno(), 4096)
    cloud.network.network_security_groups.begin_create_or_update(
        "flower-rg", "someone-elses", {"location": "eastus"}).result()
    os.write(terminal, b"y\n")
    out, err = proc.communicate(timeout=120)
    os.close(terminal)
    err = seen + err
    told = " ".join((out + err).decode().split())
    assert proc.returncode == 0, told
    assert "since the prompt" in told and "someone-elses" in told
    assert cloud.resources.resource_groups.check_existence("flower-rg") is True
    assert names_in(cloud, "flower-rg") == ["someone-elses"]


def test_second_teardown_succeeds_and_purge_works_after_a_teardown(product_cloud, home):
    create(home)
    ok(flwrazure(home, "teardown", "--yes"))
    again = ok(flwrazure(home, "teardown", "--yes"))
    assert "torn down already: nothing is left" in said(again)
    assert (home / "clusters" / "flower" / "id_ed25519").exists()
    ok(flwrazure(home, "teardown", "--yes", "--purge"))
    assert not (home / "clusters" / "flower").exists()
    third = ok(flwrazure(home, "teardown", "--yes", "--json"))
    assert json.loads(third.stdout)["deleted"] == []


def test_no_wait_keeps_the_record_until_status_or_teardown_sees_the_group_gone(product_cloud, home):
    import time

    cloud = product_cloud
    create(home, "--cluster", "a")
    create(home, "--cluster", "b")
    cloud.admin("PATCH", "config", {"latency_by_type": {"Microsoft.Resources/resourceGroups": 10}})
    for c in ("a", "b"):
        result = json.loads(ok(flwrazure(home, "teardown", "--cluster", c, "--yes", "--no-wait", "--json")).stdout)
        assert result["waited"] is False
        assert (home / "clusters" / c / "state.json").exists()
    going = json.loads(ok(flwrazure(home, "status", "--cluster", "a", "--json")).stdout)
    assert going["power"] == "being deleted" and (home / "clusters" / "a" / "state.json").exists()
    # b: a later teardown waits for the deletion under way, then forgets the cluster
    ok(flwrazure(home, "teardown", "--cluster", "b", "--yes"))
    assert not (home / "clusters" / "b" / "state.json").exists()
    assert cloud.resources.resource_groups.check_existence("b-rg") is False
    # a: once its group is gone, status finishes the check and forgets it
    deadline = time.monotonic() + 30
    while cloud.resources.resource_groups.check_existence("a-rg"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    gone = ok(flwrazure(home, "status", "--cluster", "a"))
    assert "torn down and forgotten" in said(gone)
    assert not (home / "clusters" / "a" / "state.json").exists()


def test_a_cluster_of_the_same_home_is_not_called_another_user_s(product_cloud, home):
    """Two clusters of one FLWRAZURE_HOME may share a group: the second is told to pass --use-existing-group, and the
    first one's teardown names what it keeps as the other cluster's."""
    create(home, "--cluster", "a", "--resource-group", "shared-rg")
    refused = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--cluster", "b",
                        "--resource-group", "shared-rg")
    line = said(refused)
    assert refused.returncode == 2 and "another user" not in line
    assert "created for cluster a (recorded here)" in line and "--use-existing-group" in line
    create(home, "--cluster", "b", "--resource-group", "shared-rg", "--use-existing-group")
    told = said(ok(flwrazure(home, "teardown", "--cluster", "a", "--yes")))
    assert "b-server of cluster b" in told and "another user" not in told
    assert names_in(product_cloud, "shared-rg") == ["b-client-1", "b-client-1-ip", "b-client-1-nic", "b-nsg",
                                                    "b-server", "b-server-ip", "b-server-nic", "b-vnet"]


def test_a_shared_group_left_empty_is_named_and_kept(product_cloud, home):
    """Cluster a made the group, b joined it; a's teardown keeps the group (b is in it), b's leaves it empty: b did
    not create it, so it is kept, and the output names it."""
    cloud = product_cloud
    create(home, "--cluster", "a", "--resource-group", "shared-rg")
    create(home, "--cluster", "b", "--resource-group", "shared-rg", "--use-existing-group")
    ok(flwrazure(home, "teardown", "--cluster", "a", "--yes"))
    last = said(ok(flwrazure(home, "teardown", "--cluster", "b", "--yes")))
    assert "resource group shared-rg is empty now and was kept (it was created for cluster a)" in last.lower()
    assert "az group delete --name shared-rg" in last
    assert cloud.resources.resource_groups.check_existence("shared-rg") is True


def test_status_of_a_cluster_whose_group_was_deleted_outside(product_cloud, home):
    cloud = product_cloud
    create(home)
    cloud.resources.resource_groups.begin_delete("flower-rg").result()
    result = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert result["resource_group_exists"] is False and result["cost"]["usd_per_hour"] == 0
    assert result["next"][0] == "flwrazure teardown --cluster flower"
    assert result["next"][1].startswith("flwrazure create-cluster --cluster flower --cloud local")
    told = said(ok(flwrazure(home, "status")))
    assert "resource group flower-rg no longer exists" in told and "$0.0000/hour" in told
    assert (home / "clusters" / "flower" / "state.json").exists()  # said, not forgotten: teardown forgets it
    ok(flwrazure(home, "teardown", "--yes"))
    assert not (home / "clusters" / "flower" / "state.json").exists()


def test_a_group_created_again_right_after_its_deletion_is_not_a_failed_deletion(product_cloud, home, monkeypatch):
    """Azure's operation says the deletion succeeded while a read of the group shows one that is not Deleting: a
    group of that name created in between (or a stale read). Re-read, not 'the deletion failed'. Someone creates the
    group again the moment the deletion ends (in the local cloud's own process, so the timing is exact)."""
    from flwrazure.localcloud.arm import groups

    cloud = product_cloud
    create(home)
    cloud.admin("PATCH", "config", {"latency_by_type": {"Microsoft.Resources/resourceGroups": 0.5},
                                    "lro_retry_after": 3})
    purge = groups.purge_group

    def purge_then_someone_creates_it(ctx, rg, blocked=None):
        purge(ctx, rg, blocked)
        with ctx.store.lock:
            ctx.store.groups[rg.lower()] = {"body": groups._rg_body(ctx, rg, "eastus", {"team": "x"}), "meta": {}}

    monkeypatch.setattr(groups, "purge_group", purge_then_someone_creates_it)
    done = flwrazure(home, "teardown", "--yes")
    told = said(done)
    assert done.returncode == 0, told
    assert "exists again" in told and "deletion failed" not in told
    assert cloud.resources.resource_groups.get("flower-rg").tags == {"team": "x"}
    assert not (home / "clusters" / "flower" / "state.json").exists()
