"""Least privilege inside the VNet, on sandbox VMs: a cluster on Flower 1.34 (Control on a port of its own, 9093)
brought up with `up --ssh-source any`. The Control rule admits only the operator's detected address (not SSH's
'any'), and a client VM, which Azure's AllowVnetInBound would let in, gets no answer from the server's private
address on 9093 (a Deny drops) while 9092 answers. Needs root and systemd-nspawn (run under flock /tmp/fz-vm.lock)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.test_flower_e2e import FIRST_BOOT, flwr_tools, flwrazure, ok, tear_down
from tests.helpers.cloud import clients_for, until
from tests.helpers.hosts import PROBE, port_state, run

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")
VERSION = "1.34.0"
OPERATOR = "198.18.0.1"  # where this machine's packets to the VMs' public addresses come from


def _prefill(home: Path) -> None:
    wheels, _ = flwr_tools(VERSION)
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.iterdir():
        os.link(wheel, house / wheel.name) if wheel.stat().st_dev == house.stat().st_dev else \
            (house / wheel.name).write_bytes(wheel.read_bytes())


@pytest.mark.timeout(900)
def test_client_vm_cannot_reach_a_separate_control_port(home):
    _prefill(home)
    key = str(home / "clusters" / "flower" / "id_ed25519")
    try:
        ok(flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT))
        up = json.loads(ok(flwrazure(home, "up", "--cloud", "local", "--clients", "1", "--flwr-version", VERSION,
                                     "--insecure", "--ssh-source", "any", "--json", timeout=900)).stdout)
        assert up["supernodes_online"] == 1, up
        rules = {r["name"]: r for r in up["rules"]}
        assert rules["flwrazure-control"]["sources"] == [OPERATOR]  # not SSH's 'any'
        assert (rules["flwrazure-control-vnet-deny"]["priority"], rules["flwrazure-control-vnet-deny"]["access"]) \
            == (4000, "Deny")
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        server, client = status["vms"][0], status["vms"][1]
        assert next(r for r in status["rules"] if r["name"] == "flwrazure-ssh")["sources"] == ["*"]

        def from_client(port: int) -> str:  # a new TCP connection from the client VM to the server's private IP
            return run(client["public_ip"], PROBE.format(host=server["private_ip"], port=port), key=key).strip()

        assert (from_client(9093), from_client(9092)) == ("timeout", "open")
        assert port_state(server["public_ip"], 9093) == "open"  # the operator's own Allow comes first
        listening = run(server["public_ip"], "ss -ltnH", key=key)
        print(f"\nserver listening sockets (flwr {VERSION}, --insecure):\n{listening}")
        print(f"client -> server private 9091 (ServerAppIo): {from_client(9091)}")
        # what the Deny closes: without it AllowVnetInBound admits the client VM; open-ports writes it back
        cloud = clients_for(None, info=json.loads(ok(flwrazure(home, "local", "status", "--json")).stdout))
        cloud.network.security_rules.begin_delete("flower-rg", "flower-nsg", "flwrazure-control-vnet-deny").result()
        assert until(lambda: from_client(9093) == "open", 30)
        again = ok(flwrazure(home, "open-ports", "--source", OPERATOR))
        assert "added flwrazure-control-vnet-deny" in again.stderr
        assert until(lambda: from_client(9093) == "timeout", 30)
        # closing the Allow rules keeps the Deny
        ok(flwrazure(home, "open-ports", "--close"))
        assert from_client(9093) == "timeout" and port_state(server["public_ip"], 9093) == "timeout"
    finally:
        tear_down(home)
