"""create-cluster / open-ports / status / teardown against the local cloud: the real CLI, the real SDK, HTTPS."""

import json
import os
import stat
import time

import pytest

from tests.helpers.cloud import flwrazure

IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def create(home, *extra):
    return ok(flwrazure(home, "create-cluster", "--cloud", "local", *extra))


def inventory(cloud, rg="flower-rg"):
    return sorted((r.type.split("/")[-1], r.name) for r in cloud.resources.resources.list_by_resource_group(rg))


@pytest.mark.parametrize("clients", [2, 5])
def test_create_cluster_builds_the_seed_layout(product_cloud, home, clients):
    cloud = product_cloud
    result = json.loads(create(home, "--clients", str(clients), "--json").stdout)
    expected = ["flower-server"] + [f"flower-client-{i}" for i in range(1, clients + 1)]
    assert [r["vm"] for r in result["vms"]] == expected
    assert all(r["state"] == "running" and r["public_ip"] and r["private_ip"] for r in result["vms"])
    key = home / "clusters" / "flower" / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = (home / "clusters" / "flower" / "id_ed25519.pub").read_text().strip()
    group = cloud.resources.resource_groups.get("flower-rg")
    assert group.tags["flwrazure-cluster"] == "flower"
    for name in expected:
        vm = cloud.compute.virtual_machines.get("flower-rg", name).as_dict()
        props = vm["properties"]
        assert props["hardwareProfile"]["vmSize"] == "Standard_D2s_v3"
        assert {k: props["storageProfile"]["imageReference"][k] for k in IMAGE} == IMAGE
        assert props["osProfile"]["adminUsername"] == "azureuser"
        assert props["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"] == pub
        assert props["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
        assert props["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"] == "Delete"
        assert vm["tags"]["flwrazure-cluster"] == "flower"
        assert vm["tags"]["flwrazure-role"] == ("server" if name.endswith("server") else "client")
    assert all(r.tags and r.tags.get("flwrazure-cluster") == "flower"
               for r in cloud.resources.resources.list_by_resource_group("flower-rg") if r.type != "Microsoft.Compute/disks")
    ips = [cloud.network.public_ip_addresses.get("flower-rg", f"{n}-ip").as_dict() for n in expected]
    assert {ip["sku"]["name"] for ip in ips} == {"Standard"}
    # idle flows (a quiet SSH session, SuperNodes between runs) survive 30 minutes instead of Azure's default 4
    assert {ip["properties"]["idleTimeoutInMinutes"] for ip in ips} == {30}
    nsg = cloud.network.network_security_groups.get("flower-rg", "flower-nsg").as_dict()
    assert [(r["name"], r["properties"]["sourceAddressPrefix"], r["properties"]["destinationPortRange"])
            for r in nsg["properties"]["securityRules"]] == [("flwrazure-ssh", "198.18.0.1", "22")]


@pytest.mark.parametrize("size, sku, disk", [
    ("Standard_A2_v2", "server-gen1", "StandardSSD_LRS"),     # Gen1 only, no premium storage
    ("Standard_D2_v3", "server-gen1", "StandardSSD_LRS"),     # Gen1 only, no premium storage
    ("Standard_D1_v2", "server-gen1", "StandardSSD_LRS"),
    ("Standard_D2ps_v5", "server-arm64", "Premium_LRS"),      # Arm64, Gen2
    ("Standard_D2s_v3", "server", "Premium_LRS"),             # the default: Gen2 x64, premium
])
def test_image_and_disk_follow_the_vm_size(product_cloud, home, size, sku, disk):
    """Azure refuses a Gen2 image on a Gen1-only size, an x64 image on an Arm64 size and a Premium disk on a size
    without premium storage at the VM PUT, after the network exists: create-cluster picks what the size can use."""
    result = json.loads(create(home, "--clients", "1", "--vm-size", size, "--json").stdout)
    assert [r["state"] for r in result["vms"]] == ["running", "running"]
    for name in ("flower-server", "flower-client-1"):
        props = product_cloud.compute.virtual_machines.get("flower-rg", name).as_dict()["properties"]
        assert props["storageProfile"]["imageReference"]["sku"] == sku
        assert props["storageProfile"]["osDisk"]["managedDisk"]["storageAccountType"] == disk


def test_cost_prices_the_os_disk_the_vm_gets(product_cloud, home):
    """A size without premium storage gets a Standard SSD OS disk (create-cluster's choice): the estimate prices
    an E4 Standard SSD for it, not a P4 Premium SSD; status says the same from the record."""
    made = json.loads(create(home, "--clients", "1", "--vm-size", "Standard_D2_v3", "--json").stdout)
    lines = {line["what"]: line for line in made["cost"]["lines"]}
    assert "OS disk P4" not in lines and lines["OS disk E4"]["count"] == 2
    assert lines["OS disk E4"]["usd_per_hour_each"] == round(2.4 / 730, 6)  # the local price list's E4
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [line["what"] for line in status["cost"]["lines"]][-1] == "OS disk E4"
    listed = json.loads(ok(flwrazure(home, "list", "--json")).stdout)  # from the cached prices: the same disks
    assert [c["usd_per_hour"] for c in listed] == [status["cost"]["usd_per_hour"]], (listed, status["cost"])


def test_rerun_create_and_open_ports_write_nothing(product_cloud, home):
    cloud = product_cloud
    create(home, "--clients", "2", "--ssh-source", "203.0.113.9")
    ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
    since = time.time()
    again = json.loads(create(home, "--clients", "2", "--ssh-source", "203.0.113.9", "--json").stdout)
    ports = json.loads(ok(flwrazure(home, "open-ports", "--source", "203.0.113.7", "--json")).stdout)
    assert ports["changes"] == [] and again["vms"] and cloud.writes(since) == []


def test_rerun_gives_public_ips_of_an_older_cluster_the_30_minute_idle_timeout(product_cloud, home):
    create(home, "--clients", "1")
    ips = product_cloud.network.public_ip_addresses
    old = ips.get("flower-rg", "flower-client-1-ip").as_dict()
    old["properties"]["idleTimeoutInMinutes"] = 4  # as a cluster made before flwrazure set it
    ips.begin_create_or_update("flower-rg", "flower-client-1-ip", old).result()
    since = time.time()
    again = json.loads(create(home, "--clients", "1", "--json").stdout)
    assert [w["path"].rsplit("/", 1)[-1] for w in product_cloud.writes(since)] == ["flower-client-1-ip"]
    assert all(r["state"] == "running" for r in again["vms"])
    assert {ips.get("flower-rg", n).as_dict()["properties"]["idleTimeoutInMinutes"]
            for n in ("flower-server-ip", "flower-client-1-ip")} == {30}
    assert ips.get("flower-rg", "flower-client-1-ip").as_dict()["tags"] == old["tags"]


@pytest.mark.parametrize("version, fleet, control", [("1.42.0", "8000", "8000"), ("1.34.0", "9092", "9093")])
def test_open_ports_exact_rules(product_cloud, home, version, fleet, control):
    cloud = product_cloud
    result = json.loads(create(home, "--clients", "3", "--flwr-version", version, "--ssh-source", "203.0.113.9",
                               "--json").stdout)
    clients = sorted(r["public_ip"] for r in result["vms"] if r["role"] == "client")
    server_private = result["vms"][0]["private_ip"]
    ok(flwrazure(home, "open-ports", "--source", "198.51.100.0/24"))
    rules = {r.name: r.as_dict()["properties"] for r in cloud.network.security_rules.list("flower-rg", "flower-nsg")}
    deny = ["flwrazure-control-vnet-deny"] if control == "9093" else []  # a Control port of its own: VNet denied
    assert set(rules) == {"flwrazure-ssh", "flwrazure-fleet", "flwrazure-control", *deny}
    summary = {name: (p["priority"], p["protocol"], p["access"], p["direction"], p["destinationPortRange"],
                      tuple(sorted(p.get("sourceAddressPrefixes") or [p["sourceAddressPrefix"]])),
                      p["destinationAddressPrefix"]) for name, p in rules.items()}
    assert summary == {
        "flwrazure-ssh": (1000, "Tcp", "Allow", "Inbound", "22", ("203.0.113.9",), "10.0.0.0/24"),
        "flwrazure-fleet": (1010, "Tcp", "Allow", "Inbound", fleet, tuple(clients), server_private),
        "flwrazure-control": (1020, "Tcp", "Allow", "Inbound", control, ("198.51.100.0/24",), server_private),
        **{name: (4000, "Tcp", "Deny", "Inbound", "9093", ("VirtualNetwork",), server_private) for name in deny}}
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["port_plan"]["fleet"] == int(fleet) and [r["name"] for r in status["rules"]] == \
        ["flwrazure-ssh", "flwrazure-fleet", "flwrazure-control", *deny]
    ok(flwrazure(home, "open-ports", "--close"))
    assert [r.name for r in cloud.network.security_rules.list("flower-rg", "flower-nsg")] == ["flwrazure-ssh", *deny]


def test_open_ports_any_warns(product_cloud, home):
    create(home, "--clients", "1")
    result = ok(flwrazure(home, "open-ports", "--source", "any", "--allow-public-control"))
    assert "open to any address" in result.stderr


def test_status_shows_power_and_addresses(product_cloud, home):
    create(home, "--clients", "1")
    product_cloud.compute.virtual_machines.begin_deallocate("flower-rg", "flower-client-1").result()
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [(v["vm"], v["state"]) for v in status["vms"]] == [("flower-server", "running"),
                                                              ("flower-client-1", "deallocated")]
    assert status["flwr_version"] and status["resource_group_exists"] is True
    human = ok(flwrazure(home, "status")).stdout
    assert "flower-client-1" in human and "deallocated" in human


def test_status_reports_running_vms_that_azure_is_updating_as_running(product_cloud, home):
    """Azure Policy / Defender extensions keep running VMs in provisioningState Updating for minutes: their
    services are up, so status must use the power state (it said "updating" and skipped them)."""
    create(home, "--clients", "1")
    product_cloud.admin("PATCH", "config", {"vm_updating": 60})
    vm = product_cloud.compute.virtual_machines.get("flower-rg", "flower-server", expand="instanceView").as_dict()
    assert vm["properties"]["provisioningState"] == "Updating"
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [(v["vm"], v["state"]) for v in status["vms"]] == [("flower-server", "running"),
                                                              ("flower-client-1", "running")]
    assert [v["provisioning"] for v in status["vms"]] == ["updating", "updating"]
    assert "running (updating)" in ok(flwrazure(home, "status")).stdout


def test_teardown_full_cluster_leaves_nothing(product_cloud, home):
    cloud = product_cloud
    create(home, "--clients", "2")
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)
    assert result["mode"] == "group"
    assert list(cloud.resources.resources.list()) == []
    assert cloud.resources.resource_groups.check_existence("flower-rg") is False
    assert not (home / "clusters" / "flower" / "state.json").exists()
    assert (home / "clusters" / "flower" / "id_ed25519").exists()  # keys kept without --purge
    assert flwrazure(home, "status").returncode == 2


def test_teardown_partial_and_already_gone(product_cloud, home):
    cloud = product_cloud
    cloud.admin("POST", "faults", {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines",
                                   "method": "PUT", "times": -1, "code": "AllocationFailed"})
    failed = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2")
    assert failed.returncode == 1 and "AllocationFailed" in failed.stderr
    cloud.admin("DELETE", "faults")
    cloud.network.network_security_groups.begin_create_or_update(  # someone else's resource in our group
        "flower-rg", "not-ours", {"location": "eastus"}).result()
    cloud.compute.virtual_machines.begin_delete("flower-rg", "flower-client-1").result()  # already gone
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--purge", "--json")).stdout)
    assert result["mode"] == "tagged" and result["kept_foreign"] == [
        f"/subscriptions/{cloud.sub}/resourceGroups/flower-rg/providers/Microsoft.Network/networkSecurityGroups/not-ours"]
    assert all(i.startswith(f"/subscriptions/{cloud.sub}/resourceGroups/flower-rg/providers/") for i in result["deleted"])
    assert "flower-server" in {i.rsplit("/", 1)[-1] for i in result["deleted"]}
    assert inventory(cloud) == [("networkSecurityGroups", "not-ours")]
    assert not (home / "clusters" / "flower").exists()


def test_teardown_asks_and_refuses_without_yes(product_cloud, home):
    create(home, "--clients", "1")
    result = flwrazure(home, "teardown")
    assert result.returncode != 0 and product_cloud.resources.resource_groups.check_existence("flower-rg")


def test_existing_group_is_refused_then_used_but_never_deleted(product_cloud, home):
    cloud = product_cloud
    cloud.resources.resource_groups.create_or_update("shared-rg", {"location": "eastus"})
    refused = flwrazure(home, "create-cluster", "--cloud", "local", "--resource-group", "shared-rg")
    assert refused.returncode == 2 and "--use-existing-group" in refused.stderr
    assert inventory(cloud, "shared-rg") == []
    create(home, "--resource-group", "shared-rg", "--use-existing-group", "--clients", "1")
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)
    assert result["mode"] == "tagged"
    assert cloud.resources.resource_groups.check_existence("shared-rg") is True
    assert inventory(cloud, "shared-rg") == []


def test_quota_and_sku_preflight_create_nothing(product_cloud, home):
    cloud = product_cloud
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"by_location": {"eastus": {"cores": 4}}}}})
    since = time.time()
    result = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2")
    assert result.returncode == 1
    assert "needs 6 total regional vCPUs, 0 of 4 are in use" in result.stderr
    sku = flwrazure(home, "create-cluster", "--cloud", "local", "--vm-size", "Standard_NC6s_v3")
    assert sku.returncode == 2 and "not available to this subscription" in sku.stderr
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"PublicIPAddresses": 2,
                                                            "by_location": {"eastus": {"cores": 100}}}}})
    ips = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2")
    assert ips.returncode == 1 and "public IP quota" in ips.stderr
    assert cloud.writes(since) == [] and list(cloud.resources.resource_groups.list()) == []
    assert not (home / "clusters" / "flower").exists()


def test_throttling_and_server_error_storm_is_ridden_out(product_cloud, home):
    cloud = product_cloud
    cloud.admin("POST", "faults", [
        {"kind": "http", "status": 429, "retry_after": 1, "method": "PUT", "times": 4},  # ARM sends Retry-After
        {"kind": "http", "status": 503, "method": "GET", "times": 3},
        {"kind": "http", "status": 500, "method": "PUT", "path": "virtualMachines", "times": 2}])
    result = json.loads(create(home, "--clients", "3", "--json").stdout)
    assert all(r["state"] == "running" for r in result["vms"])
    statuses = [r["status"] for r in cloud.admin("GET", "requests").json()["value"]]
    assert statuses.count(429) == 4 and statuses.count(503) == 3 and statuses.count(500) == 2


def test_failed_vm_names_resource_code_and_next_step_then_rerun_converges(product_cloud, home):
    cloud = product_cloud
    cloud.admin("POST", "faults", {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines",
                                   "method": "PUT", "skip": 1, "times": 1, "code": "AllocationFailed",
                                   "message": "Allocation failed. We do not have sufficient capacity."})
    failed = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert "virtual machine flower-" in line and "(AllocationFailed)" in line and "Next:" in line
    since = time.time()
    result = json.loads(create(home, "--clients", "2", "--json").stdout)
    assert all(r["state"] == "running" for r in result["vms"])
    assert len([w for w in cloud.writes(since) if w["method"] == "PUT"]) == 1


@pytest.mark.parametrize("delay", [0.6, 1.2, 2.0])
def test_killed_create_cluster_converges_on_rerun(product_cloud, home, delay):
    import signal
    import subprocess
    import sys

    cloud = product_cloud
    cloud.admin("PATCH", "config", {"latency": 0.4})
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", "create-cluster", "--cloud", "local", "--clients",
                             "3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = json.loads(create(home, "--clients", "3", "--json").stdout)
    assert [r["state"] for r in result["vms"]] == ["running"] * 4
    since = time.time()
    assert json.loads(create(home, "--clients", "3", "--json").stdout)["vms"]
    assert cloud.writes(since) == []
    ok(flwrazure(home, "teardown", "--yes"))
    assert list(cloud.resources.resources.list()) == []


def test_teardown_no_wait_returns_early_and_the_group_goes(product_cloud, home):
    cloud = product_cloud
    create(home, "--clients", "1")
    cloud.admin("PATCH", "config", {"latency": 1.0})
    result = json.loads(ok(flwrazure(home, "teardown", "--yes", "--no-wait", "--json")).stdout)
    assert result["waited"] is False
    assert cloud.resources.resource_groups.get("flower-rg").properties.provisioning_state == "Deleting"
    recreate = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--json")  # waits it out
    assert recreate.returncode == 0, recreate.stderr
    assert json.loads(recreate.stdout)["vms"][0]["state"] == "running"
