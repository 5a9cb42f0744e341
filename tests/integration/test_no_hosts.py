"""A local cloud without sandbox hosts: its VMs are API records, its public range (198.18.0.0/15) is not on this
machine, so a packet sent there would leave by the default route. `start` and `up` must refuse at once, with one
line, before anything is created or sent. Counted on real packets with an iptables rule where the machine allows."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

from tests.helpers.cloud import flwrazure


@pytest.fixture
def counter():
    """Packets the test's commands send to 198.18.0.0/15, by any way: dropped, so none can leave, and counted. The
    commands run with a group id of their own that the rule matches (iptables' owner match), so what other tests
    send meanwhile (pytest-xdist runs them side by side, a local cloud with sandbox VMs among them) is not counted,
    and a command cannot hide a packet on another local cloud's bridge."""
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        yield None
        return
    gid = 3_000_000 + secrets.randbelow(1_000_000)
    tag = f"flwrazure-test-{gid}"
    rule = ["OUTPUT", "-d", "198.18.0.0/15", "-m", "owner", "--gid-owner", str(gid), "-m", "comment", "--comment",
            tag, "-j", "DROP"]
    subprocess.run(["iptables", "-w", "-I", *rule], check=True)

    def packets() -> int:
        out = subprocess.run(["iptables", "-w", "-L", "OUTPUT", "-v", "-x", "-n"], capture_output=True,
                             text=True, check=True).stdout
        return sum(int(line.split()[0]) for line in out.splitlines() if tag in line)

    try:
        yield SimpleNamespace(gid=gid, packets=packets)
    finally:
        subprocess.run(["iptables", "-w", "-D", *rule], check=True)


def _one_line_exit_2(result, started: float) -> str:
    assert result.returncode == 2, result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert time.monotonic() - started < 5
    return lines[0]


def test_up_and_start_refuse_without_sandbox_hosts(home, product_cloud, counter):
    assert product_cloud.info["hosts"] == "none"
    gid = counter.gid if counter else None
    t = time.monotonic()
    line = _one_line_exit_2(flwrazure(home, "up", "--cloud", "local", "--clients", "1", "--ssh-source",
                                      "198.18.0.1", group=gid), t)
    assert "without sandbox VMs" in line and "flwrazure local prepare" in line, line
    assert list(product_cloud.resources.resource_groups.list()) == []  # nothing created
    created = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--ssh-source", "198.18.0.1",
                        group=gid)
    assert created.returncode == 0, created.stderr  # the API works without hosts
    t = time.monotonic()
    _one_line_exit_2(flwrazure(home, "start", group=gid), t)
    if counter is not None:
        assert counter.packets() == 0  # not one packet towards the public range
