"""Local-cloud VMs as real hosts: SSH (right key only), isolation, sudo, systemd, boot delay, lifecycle, and
NSG rules enforced on real packets. Needs root and systemd-nspawn (CI has both; elsewhere these are skipped)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import arm
from tests.helpers.hosts import KEY, port_state, port_state_from, run, ssh_cli, wait_ssh

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = [pytest.mark.vms,
              pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")]
OPERATOR = "198.18.0.1"
BOOT_DELAY = 2.0


@pytest.fixture(scope="module")
def hc(tmp_path_factory):
    """A local cloud with nspawn hosts, a VNet, an NSG admitting SSH from the operator, three VMs."""
    from flwrazure.localcloud.server import LocalCloudServer

    state = tmp_path_factory.mktemp("hosts") / "local"
    server = LocalCloudServer(state, hosts="nspawn", boot_delay=BOOT_DELAY)
    server.start()
    try:
        cloud = _build(server)
    except BaseException:
        server.stop()  # a failed setup must not leave hosts behind
        raise
    yield cloud
    server.stop()


def _build(server):
    from tests.helpers.cloud import clients_for

    cloud = clients_for(server)
    arm.ssh_public_key()
    cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
    vnet = cloud.network.virtual_networks.begin_create_or_update("rg", "vnet", arm.vnet()).result()
    nsg = cloud.network.network_security_groups.begin_create_or_update("rg", "nsg", {"location": "eastus", "properties": {
        "securityRules": [{"name": "ssh", **arm.rule(100, "22", OPERATOR)}]}}).result()
    vms = {}
    started = {}
    for name in ("target", "a", "b"):
        ip = cloud.network.public_ip_addresses.begin_create_or_update("rg", f"{name}-ip", arm.pip()).result()
        nic = cloud.network.network_interfaces.begin_create_or_update(
            "rg", f"{name}-nic", arm.nic(vnet.subnets[0].id, ip.id, nsg.id)).result()
        started[name] = time.monotonic()  # the VM boots during its create, from its PUT on
        poller = cloud.compute.virtual_machines.begin_create_or_update("rg", name, arm.vm(nic.id))
        vms[name] = {"public": ip.ip_address, "private": nic.ip_configurations[0].private_ip_address,
                     "poller": poller}
    for vm in vms.values():
        vm["poller"].result()
    for name, vm in vms.items():
        wait_ssh(vm["public"])
        vm["ready_after"] = time.monotonic() - started[name]
    cloud.vms = vms
    cloud.nsg_id = nsg.id
    return cloud


def test_right_key_logs_in_as_the_admin_user(hc):
    ip = hc.vms["target"]["public"]
    assert run(ip, "hostname").strip() == "target"
    assert run(ip, "id -un").strip() == "azureuser"
    assert ssh_cli(ip, KEY).returncode == 0


def test_other_key_and_password_are_refused(hc, tmp_path):
    ip = hc.vms["target"]["public"]
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    refused = ssh_cli(ip, str(other))
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(ip, username="azureuser", password="azureuser", look_for_keys=False, allow_agent=False,
                       timeout=5)
    client.close()


def test_passwordless_sudo_python_systemd(hc):
    ip = hc.vms["target"]["public"]
    assert run(ip, "sudo -n id -u").strip() == "0"
    assert run(ip, "python3 -c 'print(42)'").strip() == "42"  # venv support is not there: see test_images.py
    assert run(ip, "systemctl is-system-running --wait || true").strip() in ("running", "degraded")
    assert run(ip, "ps -p 1 -o comm=").strip() == "systemd"


def test_filesystem_is_isolated(hc):
    marker = f"flwrazure-{uuid.uuid4().hex}"
    a, b = hc.vms["a"]["public"], hc.vms["b"]["public"]
    run(a, f"echo {marker} > ~/mine && echo {marker} > /tmp/mine && sudo sh -c 'echo {marker} > /etc/mine'")
    assert run(a, "cat ~/mine /tmp/mine /etc/mine").split() == [marker] * 3
    assert run(b, "cat ~/mine /tmp/mine /etc/mine 2>/dev/null | wc -l").strip() == "0"
    assert not Path("/etc/mine").exists() and not Path("/home/azureuser/mine").exists()
    assert run(b, "ls /work /root 2>/dev/null | grep -v ':' | wc -w").strip() == "0"  # host folders are hidden


def test_boot_delay_is_honoured(hc):
    for vm in hc.vms.values():
        assert vm["ready_after"] >= BOOT_DELAY - 0.2, vm


def test_network_layout_like_azure(hc):
    ip = hc.vms["target"]["public"]
    routes = run(ip, "ip route")
    assert "default" not in routes  # no internet
    assert hc.vms["target"]["private"] in run(ip, "ip -o -4 addr show dev eth0")
    index = run(ip, "cat /etc/pip.conf")
    assert f"http://{OPERATOR}:" in index


def _allow(hc, name: str, priority: int, port: str, source: str, access: str = "Allow") -> None:
    hc.network.security_rules.begin_create_or_update(
        "rg", "nsg", name, arm.rule(priority, port, source, access=access)).result()


def _serve(ip: str, port: int) -> None:
    run(ip, f"cd /tmp && (setsid nohup python3 -m http.server {port} >/tmp/http{port}.log 2>&1 &) ; sleep 0.5")


def test_nsg_matrix_on_real_packets(hc):
    t, a, b = hc.vms["target"], hc.vms["a"], hc.vms["b"]
    _serve(t["public"], 8000)
    _serve(t["public"], 8001)
    # default rules: nothing from outside the VNet, everything from inside it (AllowVnetInBound)
    assert port_state(t["public"], 8000) == "timeout"
    assert port_state_from(a["public"], t["public"], 8000) == "timeout"  # via public IP: source is a's public IP
    assert port_state_from(a["public"], t["private"], 8000) == "open"  # via the VNet
    # allowed source connects, other source times out
    _allow(hc, "fleet", 200, "8000", a["public"])
    assert port_state_from(a["public"], t["public"], 8000) == "open"
    assert port_state_from(b["public"], t["public"], 8000) == "timeout"
    assert port_state(t["public"], 8000) == "timeout"
    assert port_state_from(a["public"], t["public"], 8001) == "timeout"  # other port still closed
    # a Deny above the Allow wins; removing it restores access, within 2 s
    _allow(hc, "deny-a", 150, "8000", a["public"], access="Deny")
    assert port_state_from(a["public"], t["public"], 8000) == "timeout"
    start = time.monotonic()
    hc.network.security_rules.begin_delete("rg", "nsg", "deny-a").result()
    assert port_state_from(a["public"], t["public"], 8000) == "open"
    assert time.monotonic() - start < 2 + 3  # the SSH round-trip of the probe is part of the measure
    # a Deny of the whole VNet above AllowVnetInBound closes the private path too
    _allow(hc, "no-vnet", 300, "8001", "VirtualNetwork", access="Deny")
    assert port_state_from(b["public"], t["private"], 8001) == "timeout"
    assert port_state_from(b["public"], t["private"], 8000) == "open"
    # CIDR sources and port ranges
    _allow(hc, "operator-range", 400, "8000-8001", "198.18.0.0/31")
    assert port_state(t["public"], 8000) == "open"
    for rule in ("fleet", "no-vnet", "operator-range"):
        hc.network.security_rules.begin_delete("rg", "nsg", rule).result()
    assert port_state(t["public"], 8000) == "timeout"


def test_traffic_to_a_public_ip_comes_from_the_senders_public_ip(hc):
    t, a = hc.vms["target"], hc.vms["a"]
    _allow(hc, "peer", 210, "8002", a["public"])
    run(t["public"], "(setsid nohup python3 -c \"import socket; s=socket.socket(); "
                     "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8002)); s.listen(); "
                     "c, addr = s.accept(); open('/tmp/peer', 'w').write(addr[0])\" >/dev/null 2>&1 &); sleep 0.5")
    assert port_state_from(a["public"], t["public"], 8002) == "open"
    time.sleep(0.3)
    assert run(t["public"], "cat /tmp/peer").strip() == a["public"]
    hc.network.security_rules.begin_delete("rg", "nsg", "peer").result()


def test_systemd_unit_survives_deallocate_and_start(hc):
    ip = hc.vms["b"]["public"]
    unit = ("[Unit]\\nDescription=flwrazure test\\n[Service]\\nExecStart=/usr/bin/python3 -m http.server 8100\\n"
            "Restart=on-failure\\n[Install]\\nWantedBy=multi-user.target\\n")
    run(ip, f"printf '{unit}' | sudo tee /etc/systemd/system/fztest.service >/dev/null && "
            "sudo systemctl daemon-reload && sudo systemctl enable --now fztest && echo kept > ~/disk-marker")
    assert run(ip, "systemctl is-active fztest").strip() == "active"
    macs = run(ip, "ip -o link show | grep -o 'link/ether [0-9a-f:]*'").split()
    nic_mac = hc.network.network_interfaces.get("rg", "b-nic").mac_address  # 00-0D-3A-…, as Azure shows it
    assert nic_mac.startswith("00-0D-3A-") and nic_mac.replace("-", ":").lower() in macs  # the guest's eth0
    hc.compute.virtual_machines.begin_deallocate("rg", "b").result()
    assert port_state(ip, 22) == "timeout"  # the host is gone while deallocated
    hc.compute.virtual_machines.begin_start("rg", "b").result()
    wait_ssh(ip)
    # the NIC's MAC comes back with it: with a new one each boot, this machine's and the other VMs' neighbour
    # entries kept pointing at the old veth and the first login waited 15-80 s for them to age out
    assert run(ip, "ip -o link show | grep -o 'link/ether [0-9a-f:]*'").split() == macs
    assert run(ip, "systemctl is-active fztest || true").strip() in ("active", "activating")
    assert run(ip, "cat ~/disk-marker").strip() == "kept"  # disk intact
    hc.compute.virtual_machines.begin_restart("rg", "b").result()
    wait_ssh(ip)
    assert run(ip, "cat ~/disk-marker").strip() == "kept"


def test_each_vms_systemd_has_a_cgroup_tree_of_its_own(hc):
    """A unit running on one VM is nowhere in another VM's cgroup tree, and stopping a unit on one VM leaves the
    same unit on another running. Before, every VM's systemd ran its units in one shared
    /payload/system.slice/<unit> cgroup, and VMs booting together raced for those groups: on a resumed VM
    systemd-user-sessions failed with status=219/CGROUP, /run/nologin stayed, and sshd hung up on the admin user
    ("transport shut down or saw EOF")."""
    only_a = f"fzonly{uuid.uuid4().hex[:8]}"
    unit = "[Unit]\\nDescription=flwrazure test\\n[Service]\\nExecStart=/bin/sleep 600\\n"
    a, target = hc.vms["a"]["public"], hc.vms["target"]["public"]
    for ip, name in ((a, only_a), (a, "fzshared"), (target, "fzshared")):
        run(ip, f"printf '{unit}' | sudo tee /etc/systemd/system/{name}.service >/dev/null && "
                f"sudo systemctl daemon-reload && sudo systemctl start {name}")
    try:
        trees = {ip: run(ip, "ls /sys/fs/cgroup/systemd/system.slice/ 2>/dev/null || "
                             "ls /sys/fs/cgroup/system.slice/") for ip in (a, target)}
        assert f"{only_a}.service" in trees[a] and f"{only_a}.service" not in trees[target], trees
        run(a, "sudo systemctl stop fzshared")
        time.sleep(1)
        assert run(target, "systemctl is-active fzshared || true").strip() == "active"
    finally:
        for ip, name in ((a, only_a), (a, "fzshared"), (target, "fzshared")):
            run(ip, f"sudo systemctl stop {name}; sudo rm -f /etc/systemd/system/{name}.service; "
                    "sudo systemctl daemon-reload")


@pytest.mark.parametrize("kind", ["systemd", "loop"])
def test_product_service_layer_on_a_real_host(hc, kind):
    """flwrazure's services (remote/daemons.py) on a real host, under either supervisor: install starts the process,
    the same definition again changes nothing, a new one replaces it, a crash loop is counted (so `start` can stop
    waiting for it), stop ends it."""
    from flwrazure.plan import services
    from flwrazure.remote import daemons, ssh
    from tests.helpers.hosts import connection

    layout = services.Layout("/home/azureuser")
    name, port = f"fz-{kind}", 8101 if kind == "systemd" else 8102

    def install(conn, command):
        return daemons.install(conn, name, kind, layout, services.unit("T", command, layout, "azureuser", None),
                               services.loop_script("T", name, command, layout, None))

    def until(check, timeout=30.0):
        end = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < end
            time.sleep(0.3)

    with connection(hc.vms["a"]["public"]) as conn:
        conn.run(f"mkdir -p {layout.base}", hide=True, in_stream=False)
        # the services read their environment from the 0600 file that start's bootstrap writes beside them
        ssh.put_text(conn, services.env_file_text(services.environment(layout, None)),
                     layout.path(services.ENV_FILE), "600")
        assert daemons.supervisor(conn) == "systemd"  # these hosts boot systemd; "loop" is forced here
        try:
            serve = ["/usr/bin/python3", "-m", "http.server", str(port)]
            assert install(conn, serve) is True
            until(lambda: daemons.state(conn, name, kind, layout) == "active")
            until(lambda: conn.run(f"ss -ltn | grep -q ':{port} '", warn=True, hide=True, in_stream=False).ok)
            assert install(conn, serve) is False and daemons.restarts(conn, name, kind, layout) == 0
            assert install(conn, ["/bin/sh", "-c", "exit 3"]) is True
            until(lambda: daemons.restarts(conn, name, kind, layout) >= 2)
            assert not conn.run(f"ss -ltn | grep -q ':{port} '", warn=True, hide=True, in_stream=False).ok  # the old one is gone
            daemons.stop(conn, name, kind, layout)
            until(lambda: daemons.state(conn, name, kind, layout) != "active")
        finally:
            daemons.stop(conn, name, kind, layout)
            conn.run(f"sudo -n systemctl disable {name} >/dev/null 2>&1; "
                     f"sudo -n rm -f /etc/systemd/system/{name}.service", warn=True, hide=True, in_stream=False)


def _source_seen(listener, vm_run) -> str:
    """The source address a connection from a VM to this machine's public gateway arrives with."""
    port = listener.getsockname()[1]
    vm_run(f"python3 -c \"import socket; socket.create_connection(('{OPERATOR}', {port}), timeout=3).close()\"")
    conn, peer = listener.accept()
    conn.close()
    return peer[0]


def test_private_vm_leaves_through_its_subnets_nat_gateway_only(hc):
    """A VM without a public IP in a private subnet (defaultOutboundAccess false, the SDK's api-version default)
    cannot reach the mirror; associating a NAT gateway opens the way at once, source-NATed to the gateway's public
    IP; dissociating closes it again. A VM with a public IP still leaves from its own."""
    import ipaddress
    import socket

    from tests.helpers.hosts import connection

    mirror = hc.server.mirror.port
    sub = hc.network.subnets.begin_create_or_update("rg", "vnet", "private", {"properties": {
        "addressPrefix": "10.0.1.0/24"}}).result()
    assert sub.default_outbound_access is False
    nic = hc.network.network_interfaces.begin_create_or_update("rg", "p-nic", arm.nic(sub.id)).result()
    private_ip = nic.ip_configurations[0].private_ip_address
    hc.compute.virtual_machines.begin_create_or_update("rg", "p", arm.vm(nic.id)).result()
    target = hc.vms["target"]["public"]
    listener = socket.create_server((OPERATOR, 0))
    listener.settimeout(10)
    try:
        jump = connection(target)
        with connection(private_ip) as vm:  # SSH through the VM with a public IP, as to a private client
            vm.gateway = jump
            wait_until = time.monotonic() + 90
            while True:
                try:
                    vm.run("true", hide=True, in_stream=False)
                    break
                except Exception:
                    if time.monotonic() > wait_until:
                        raise
                    time.sleep(0.5)

            def probe() -> str:
                return vm.run(PROBE_MIRROR.format(port=mirror), hide=True, in_stream=False).stdout.strip()

            def vm_run(cmd: str) -> None:
                vm.run(cmd, hide=True, in_stream=False)

            assert "default" not in vm.run("ip route", hide=True, in_stream=False).stdout
            assert probe() == "timeout"  # no public IP, no NAT gateway, a private subnet: no way out
            ip = hc.network.public_ip_addresses.begin_create_or_update("rg", "nat-ip", arm.pip()).result()
            gw = hc.network.nat_gateways.begin_create_or_update("rg", "nat", {
                "location": "eastus", "sku": {"name": "Standard"},
                "properties": {"publicIpAddresses": [{"id": ip.id}]}}).result()
            hc.network.subnets.begin_create_or_update("rg", "vnet", "private", {"properties": {
                "addressPrefix": "10.0.1.0/24", "natGateway": {"id": gw.id}}}).result()
            assert probe() == "open"
            assert _source_seen(listener, vm_run) == ip.ip_address  # SNAT to the NAT gateway's address
            assert _source_seen(listener, lambda c: run(target, c)) == target  # unchanged: its own public IP
            hc.network.subnets.begin_create_or_update("rg", "vnet", "private", {"properties": {
                "addressPrefix": "10.0.1.0/24"}}).result()
            assert probe() == "timeout"
            # Azure's default outbound access (the subnet not private): out through an implicit address
            hc.network.subnets.begin_create_or_update("rg", "vnet", "private", {"properties": {
                "addressPrefix": "10.0.1.0/24", "defaultOutboundAccess": True}}).result()
            assert ipaddress.ip_address(_source_seen(listener, vm_run)) in ipaddress.ip_network("198.19.240.0/20")
            hc.network.subnets.begin_create_or_update("rg", "vnet", "private", {"properties": {
                "addressPrefix": "10.0.1.0/24", "defaultOutboundAccess": False}}).result()
            assert probe() == "timeout"
        jump.close()
    finally:
        listener.close()
        hc.compute.virtual_machines.begin_delete("rg", "p").result()


PROBE_MIRROR = ("python3 -c \"import socket\ntry:\n socket.create_connection(('" + OPERATOR + "',{port}),timeout=2)"
                "; print('open')\nexcept ConnectionRefusedError: print('refused')\nexcept OSError: print('timeout')\"")
