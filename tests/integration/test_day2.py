"""Day-2 commands on the local cloud with API-only VMs (hosts none): the ARM side of scale, pause/resume and cost,
through the real CLI and the real SDK over HTTPS. Their SSH/Flower side runs in tests/e2e/test_day2_e2e.py."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.cloud import flwrazure

D2S, IP, P4 = 2 * 0.05, 0.004, 5.0 / 730  # the local cloud's own price list (catalog "prices")


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def create(home, clients, *extra):
    return json.loads(ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", str(clients), "--json",
                                   *extra)).stdout)


def names(cloud, rg="flower-rg"):
    return sorted((r.type.split("/")[-1], r.name) for r in cloud.resources.resources.list_by_resource_group(rg))


def fleet_sources(cloud):
    p = cloud.network.security_rules.get("flower-rg", "flower-nsg", "flwrazure-fleet").as_dict()["properties"]
    return sorted(p.get("sourceAddressPrefixes") or [p["sourceAddressPrefix"]])


def client_ips(cloud, n):
    return sorted(cloud.network.public_ip_addresses.get("flower-rg", f"flower-client-{i}-ip").ip_address
                  for i in range(1, n + 1))


def test_cost_from_the_local_price_list_then_cache_then_nothing(product_cloud, home):
    cloud = product_cloud
    created = create(home, 2)
    est = created["cost"]
    assert est["usd_per_hour"] == round(3 * (D2S + IP + P4), 4) and est["usd_per_hour_paused"] == round(3 * (IP + P4), 4)
    assert "local cloud's own price list" in est["source"] and est["missing"] == []
    human = ok(flwrazure(home, "status")).stderr
    assert "Estimated cost: $" in human and "local cloud" in human
    # offline: the API does not answer -> the last answer, cached, says so
    cloud.admin("PATCH", "config", {"catalog": {"prices": {"available": False}}})
    cached = json.loads(ok(flwrazure(home, "status", "--json")).stdout)["cost"]
    assert cached["usd_per_hour"] == est["usd_per_hour"] and cached["source"].startswith("cached list prices from")
    # no answer and no cache: no estimate at all, never an invented one
    (home / "prices" / "local.json").unlink()
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["cost"] is None
    assert "Estimated cost: unknown" in ok(flwrazure(home, "status")).stderr
    # prices change: the estimate follows the API
    cloud.admin("PATCH", "config", {"catalog": {"prices": {"available": True, "vcpu_hour": 0.2}}})
    assert json.loads(ok(flwrazure(home, "status", "--json")).stdout)["cost"]["usd_per_hour"] == \
        round(3 * (0.4 + IP + P4), 4)


def test_pause_deallocates_everything_and_resume_starts_it_again(product_cloud, home):
    cloud = product_cloud
    create(home, 2)
    ips = {p.name: p.ip_address for p in cloud.network.public_ip_addresses.list("flower-rg")}
    before = names(cloud)
    paused = json.loads(ok(flwrazure(home, "pause", "--json")).stdout)
    assert sorted(paused["deallocated"]) == ["flower-client-1", "flower-client-2", "flower-server"]
    assert paused["cost"]["usd_per_hour_paused"] == round(3 * (IP + P4), 4)
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["power"] == "paused" and status["paused"] and [v["state"] for v in status["vms"]] == \
        ["deallocated"] * 3
    assert status["next"] == "flwrazure resume --cluster flower"
    human = ok(flwrazure(home, "status"))
    assert "Paused" in human.stderr and "flwrazure resume --cluster flower" in human.stderr
    assert "still billed: public IPs, OS disks" in human.stderr
    # kept: static IPs (same addresses), disks, NICs, NSG and its rules
    assert names(cloud) == before
    assert {p.name: p.ip_address for p in cloud.network.public_ip_addresses.list("flower-rg")} == ips
    # re-running pause changes nothing; scale waits for resume
    since = time.time()
    again = json.loads(ok(flwrazure(home, "pause", "--json")).stdout)
    assert again["deallocated"] == [] and len(again["already"]) == 3 and cloud.writes(since) == []
    refused = flwrazure(home, "scale", "--clients", "3")
    assert refused.returncode == 2 and "flwrazure resume" in refused.stderr and cloud.writes(since) == []
    resumed = json.loads(ok(flwrazure(home, "resume", "--json")).stdout)
    assert sorted(resumed["started"]) == ["flower-client-1", "flower-client-2", "flower-server"]
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["power"] == "running" and not status["paused"] and status["next"] is None
    assert {p.name: p.ip_address for p in cloud.network.public_ip_addresses.list("flower-rg")} == ips


def test_scale_grows_and_shrinks_the_arm_resources_and_the_fleet_rule(product_cloud, home):
    cloud = product_cloud
    create(home, 2)
    ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
    cloud.network.network_security_groups.begin_create_or_update(  # someone else's resource in our group
        "flower-rg", "not-ours", {"location": "eastus"}).result()
    kept = {n: cloud.compute.virtual_machines.get("flower-rg", n).vm_id for n in
            ("flower-server", "flower-client-1", "flower-client-2")}
    since = time.time()
    grown = json.loads(ok(flwrazure(home, "scale", "--clients", "3", "--json")).stdout)
    assert grown["joined"] == ["flower-client-3"] and [v["state"] for v in grown["vms"]] == ["running"] * 4
    assert grown["cost"]["usd_per_hour"] == round(4 * (D2S + IP + P4), 4)
    assert fleet_sources(cloud) == client_ips(cloud, 3)
    written = {w["path"].rsplit("/", 1)[-1] for w in cloud.writes(since) if w["method"] == "PUT"}
    assert written == {"flower-client-3-ip", "flower-client-3-nic", "flower-client-3", "flwrazure-fleet"}, written
    assert {n: cloud.compute.virtual_machines.get("flower-rg", n).vm_id for n in kept} == kept  # not re-created
    # pinned host keys: the leaving VMs' lines go, the others stay
    ips = {i: cloud.network.public_ip_addresses.get("flower-rg", f"flower-client-{i}-ip").ip_address for i in (1, 2, 3)}
    known = home / "clusters" / "flower" / "known_hosts"
    known.write_text("".join(f"{ips[i]} ssh-ed25519 AAAAkey{i}\n" for i in (1, 2, 3)))
    shrunk = json.loads(ok(flwrazure(home, "scale", "--clients", "1", "--json")).stdout)
    assert shrunk["left"] == ["flower-client-3", "flower-client-2"]
    assert names(cloud) == [("disks", "flower-client-1-osdisk"), ("disks", "flower-server-osdisk"),
                            ("networkInterfaces", "flower-client-1-nic"), ("networkInterfaces", "flower-server-nic"),
                            ("networkSecurityGroups", "flower-nsg"), ("networkSecurityGroups", "not-ours"),
                            ("publicIPAddresses", "flower-client-1-ip"), ("publicIPAddresses", "flower-server-ip"),
                            ("virtualMachines", "flower-client-1"), ("virtualMachines", "flower-server"),
                            ("virtualNetworks", "flower-vnet")]
    assert fleet_sources(cloud) == [ips[1]]
    assert known.read_text() == f"{ips[1]} ssh-ed25519 AAAAkey1\n"
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [v["vm"] for v in status["vms"]] == ["flower-server", "flower-client-1"]
    since = time.time()
    again = json.loads(ok(flwrazure(home, "scale", "--clients", "1", "--json")).stdout)
    assert again["left"] == [] and again["joined"] == [] and cloud.writes(since) == []
    ok(flwrazure(home, "teardown", "--yes"))
    assert names(cloud) == [("networkSecurityGroups", "not-ours")]


def test_scale_bad_input_changes_nothing(product_cloud, home):
    create(home, 1)
    since = time.time()
    for args, words in ((["--clients", "0"], "--clients 0"), (["--clients", "101"], "1 to 100"),
                        (["--clients", "2", "--cluster", "nope"], "no cluster named 'nope'")):
        result = flwrazure(home, "scale", *args)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert product_cloud.writes(since) == []


def _killed(home, args, delay):
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("delay", [0.8, 1.6, 2.6])
def test_killed_scale_converges_on_rerun(product_cloud, home, delay):
    cloud = product_cloud
    create(home, 2)
    ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
    cloud.admin("PATCH", "config", {"latency": 0.4})
    _killed(home, ["scale", "--clients", "4"], delay)
    grown = json.loads(ok(flwrazure(home, "scale", "--clients", "4", "--json")).stdout)
    assert [v["state"] for v in grown["vms"]] == ["running"] * 5
    assert fleet_sources(cloud) == client_ips(cloud, 4)
    since = time.time()
    assert json.loads(ok(flwrazure(home, "scale", "--clients", "4", "--json")).stdout)["writes"] == 0
    assert cloud.writes(since) == []
    _killed(home, ["scale", "--clients", "1"], delay)
    ok(flwrazure(home, "scale", "--clients", "1"))
    vms = sorted(v.name for v in cloud.compute.virtual_machines.list("flower-rg"))
    assert vms == ["flower-client-1", "flower-server"]
    assert sorted(p.name for p in cloud.network.public_ip_addresses.list("flower-rg")) == \
        ["flower-client-1-ip", "flower-server-ip"]
    assert fleet_sources(cloud) == client_ips(cloud, 1)
    assert json.loads(ok(flwrazure(home, "status", "--json")).stdout)["power"] == "running"
    ok(flwrazure(home, "teardown", "--yes"))
    assert list(cloud.resources.resources.list()) == []


def test_logs_and_ssh_refuse_bad_input_before_connecting(product_cloud, home):
    """No connection is attempted (API-only VMs have no SSH): every refusal happens from the record and ARM."""
    create(home, 2)
    for args, code, words in (
            (["logs"], 2, "Flower was not started on cluster flower"),
            (["ssh", "--all"], 2, "--all needs a command"),
            (["ssh", "client-9", "--", "hostname"], 2, "no VM 'client-9' in cluster flower"),
            (["ssh", "client-1", "client-2", "--", "hostname"], 2, "one VM at a time"),
            (["ssh", "--all", "server", "--", "hostname"], 2, "give no VM name with it")):
        result = flwrazure(home, *args)
        assert result.returncode == code and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    st = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    (home / "clusters" / "flower" / "state.json").write_text(json.dumps({**st, "started": True}))
    bad = flwrazure(home, "logs", "--since", "ten minutes")
    assert bad.returncode == 2 and "is not a duration" in bad.stderr
    bad = flwrazure(home, "logs", "client-7")
    assert bad.returncode == 2 and "no VM 'client-7'" in bad.stderr
    ok(flwrazure(home, "pause"))
    paused = flwrazure(home, "ssh", "client-1", "--", "hostname")
    assert paused.returncode == 1 and "flower-client-1 is deallocated" in paused.stderr and \
        "flwrazure resume" in paused.stderr
