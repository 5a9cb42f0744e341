"""Secrets on a sandbox VM that boots this machine's own OS (`--image-source host`), checked from inside it over real
SSH: it sees none of this machine's secrets; files flwrazure uploads are private from their first byte; an index
URL's token reaches pip and the services only through their 0600 environment file (issue 23 items 2, 4, 6).
Needs root and systemd-nspawn; run under `flock /tmp/fz-vm.lock`."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from flwrazure.plan import services
from flwrazure.remote import bootstrap, daemons, ssh
from tests.helpers import arm
from tests.helpers.hosts import KEY, run, wait_ssh

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = [pytest.mark.vms,
              pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")]
OPERATOR = "198.18.0.1"
MARK = "flwrazure-test-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def vm():
    """One VM booting this machine's OS, with the local cloud's state folder and $FLWRAZURE_HOME placed where no
    built-in rule hides them (not under /tmp, /root or /home), each holding a secret."""
    from flwrazure.localcloud.server import LocalCloudServer
    from tests.helpers.cloud import clients_for

    base = Path("/var/lib") / f"flwrazure-test-{uuid.uuid4().hex[:8]}"
    state, fhome = base / "local", base / "home"
    (fhome / "clusters" / "c").mkdir(parents=True)
    (fhome / "clusters" / "c" / "id_ed25519").write_text(MARK)
    before = os.environ.get("FLWRAZURE_HOME")
    os.environ["FLWRAZURE_HOME"] = str(fhome)
    server = LocalCloudServer(state, hosts="nspawn", boot_delay=0.5, image_source="host")
    (state / "secret-of-the-cloud").write_text(MARK)
    server.start()
    try:
        cloud = clients_for(server)
        arm.ssh_public_key()
        cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
        vnet = cloud.network.virtual_networks.begin_create_or_update("rg", "vnet", arm.vnet()).result()
        nsg = cloud.network.network_security_groups.begin_create_or_update("rg", "nsg", {
            "location": "eastus", "properties": {"securityRules": [{"name": "ssh", **arm.rule(100, "22", OPERATOR)}]}
        }).result()
        ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
        nic = cloud.network.network_interfaces.begin_create_or_update(
            "rg", "nic", arm.nic(vnet.subnets[0].id, ip.id, nsg.id)).result()
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
        wait_ssh(ip.ip_address)
        yield {"ip": ip.ip_address, "state": state, "fhome": fhome}
    finally:
        server.stop()
        if before is None:
            os.environ.pop("FLWRAZURE_HOME", None)
        else:
            os.environ["FLWRAZURE_HOME"] = before
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def conn(vm, tmp_path):
    c = ssh.wait(vm["ip"], "vm", "azureuser", KEY, tmp_path / "known_hosts", timeout=60)
    yield c
    c.close()


def test_the_vm_sees_none_of_this_machines_secrets(vm):
    ip = vm["ip"]
    # the VM's own systemd makes an empty /root/.ssh (tmpfiles.d provision.conf): no file of this machine's /root
    assert run(ip, "sudo -n find /root -mindepth 1 -not -type d").strip() == ""
    assert run(ip, "ls -A /home").split() == ["azureuser"]
    for folder in (vm["state"], vm["fhome"]):  # the CA key, client secret, VM disks; the clusters' keys
        assert run(ip, f"sudo -n ls -A {folder} 2>/dev/null; true").strip() == "", folder
    assert MARK not in run(ip, f"sudo -n cat {vm['state']}/secret-of-the-cloud "
                               f"{vm['fhome']}/clusters/c/id_ed25519 2>&1; true")
    hashes = [line.split(":")[1] for line in run(ip, "sudo -n cat /etc/shadow").splitlines()]
    assert hashes and not [h for h in hashes if h.startswith("$")]  # no password hash of this machine
    mine = {p.read_text().split()[1] for p in Path("/etc/ssh").glob("ssh_host_*_key.pub")}
    theirs = {line.split()[1] for line in run(ip, "cat /etc/ssh/ssh_host_*_key.pub").splitlines()}
    assert theirs and not theirs & mine  # the VM has host keys of its own


def test_uploads_are_private_from_the_first_byte(conn):
    folder = "/home/azureuser/uploads"
    target = f"{folder}/supernode.key"
    assert ssh.put_text(conn, "KEY-1\n", target, "600")
    assert ssh.output(conn, f"stat -c %a {folder} {target}").split() == ["700", "600"]
    # identical content is not sent again, but the mode is still enforced (once left 0644, it stayed so)
    ssh.run(conn, f"chmod 644 {target}")
    assert not ssh.put_text(conn, "KEY-1\n", target, "600")
    assert ssh.output(conn, f"stat -c %a {target}").strip() == "600"

    class Interrupted:
        """The real connection, whose SFTP transfer dies halfway (a dropped link): half the key is written."""

        def __getattr__(self, name):
            return getattr(conn, name)

        def put(self, local, remote):
            data = local.read()
            with conn.sftp().open(remote, "w") as f:
                f.write(data[: len(data) // 2])
            raise EOFError("connection lost")

    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "A" * 200 + "\n"
    with pytest.raises(EOFError):
        ssh.put_text(Interrupted(), secret, f"{folder}/other.key", "600")
    left = ssh.output(conn, f"cd {folder} && for f in $(ls -A); do grep -q BEGIN \"$f\" && stat -c '%n %a' \"$f\"; "
                            "done; true").split("\n")
    assert [line for line in left if line and not line.endswith(" 600")] == []  # nothing readable by others


def test_the_index_token_reaches_pip_and_services_only_through_the_private_environment_file(conn):
    """The real bootstrap with a stand-in pip that records its argv and environment, then a real systemd unit:
    the token is on no command line, in no unit file or marker; pip and the service get the exact URL (with a
    '%n', which systemd would read as a specifier in a unit)."""
    layout = services.Layout("/home/azureuser")
    index = "https://me:TOKEN-7f3a@198.18.0.1:9/simple/%n/"
    ssh.run(conn, f"mkdir -p {layout.venv}/bin && printf '%s\\n' '#!/bin/sh' "
                  "'printf \"%s \" \"$@\" > /home/azureuser/pip-argv' "
                  "'printf \"%s\" \"$PIP_INDEX_URL\" > /home/azureuser/pip-index' > "
                  f"{layout.venv}/bin/pip && chmod 755 {layout.venv}/bin/pip")
    assert bootstrap.ensure_flwr(conn, layout, "1.42.0", ["numpy"], index, "vm", venv_probe="true")
    argv = ssh.read(conn, "/home/azureuser/pip-argv")
    assert "install" in argv and "flwr==1.42.0" in argv and "TOKEN" not in argv
    assert ssh.read(conn, "/home/azureuser/pip-index") == index
    marker = ssh.read(conn, layout.path("installed.json"))
    assert "TOKEN" not in marker and services.digest(index) in marker
    modes = ssh.output(conn, f"stat -c '%n %a' {layout.base} {layout.path(services.ENV_FILE)} "
                             f"{layout.path('installed.json')}").split("\n")
    assert [m.split()[-1] for m in modes if m] == ["700", "600", "600"]

    name = "flwrazure-envtest"
    command = ["/bin/sh", "-c", 'printf "%s" "$PIP_INDEX_URL" > /home/azureuser/service-index; exec sleep 300']
    unit = services.unit("env test", command, layout, "azureuser", index)
    try:
        daemons.install(conn, name, daemons.SYSTEMD, layout, unit, "")
        seen = ""
        for _ in range(50):
            seen = ssh.read(conn, "/home/azureuser/service-index")
            if seen:
                break
            ssh.run(conn, "sleep 0.2")
        assert seen == index
        assert "TOKEN" not in ssh.read(conn, f"/etc/systemd/system/{name}.service")
        assert "TOKEN" not in ssh.output(conn, "ps -eo args")
    finally:
        daemons.stop(conn, name, daemons.SYSTEMD, layout)
