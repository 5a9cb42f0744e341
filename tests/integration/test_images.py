"""Local-cloud VMs boot a bare cloud image with Azure's first boot, and the product survives it: no ensurepip, a
provisioning agent behind sshd, first-boot apt holding the locks, the size's memory as a limit, arm64 API-only.
Needs root, systemd-nspawn and the VM image (CI has them; elsewhere these are skipped)."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time

import pytest

from tests.helpers import arm
from tests.helpers.hosts import KEY, login_trace, run

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = [pytest.mark.vms,
              pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")]
APT_SECONDS, LAG = 30.0, 4.0  # the VMs boot during their create now: the lock must outlast it
DEBIAN = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"}
ARM64 = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server-arm64", "version": "latest"}
VMS = {"fresh": ("Standard_D2s_v3", None), "revert": ("Standard_D2s_v3", None), "small": ("Standard_B1s", None),
       "debian": ("Standard_D2s_v3", DEBIAN), "arm": ("Standard_D2ps_v5", ARM64)}
# the small VM's user data: each cloud-config module the local cloud runs, in cloud-init's order (write_files in the
# init stage, packages in the final stage behind the first-boot apt job's lock, then the runcmd script)
USER_DATA = "#cloud-config\n" + json.dumps({
    "write_files": [{"path": "/etc/flwrazure-order", "content": "write_files\n", "permissions": "0600"}],
    "packages": ["python3-venv"],
    "runcmd": [["sh", "-c", "dpkg -s python3-venv >/dev/null && echo packages >> /etc/flwrazure-order; "
                            "echo runcmd >> /etc/flwrazure-order"]]})


@pytest.fixture(scope="module")
def ic(tmp_path_factory):
    from flwrazure.localcloud.server import LocalCloudServer
    from tests.helpers.cloud import clients_for

    server = LocalCloudServer(tmp_path_factory.mktemp("images") / "local", hosts="nspawn", boot_delay=0.5,
                              provision_lag=LAG, first_boot_apt=APT_SECONDS).start()
    try:
        cloud = clients_for(server)
        cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
        vnet = cloud.network.virtual_networks.begin_create_or_update("rg", "vnet", arm.vnet()).result()
        nsg = cloud.network.network_security_groups.begin_create_or_update("rg", "nsg", {
            "location": "eastus", "properties": {"securityRules": [{"name": "ssh", **arm.rule(100, "22", "198.18.0.1")}]}
        }).result()
        pollers, cloud.vms, traces = {}, {}, {}
        for name, (size, image) in VMS.items():
            ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", f"{name}-ip", arm.pip()).result()
            nic = cloud.network.network_interfaces.begin_create_or_update(
                "rg", f"{name}-nic", arm.nic(vnet.subnets[0].id, ip.id, nsg.id)).result()
            body = arm.vm(nic.id, size=size, image=image)
            if name == "small":
                body["properties"]["osProfile"]["customData"] = base64.b64encode(USER_DATA.encode()).decode()
            # the VM boots during its create: from the PUT on, its first boot (and first-boot apt job) runs
            cloud.vms[name] = {"public": ip.ip_address, "booted": time.monotonic()}
            pollers[name] = cloud.compute.virtual_machines.begin_create_or_update("rg", name, body)
            if name == "fresh":  # logins tried while it is being created: sshd answers before the user exists
                traces[name] = threading.Thread(target=lambda ip=ip.ip_address: cloud.vms["fresh"].update(
                    login_trace(ip)), daemon=True)
                traces[name].start()
        for name, poller in pollers.items():
            poller.result()
            cloud.vms[name]["created"] = time.monotonic()
        traces["fresh"].join(timeout=120)
        for name in ("revert", "small", "debian"):
            cloud.vms[name].update(login_trace(cloud.vms[name]["public"]))
        cloud.driver = server.app.driver
    except BaseException:
        server.stop()
        raise
    yield cloud
    server.stop()


def _conn(ic, name: str):
    from flwrazure.remote.ssh import connect

    conn = connect(ic.vms[name]["public"], "azureuser", KEY, ic.tmp_known)
    conn.open()
    return conn


@pytest.fixture(autouse=True)
def _known(ic, tmp_path):
    ic.tmp_known = tmp_path / "known_hosts"


def test_first_boot_apt_holds_the_lock_and_the_product_waits(ic):
    from flwrazure.remote import bootstrap

    fresh = ic.vms["fresh"]
    left = APT_SECONDS - (time.monotonic() - fresh["booted"])
    assert left > 3, "the VM took too long to log in to see its first-boot apt job"
    held = run(fresh["public"], "sudo -n apt-get install -y python3-venv 2>&1; echo rc=$?")
    assert "Could not get lock" in held and "(unattended-upgr)" in held and "rc=100" in held, held
    conn = _conn(ic, "fresh")
    try:
        start = time.monotonic()
        assert bootstrap.ensure_venv_support(conn, "fresh") is True
        assert time.monotonic() - start >= left - 3  # it waited for the lock instead of failing
    finally:
        conn.close()
    assert run(fresh["public"], "python3 -c 'import ensurepip; print(1)'").strip() == "1"


def test_fresh_vm_is_a_bare_cloud_image(ic):
    ip = ic.vms["revert"]["public"]
    out = run(ip, "python3 -m venv --help >/dev/null; echo help=$?; python3 -m venv /tmp/v 2>&1 | grep -c ensurepip; "
                  "python3 -c 'import ensurepip' 2>/dev/null; echo ensurepip=$?; dpkg -s python3-venv >/dev/null 2>&1;"
                  " echo venv_pkg=$?; command -v gcc cc pip pip3 | wc -l; ls /usr/lib/python3*/EXTERNALLY-MANAGED;"
                  " sudo -n id -u; ps -p 1 -o comm=; hostname")
    lines = out.split()
    assert lines[:5] == ["help=0", "1", "ensurepip=1", "venv_pkg=1", "0"], out  # --help passes, venv does not
    assert lines[5].endswith("EXTERNALLY-MANAGED") and lines[6:] == ["0", "systemd", "revert"], out


def test_provisioning_agent_lags_behind_sshd_and_ends_the_create(ic):
    """The VM boots during its create (as on Azure, not after it): sshd answers while the agent has not made the
    admin user yet, and the create ends once it has (its `ready`), so a login right after the create works."""
    fresh = ic.vms["fresh"]
    assert fresh["refused"] >= 1, fresh  # sshd answered, but the admin user was not there yet
    assert fresh["login"] - fresh["first_refused"] > 1.0, fresh
    assert fresh["first_refused"] < fresh["created"], fresh  # answering SSH before its create had ended
    assert fresh["login"] < fresh["created"] + 2.0, fresh  # and the user there when the create ended
    assert run(fresh["public"], "cloud-init status --wait; cloud-init status --long | head -n 1").split()[-2:] == \
        ["status:", "done"]


def test_user_data_runs_in_cloud_init_order_after_the_create(ic):
    """write_files (init stage), packages (final stage: it waits for the first-boot apt job's lock), the runcmd
    script last; output in /var/log/cloud-init-output.log; `cloud-init status --format json` as cloud-init's."""
    ip = ic.vms["small"]["public"]
    shown = json.loads(run(ip, "cloud-init status --wait --format json", timeout=180))
    assert (shown["status"], shown["extended_status"], shown["errors"]) == ("done", "done", []), shown
    assert shown["stage"] is None and all(shown[s]["finished"] for s in ("init", "modules-config", "modules-final"))
    assert run(ip, "sudo -n cat /etc/flwrazure-order").split() == ["write_files", "packages", "runcmd"]
    log = run(ip, "cat /var/log/cloud-init-output.log")
    assert "python3-venv" in log and "reported ready to the platform" in log, log[-2000:]
    # the packages step ran once the first-boot apt job had let go (it holds the lock APT_SECONDS from boot)
    assert "Could not get lock" in log or ic.vms["small"]["created"] - ic.vms["small"]["booted"] > APT_SECONDS


def test_reverted_venv_probe_makes_start_fail_on_the_default_image(ic):
    """The check start used before (`python3 -m venv --help`) passes on a bare image, so apt is skipped and
    creating the venv fails: the local cloud now catches that class of defect. The product's probe installs."""
    from flwrazure.errors import FlwrazureError
    from flwrazure.plan.services import Layout
    from flwrazure.remote import bootstrap

    conn = _conn(ic, "revert")
    try:
        with pytest.raises(FlwrazureError, match="virtual environment"):
            bootstrap.ensure_flwr(conn, Layout("/home/azureuser"), "1.42.0", [], None, "revert",
                                  venv_probe="python3 -m venv --help")
        assert bootstrap.ensure_venv_support(conn, "revert") is True
        assert bootstrap.ensure_venv_support(conn, "revert") is False  # now present: nothing to do
        assert conn.run("python3 -m venv /tmp/v2 && /tmp/v2/bin/pip --version", hide=True, in_stream=False).ok
    finally:
        conn.close()


def test_each_vm_gets_its_sizes_memory(ic):
    from flwrazure.localcloud.hosts import cgroups

    limits = {e["name"]: cgroups.memory_limit(e["cgroup"]) for e in ic.driver.running.values() if e.get("cgroup")}
    assert limits["fresh"] == 8 * 2**30 and limits["small"] == 1 * 2**30, limits
    small = ic.vms["small"]["public"]
    fits = run(small, "python3 -c 'b = bytearray(400 * 2**20); print(len(b) >> 20)'").strip()
    assert fits == "400"
    over = run(small, "python3 -c 'b = bytearray(1536 * 2**20); print(len(b))' >/dev/null 2>&1; echo rc=$?").strip()
    assert over == "rc=137", over  # killed by the out-of-memory killer, as on a 1 GiB VM


def test_arm64_image_is_api_only(ic):
    vm = ic.compute.virtual_machines.get("rg", "arm", expand="instanceView")
    assert vm.provisioning_state == "Succeeded"
    assert "arm64" in ic.driver.api_only["arm"]
    assert not any(e["name"] == "arm" for e in ic.driver.running.values())


def test_debian_has_no_first_boot_apt_and_first_boot_runs_once(ic):
    ip = ic.vms["debian"]["public"]
    assert "rc=0" in run(ip, "sudo -n apt-get update -q >/dev/null 2>&1; echo rc=$?")  # no lock held, mirror reached
    ic.compute.virtual_machines.begin_deallocate("rg", "debian").result()
    ic.compute.virtual_machines.begin_start("rg", "debian").result()
    again = login_trace(ip)
    assert again["refused"] == 0, again  # the agent does not run again: the user is there from the start
    assert run(ip, "cloud-init status").strip() == "status: done"


def test_ssh_wait_reports_a_refused_key_after_the_grace(ic, tmp_path):
    from flwrazure.errors import FlwrazureError
    from flwrazure.remote import ssh

    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    start = time.monotonic()
    with pytest.raises(FlwrazureError, match="keeps refusing user azureuser"):
        ssh.wait(ic.vms["small"]["public"], "small", "azureuser", str(other), tmp_path / "kh", timeout=120,
                 auth_grace=3)
    assert time.monotonic() - start < 15


def test_start_says_in_one_line_that_arm64_vms_are_api_only(ic, tmp_path):
    from tests.helpers.cloud import flwrazure, publish

    home = tmp_path / "home"
    publish(ic, home)
    made = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--vm-size", "Standard_D2ps_v5",
                     "--ssh-source", "198.18.0.1", "--cluster", "armc")
    assert made.returncode == 0, made.stderr
    started = time.monotonic()
    result = flwrazure(home, "start", "--cluster", "armc")
    assert result.returncode == 2 and time.monotonic() - started < 10, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Arm64" in result.stderr, result.stderr
    assert flwrazure(home, "teardown", "--cluster", "armc", "--yes").returncode == 0
