"""A second real client: the Azure CLI (from the package registry, its own venv) manages the local cloud through the
commands `flwrazure local az` prints, and nothing it sends leaves this machine."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from flwrazure.localcloud import azcli as azsetup
from tests.helpers import azcli
from tests.helpers.cloud import clients_for, flwrazure


@pytest.fixture(scope="module")
def az_bin():
    return azcli.install()


@pytest.fixture
def daemon_cloud(home):
    """`flwrazure local up` as a user starts it (API only: no sandbox hosts), stopped with `local down`."""
    up = flwrazure(home, "local", "up", "--port", "0", "--hosts", "none", "--conflicts")
    assert up.returncode == 0, up.stderr
    try:
        info = json.loads(flwrazure(home, "local", "status", "--json").stdout)
        yield clients_for(None, info=info)
    finally:
        assert flwrazure(home, "local", "down").returncode == 0


def test_azure_cli_manages_the_local_cloud_and_sends_nothing_elsewhere(daemon_cloud, home, az_bin):
    cloud = daemon_cloud
    cloud.admin("PATCH", "config", {"lro_retry_after": 1})  # az polls as Retry-After says (its default: 30 s)
    created = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1")
    assert created.returncode == 0, created.stderr
    printed = flwrazure(home, "local", "az")
    assert printed.returncode == 0, printed.stderr
    assert cloud.info["client_secret"] not in printed.stdout  # nor on az's command line: az reads a 0600 file
    config_dir = home / "local" / "az"
    azcli.seed_version_check(az_bin, config_dir)
    tripwire = azcli.Tripwire()
    base_env = {**os.environ, "PATH": f"{az_bin}{os.pathsep}{os.environ['PATH']}", **tripwire.env}
    env = {**base_env, **azsetup.environment(cloud.info, str(config_dir))}
    for key, value in azsetup.environment(cloud.info, str(config_dir)).items():
        assert f"export {key}=" in printed.stdout and value in printed.stdout
    since = time.time()
    try:
        setup = subprocess.run(["bash", "-ec", printed.stdout], env=base_env, capture_output=True, text=True,
                               timeout=120, stdin=subprocess.DEVNULL)
        assert setup.returncode == 0, setup.stderr

        def az(*args: str, timeout: float = 120):
            result = subprocess.run(["az", *args, "--only-show-errors"], env=env, capture_output=True, text=True,
                                    timeout=timeout, stdin=subprocess.DEVNULL)
            assert result.returncode == 0, f"az {' '.join(args)}: {result.stderr}"
            return json.loads(result.stdout) if result.stdout.strip() else None

        assert az("account", "show")["id"] == cloud.sub
        assert [g["name"] for g in az("group", "list")] == ["flower-rg"]
        vms = {v["name"]: v for v in az("vm", "list", "-d")}
        assert sorted(vms) == ["flower-client-1", "flower-server"]
        assert all(v["powerState"] == "VM running" and v["publicIps"] and v["privateIps"] for v in vms.values())
        rules = az("network", "nsg", "rule", "list", "-g", "flower-rg", "--nsg-name", "flower-nsg")
        assert [(r["name"], r["destinationPortRange"]) for r in rules] == [("flwrazure-ssh", "22")]

        def power(vm: str) -> str:
            view = cloud.compute.virtual_machines.instance_view("flower-rg", vm).as_dict()
            return next(s["code"] for s in view["statuses"] if s["code"].startswith("PowerState/"))

        az("vm", "deallocate", "-g", "flower-rg", "-n", "flower-client-1")
        assert power("flower-client-1") == "PowerState/deallocated"
        az("vm", "start", "-g", "flower-rg", "-n", "flower-client-1")
        assert power("flower-client-1") == "PowerState/running"

        # Azure Policy adds an extension to the next new VM: az sees it, and `az vm list` then fails exactly as it
        # does on Azure (azure-cli issue 31910: the extension's properties.type collides with its resource type)
        cloud.admin("PATCH", "config", {"policy_extensions": ["AzurePolicyforLinux"]})
        grown = flwrazure(home, "scale", "--clients", "2")  # a client more: what scale does
        assert grown.returncode == 0, grown.stderr
        extensions = az("vm", "extension", "list", "-g", "flower-rg", "--vm-name", "flower-client-2")
        assert [(e["name"], e["publisher"], e.get("tags")) for e in extensions] == \
            [("AzurePolicyforLinux", "Microsoft.GuestConfiguration", None)]
        listed = subprocess.run(["az", "vm", "list", "--only-show-errors"], env=env, capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL)
        assert listed.returncode == 1 and "Conflict key when apply client flatten: type" in listed.stderr
        az("group", "delete", "-n", "flower-rg", "--yes")
        assert cloud.resources.resource_groups.check_existence("flower-rg") is False
    finally:
        tripwire.close()
    assert tripwire.seen == [], f"az tried to reach other hosts: {tripwire.seen}"
    log = cloud.admin("GET", f"requests?since={since}").json()["value"]
    paths = {(r["method"], r["path"].lower()) for r in log}
    assert ("GET", "/metadata/endpoints") in paths and ("GET", "/subscriptions") in paths
    assert not [r for r in log if r["status"] >= 500]
