"""The operator's `--private-clients` checks of the cross-silo e2e (tests/e2e/test_silo_e2e.py), kept apart so the
silo test's own edits stay small (issue 25, item 2): no public IP on any client NIC, the NAT gateway on a private
subnet, SSH to a client through the server (the product's Paramiko path and `flwrazure ssh`'s OpenSSH command),
both hops' host keys pinned, and a client without the NAT gateway has no way to the mirror — until a create-cluster
re-run associates it again."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.e2e.test_flower_e2e import flwrazure, ok
from tests.helpers.cloud import clients_for

RG = "flower-rg"
# the region's package mirror as the VM's pip knows it (/etc/pip.conf), fetched from the client VM
PROBE = ("python3 -c \"import configparser,urllib.request; c=configparser.ConfigParser(); c.read('/etc/pip.conf'); "
         "urllib.request.urlopen(c['global']['index-url'], timeout=5); print('reached')\"")


def _probe(op: Path) -> subprocess.CompletedProcess:
    return flwrazure(op, "ssh", "client-1", "--", PROBE, timeout=60)


def check_layout(op: Path) -> None:
    before = time.monotonic()
    status = json.loads(ok(flwrazure(op, "status", "--json")).stdout)
    server, client = status["vms"][0], status["vms"][1]
    assert client["public_ip"] is None and client["private_ip"], status["vms"]
    assert status["network"]["layout"] == "private-clients" and status["network"]["nat_gateway"] == "flower-nat"
    fleet = next(r for r in status["rules"] if r["name"] == "flwrazure-fleet")
    assert fleet["sources"] == [status["network"]["subnet"]], fleet  # silos not admitted yet: the subnet only
    cloud = clients_for(None, info=json.loads((op / "local" / "server.json").read_text()))
    for nic in cloud.network.network_interfaces.list(RG):
        config = nic.ip_configurations[0]
        assert (config.public_ip_address is None) == nic.name.startswith("flower-client-"), nic.name
    subnet = cloud.network.subnets.get(RG, "flower-vnet", "default")
    assert subnet.nat_gateway.id.lower().endswith("/natgateways/flower-nat") and subnet.default_outbound_access is False

    # SSH through the server: the product's connection, and the OpenSSH command `flwrazure ssh client-1` execs
    assert ok(flwrazure(op, "ssh", "client-1", "--", "hostname")).stdout.strip() == "flower-client-1"
    from flwrazure.remote.shell import ssh_argv

    cdir = op / "clusters" / "flower"
    argv = ssh_argv(client["private_ip"], "azureuser", str(cdir / "id_ed25519"), cdir / "known_hosts",
                    server["public_ip"])
    got = subprocess.run([*argv, "hostname"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert got.returncode == 0 and got.stdout.strip() == "flower-client-1", got.stderr
    pinned = {line.split()[0] for line in (cdir / "known_hosts").read_text().splitlines() if line.strip()}
    assert {server["public_ip"], client["private_ip"]} <= pinned, pinned

    # the client's way out is the NAT gateway: without it the mirror is out of reach (a forgotten NAT gateway
    # fails here as on Azure); a create-cluster re-run associates it again
    assert "reached" in ok(_probe(op)).stdout
    cloud.network.subnets.begin_create_or_update(RG, "flower-vnet", "default", {"properties": {
        "addressPrefix": subnet.address_prefix, "defaultOutboundAccess": False}}).result()
    cut = _probe(op)
    assert cut.returncode != 0 and "reached" not in cut.stdout, cut.stdout
    ok(flwrazure(op, "create-cluster", "--cloud", "local", "--clients", "1", "--flwr-version",
                 status["flwr_version"], timeout=300))
    assert "reached" in ok(_probe(op)).stdout
    print(f"\nprivate-clients checks: {time.monotonic() - before:.1f} s")
