"""Registering many SuperNode keys on a small server VM: the product's registration keeps within the VM's memory.
Many synthetic keys on one 1 GiB server (Standard_B1s) stand in for a hundred client VMs. Needs root."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.test_flower_e2e import FIRST_BOOT, flwr_tools, flwrazure, ok, tear_down

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")
KEYS = 40


def _memory_groups(home: Path) -> list[Path]:
    from flwrazure.localcloud.hosts import cgroups
    from flwrazure.localcloud.hosts import plumbing as pl

    return cgroups.leftovers(pl.Names(home / "local").tag)


@pytest.mark.timeout(900)
def test_registering_many_supernodes_on_a_1_gib_server(home, tmp_path):
    from flwrazure.plan.services import Layout
    from flwrazure.remote import flwradmin, ssh
    from flwrazure.workstation import certs

    wheels, _ = flwr_tools("1.42.0")
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.iterdir():
        (house / wheel.name).write_bytes(wheel.read_bytes())
    try:
        ok(flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT))
        ok(flwrazure(home, "up", "--cloud", "local", "--clients", "1", "--flwr-version", "1.42.0",
                     "--vm-size", "Standard_B1s", "--ssh-source", "198.18.0.1", timeout=900))
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        server = status["vms"][0]
        keys = {f"synthetic-{i}": certs.ensure_supernode_key(tmp_path / f"k{i}.key")[1]
                for i in range(KEYS)}
        groups = [g for g in _memory_groups(home) if (g / "memory.max_usage_in_bytes").exists()]
        for g in groups:
            (g / "memory.max_usage_in_bytes").write_text("0")  # the peak from here on
        cdir = home / "clusters" / "flower"
        conn = ssh.connect(server["public_ip"], "azureuser", str(cdir / "id_ed25519"), cdir / "known_hosts")
        try:
            adm = flwradmin.setup(conn, Layout("/home/azureuser"), "1.42.0", 8000, True)
            started = time.monotonic()
            nodes = flwradmin.register(conn, adm, keys)  # the product's default concurrency
            took = time.monotonic() - started
            assert sorted(nodes) == sorted(keys) and all(n.isdigit() for n in nodes.values()), nodes
            listed = flwradmin.nodes(conn, adm) or []
            assert len(listed) >= KEYS, len(listed)
        finally:
            conn.close()
        peak = max(int((g / "memory.max_usage_in_bytes").read_text()) for g in groups) if groups else 0
        print(f"\n{KEYS} SuperNode keys registered on a 1 GiB server VM in {took:.1f} s; "
              f"peak VM memory {peak / 2**20:.0f} MiB")
        assert not groups or peak < 2**30
    finally:
        tear_down(home)
