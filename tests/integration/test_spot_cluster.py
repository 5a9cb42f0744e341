"""`--spot` clients through the real CLI and SDK on the API-only local cloud: the VM shapes, the cost estimate at the
Spot meter, an eviction shown by status and doctor, resume (and its capacity refusal), scale and re-runs."""


from tests.helpers import contract
from tests.helpers.cloud import flwrazure, until

D2S, SPOT, IP, P4 = 2 * 0.05, 2 * 0.05 * 0.2, 0.004, 5.0 / 730  # the local cloud's own price list


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def as_json(home, *args):
    return contract.documented(args[0], ok(flwrazure(home, *args, "--json")).stdout)


def vm(cloud, name):
    return cloud.compute.virtual_machines.get("flower-rg", name)


def test_spot_clients_evicted_status_doctor_resume_scale(product_cloud, home):
    cloud = product_cloud
    cloud.admin("PATCH", "config", {"time_scale": 0.01})  # the eviction's 30 s notice in 0.3 s
    made = as_json(home, "create-cluster", "--cloud", "local", "--clients", "2", "--spot", "--max-price", "0.05")
    server, client = vm(cloud, "flower-server"), vm(cloud, "flower-client-1")
    assert server.priority is None and server.billing_profile is None  # the server is never Spot
    assert (client.priority, client.eviction_policy, client.billing_profile.max_price) == ("Spot", "Deallocate", 0.05)
    lines = {line["what"]: line for line in made["cost"]["lines"]}
    assert lines["VM Standard_D2s_v3"]["count"] == 1 and lines["VM Standard_D2s_v3 Spot"]["count"] == 2
    assert made["cost"]["usd_per_hour"] == round(D2S + 2 * SPOT + 3 * (IP + P4), 4)
    assert [v["spot"] for v in made["vms"]] == [False, True, True]

    cloud.compute.virtual_machines.simulate_eviction("flower-rg", "flower-client-2")
    assert until(lambda: vm_state(cloud, "flower-client-2") == "PowerState/deallocated", 10)
    status = as_json(home, "status")
    assert [v["state"] for v in status["vms"]] == ["running", "running", "evicted"]
    assert status["power"] == "evicted" and not status["paused"]
    assert status["next"] == ["flwrazure resume --cluster flower"]
    assert [r["state"] for r in as_json(home, "list", "--refresh")] == ["evicted"]
    human = ok(flwrazure(home, "status"))
    assert "evicted" in human.stdout and "Evicted: Azure reclaimed the capacity of flower-client-2" in human.stdout
    assert "Spot clients: their price changes and Azure may evict them" in human.stdout
    doctor = contract.documented("doctor", flwrazure(home, "doctor", "--json").stdout)  # exit 1: checks failed
    vms = next(c for c in doctor["checks"] if c["name"] == "vms running")
    assert "flower-client-2 (evicted)" in vms["detail"] and vms["fix"] == "flwrazure resume --cluster flower"

    cloud.admin("POST", "faults", {"kind": "capacity", "path": "flower-client-2", "times": 1})
    refused = flwrazure(home, "resume")
    assert refused.returncode == 1
    said = refused.stderr.strip().splitlines()
    assert said[0].startswith("Error: virtual machine flower-client-2: Azure has no Spot capacity to start it now "
                              "(SkuNotAvailable). Next: re-run `flwrazure resume --cluster flower` later"), said
    assert "Traceback" not in refused.stderr
    resumed = as_json(home, "resume")
    assert resumed["started"] == ["flower-client-2"]
    assert as_json(home, "status")["power"] == "running"

    # a user's pause is a pause, not an eviction
    ok(flwrazure(home, "pause"))
    assert {v["state"] for v in as_json(home, "status")["vms"]} == {"deallocated"}
    ok(flwrazure(home, "resume"))

    # scale keeps the clients Spot, at the same max price
    ok(flwrazure(home, "scale", "--clients", "3"))
    grown = vm(cloud, "flower-client-3")
    assert (grown.priority, grown.billing_profile.max_price) == ("Spot", 0.05)


def vm_state(cloud, name):
    return cloud.compute.virtual_machines.instance_view("flower-rg", name).statuses[-1].code


def test_rerun_with_or_without_spot_says_what_azure_allows(product_cloud, home):
    cloud = product_cloud
    ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1"))
    again = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--spot")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "VM flower-client-1 is a regular (pay-as-you-go) VM: Azure cannot turn an existing VM into a Spot VM" \
        in again.stderr
    spotty = ("create-cluster", "--cloud", "local", "--cluster", "spotty", "--clients", "1")
    ok(flwrazure(home, *spotty, "--spot"))
    plain = flwrazure(home, *spotty)
    assert plain.returncode == 2 and "VM spotty-client-1 is a Spot VM (created with --spot)" in plain.stderr
    price = flwrazure(home, *spotty, "--spot", "--max-price", "0.1")
    assert price.returncode == 2 and "has max price -1 USD/hour" in price.stderr and "Re-run without --max-price" \
        in price.stderr
    writes = len(cloud.writes())
    ok(flwrazure(home, *spotty, "--spot"))  # converged: no change
    assert [w for w in cloud.writes()[writes:] if "virtualMachines" in w["path"]] == []


def test_preflight_counts_spot_clients_against_the_low_priority_quota(product_cloud, home):
    cloud = product_cloud
    # the family's quota fits the server only, the low-priority one one Spot client only
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"families": {"standardDSv3Family": 2},
                                                           "lowPriorityCores": 3}}})
    refused = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2", "--spot")
    assert refused.returncode == 1 and "the cluster needs 4 low-priority (Spot) vCPUs, 0 of 3 are in use" \
        in refused.stderr and "Nothing was created" in refused.stderr
    assert [w for w in cloud.writes() if "virtualMachines" in w["path"]] == []
    ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--spot"))
