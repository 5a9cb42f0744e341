"""The Control port on the API-only local cloud: 'any' is refused before the cloud is asked anything, and
open-ports closes port 9093 to the VNet where Control has a port of its own (1.21-1.34), not on 1.40+."""

import json
import time

import pytest

from tests.helpers.cloud import flwrazure
from tests.integration.test_bad_input import assert_one_line_exit_2


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def asked(cloud, since: float) -> list[str]:
    """Every request the cloud answered since then (tokens, the address echo, ARM), admin requests aside; the
    test's own token is asked for before `since` (its credential keeps it)."""
    return [f"{r['method']} {r['path']}" for r in cloud.admin("GET", f"requests?since={since}").json()["value"]]


@pytest.mark.parametrize("args", [
    ("--ssh-source", "any", "--control-source", "any"),
    ("--control-source", "203.0.113.7,any"),
    ("--ssh-source", "203.0.113.9", "--control-source", "ANY", "--flwr-version", "1.34.0", "--insecure")])
def test_up_refuses_public_control_before_asking_the_cloud(product_cloud, home, args):
    product_cloud.token()
    since = time.time()
    result = flwrazure(home, "up", "--cloud", "local", *args)
    assert_one_line_exit_2(result, "--control-source any would let anyone")
    assert "run code on every VM" in result.stderr and "--allow-public-control" in result.stderr
    assert asked(product_cloud, since) == []
    assert list(product_cloud.resources.resource_groups.list()) == []
    assert not (home / "clusters").exists()


def test_up_control_source_me_stands_alone(product_cloud, home):
    product_cloud.token()
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, "up", "--cloud", "local", "--control-source", "me,203.0.113.7"),
                           "stands alone")
    assert asked(product_cloud, since) == []


def rules_of(cloud) -> dict:
    return {r.name: r.as_dict()["properties"] for r in cloud.network.security_rules.list("flower-rg", "flower-nsg")}


@pytest.mark.parametrize("version", ["1.34.0", "1.42.0"])
def test_open_ports_denies_the_vnet_on_a_control_port_of_its_own(product_cloud, home, version):
    cloud = product_cloud
    created = json.loads(ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2",
                                      "--flwr-version", version, "--ssh-source", "203.0.113.9", "--json")).stdout)
    server_private = created["vms"][0]["private_ip"]
    # 'any' for Control: refused (nothing written), then allowed with the flag (and warned about)
    cloud.token()
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, "open-ports", "--source", "any"), "--source any would let anyone")
    assert asked(cloud, since) == []
    opened = ok(flwrazure(home, "open-ports", "--source", "any", "--allow-public-control"))
    assert "run code on every VM" in opened.stderr
    ok(flwrazure(home, "open-ports", "--source", "198.51.100.7"))
    found = rules_of(cloud)
    if version == "1.42.0":  # one port for Fleet and Control: the client VMs must reach it
        assert set(found) == {"flwrazure-ssh", "flwrazure-fleet", "flwrazure-control"}
    else:
        deny = found["flwrazure-control-vnet-deny"]
        assert (deny["access"], deny["direction"], deny["protocol"], deny["priority"], deny["sourceAddressPrefix"],
                deny["destinationAddressPrefix"], deny["destinationPortRange"]) == \
            ("Deny", "Inbound", "Tcp", 4000, "VirtualNetwork", server_private, "9093")
        allows = [p["priority"] for n, p in found.items() if p["access"] == "Allow"]
        assert max(allows) < 4000 and found["flwrazure-control"]["sourceAddressPrefix"] == "198.51.100.7"
    # converged: re-running writes nothing
    since = time.time()
    again = ok(flwrazure(home, "open-ports", "--source", "198.51.100.7"))
    assert "no changes" in again.stderr + again.stdout and product_cloud.writes(since) == []
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [(r["name"], r["access"]) for r in status["rules"]] == [
        ("flwrazure-ssh", "Allow"), ("flwrazure-fleet", "Allow"), ("flwrazure-control", "Allow"),
        *([("flwrazure-control-vnet-deny", "Deny")] if version == "1.34.0" else [])]
    human = ok(flwrazure(home, "status"))
    assert ("flwrazure-control-vnet-deny" in human.stdout and "Deny" in human.stdout) == (version == "1.34.0")
    assert ("client VMs reach the Control API" in human.stdout) == (version == "1.42.0")  # the report: stdout
    # --close removes the Allow rules and keeps the Deny (it opens nothing; without it the VNet reaches 9093)
    closed = ok(flwrazure(home, "open-ports", "--close"))
    assert sorted(rules_of(cloud)) == sorted(["flwrazure-ssh"] + (["flwrazure-control-vnet-deny"]
                                                                 if version == "1.34.0" else []))
    assert ("kept flwrazure-control-vnet-deny" in closed.stderr + closed.stdout) == (version == "1.34.0")
