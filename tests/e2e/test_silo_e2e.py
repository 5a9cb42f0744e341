"""Cross-silo federations for real (issue 24), on one local cloud with sandbox VMs: the operator (home A) runs a
cluster with one client VM of its own; silo B (home B, its own identity) joins with `--cloud local` (a VM in a
group of its own); silo C joins a machine it already runs with `--host`. The operator admits both; the sklearn
example runs over all three SuperNodes, each on its own data; `silo list` shows both online; `silo remove c`: C's
SuperNode is refused from then on and the next run uses two; `silo leave` leaves nothing of B's in its subscription
and only C's own things on its machine. Nothing crosses that should not: no private key or credential of one side
in the other's home or on the other's machines. Needs root and systemd-nspawn."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e import private_clients, silo_operator
from tests.e2e.test_flower_e2e import FIRST_BOOT, SKLEARN_APP, client_data, flwr, flwr_tools, flwrazure, ok
from tests.helpers import arm, contract
from tests.helpers.cloud import clients_for, local_log_tail
from tests.helpers.hosts import run, wait_ssh

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")
VERSION = "1.42.0"
ME = "198.18.0.1"  # this machine on the local cloud's public network


def identity(op: Path, home: Path, name: str) -> dict:
    """A home that acts as another tenant of the operator's local cloud (`local identity add` + `local use`):
    its token cannot see the operator's resources. Returns the identity (its credential is grepped for)."""
    made = flwrazure(op, "local", "identity", "add", name, "--json")
    assert made.returncode == 0, made.stderr[-2000:]
    path = home.parent / f"{name}.identity.json"
    path.write_text(made.stdout)
    ok(flwrazure(home, "local", "use", str(path)))
    return json.loads(made.stdout)


def sdk(op: Path, ident: dict):
    """SDK clients of the operator's local cloud signed in as `ident`."""
    info = json.loads((op / "local" / "server.json").read_text())
    return clients_for(None, info={**info, **{k: ident[k] for k in ("tenant_id", "client_id", "client_secret",
                                                                     "subscription_id") if ident.get(k)}})


def machine_of_c(op: Path, ident_c: dict, key: Path) -> str:
    """C's own machine (not made by flwrazure): a VM in C's subscription, SSH from this machine only."""
    cloud = sdk(op, ident_c)
    cloud.resources.resource_groups.create_or_update("c-machines", {"location": "eastus"})
    vnet = cloud.network.virtual_networks.begin_create_or_update("c-machines", "vnet", arm.vnet()).result()
    nsg = cloud.network.network_security_groups.begin_create_or_update("c-machines", "nsg", {
        "location": "eastus", "properties": {"securityRules": [{"name": "ssh", **arm.rule(100, "22", ME)}]}}).result()
    ip = cloud.network.public_ip_addresses.begin_create_or_update("c-machines", "box-ip", arm.pip()).result()
    nic = cloud.network.network_interfaces.begin_create_or_update(
        "c-machines", "box-nic", arm.nic(vnet.subnets[0].id, ip.id, nsg.id)).result()
    pub = Path(f"{key}.pub").read_text().strip()
    cloud.compute.virtual_machines.begin_create_or_update("c-machines", "box", arm.vm(nic.id, key=pub)).result()
    return ip.ip_address


def join(home: Path, *args: str, timeout: float = 900) -> dict:
    result = flwrazure(home, "silo", "join", *args, "--json", timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{result.stderr[-3000:]}\nlocal cloud log:\n{local_log_tail(home, 15)}")
    return contract.documented("silo join", result.stdout)


def in_background(fn, *args) -> dict:
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # re-raised by the caller
            box["error"] = exc

    box["thread"] = threading.Thread(target=work, daemon=True)
    box["thread"].start()
    return box


def finished(box: dict):
    box["thread"].join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_sklearn(cli: Path, home: Path, clients: int) -> str:
    result = ok(flwr(cli, home, "run", str(SKLEARN_APP), "flower", "--stream", "--run-config",
                     f"min-nodes={clients}", timeout=600))
    out = result.stdout + result.stderr
    assert out.count(f"from {clients} clients ({clients} read their data-path)") == 3, out[-3000:]
    assert "flwrazure-example: final accuracy" in out, out[-3000:]
    return out


def files_holding(root: Path, needle: str, skip: Path | None = None) -> list[str]:
    """Files under root whose text holds needle (grep -r), but none under `skip`."""
    out = subprocess.run(["grep", "-rlF", "--", needle, str(root)], capture_output=True, text=True)
    return [f for f in out.stdout.splitlines() if skip is None or not f.startswith(f"{skip}/")]


def key_body(pem: str) -> str:
    """A line from the middle of a private key's base64 body: what a copy of it anywhere would contain (the first
    lines of every OpenSSH key are the same header)."""
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return lines[len(lines) // 2]


@pytest.mark.timeout(2700)
def test_cross_silo_federation(tmp_path):
    op, home_b, home_c = tmp_path / "operator", tmp_path / "silo-b", tmp_path / "silo-c"
    wheels, cli = flwr_tools(VERSION)
    house = op / "local" / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.iterdir():
        (house / wheel.name).write_bytes(wheel.read_bytes())
    data = client_data(cli, tmp_path / "data", clients=3)  # 1: the operator's client VM, 2: B, 3: C
    (tmp_path / "op-data").mkdir()
    (data / "1").rename(tmp_path / "op-data" / "1")
    ok(flwrazure(op, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT))
    try:
        began = time.monotonic()
        ident_b = identity(op, home_b, "hospital-b")
        ident_c = identity(op, home_c, "lab-c")
        key_c = home_c / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_c)], check=True)
        box_c = in_background(machine_of_c, op, ident_c, key_c)
        # the operator's client VM is private (issue 25): no public IP, NAT gateway out, SSH through the server;
        # the silos still dial the SuperLink's public address
        ok(flwrazure(op, "up", "--cloud", "local", "--clients", "1", "--flwr-version", VERSION,
                     "--client-data", str(tmp_path / "op-data"), "--private-clients", timeout=900))
        private_clients.check_layout(op)
        invites = {}
        for silo in ("b", "c"):
            out = json.loads(ok(flwrazure(op, "silo", "invite", silo, "--cluster", "flower", "-o",
                                          str(tmp_path / f"{silo}.invitation.json"), "--json")).stdout)
            invites[silo] = out
        invited = time.monotonic()
        ip_c = finished(box_c)
        wait_ssh(ip_c, timeout=180, key=str(key_c))
        # both silos join at once, each from its own home with its own data
        joins = {
            "b": in_background(join, home_b, str(tmp_path / "b.invitation.json"), "--cloud", "local",
                               "--data", str(data / "2"), "--ca-fingerprint", invites["b"]["ca_fingerprint"],
                               "-o", str(tmp_path / "b.join-request.json")),
            "c": in_background(join, home_c, str(tmp_path / "c.invitation.json"), "--host", f"azureuser@{ip_c}",
                               "--ssh-key", str(key_c), "--data", str(data / "3"), "--ca-fingerprint",
                               invites["c"]["ca_fingerprint"], "-o", str(tmp_path / "c.join-request.json"))}
        joined = {s: finished(b) for s, b in joins.items()}
        assert joined["b"]["state"] == joined["c"]["state"] == "connecting", joined  # not admitted yet
        assert joined["c"]["egress"] == [ip_c] and joined["b"]["egress"] == [joined["b"]["address"]]
        for silo in ("b", "c"):
            ok(flwrazure(op, "silo", "admit", str(tmp_path / f"{silo}.join-request.json"), "--cluster", "flower"))
        online_after, node_ids = {}, {}
        for silo, home in (("b", home_b), ("c", home_c)):
            waited = join(home, "--resume", "--wait", "--timeout", "300")
            assert waited["state"] == "online" and waited["node_id"], waited
            node_ids[silo] = waited["node_id"]
            online_after[silo] = round(time.monotonic() - invited, 1)
        listed = contract.documented("silo list", ok(flwrazure(op, "silo", "list", "--cluster", "flower",
                                                               "--json")).stdout)
        assert {r["silo"]: r["state"] for r in listed["silos"]} == {"b": "online", "c": "online"}, listed
        silo_operator.check_admitted(op, tmp_path, joined, node_ids)
        run_sklearn(cli, op, 3)  # the operator's client and both silos, each on its own data

        # B's SuperNode private key is on B's VM only; the operator's CA key is in the operator's home only
        rec_b = json.loads((home_b / "silos" / "flower-b" / "silo.json").read_text())
        b_key = key_body(run(rec_b["host"], "cat ~/flwrazure/supernode.key", key=rec_b["ssh_private_key"]))
        assert run(rec_b["host"], "stat -c %a ~/flwrazure/supernode.key", key=rec_b["ssh_private_key"]).strip() \
            == "600"
        ca_key = key_body((op / "clusters" / "flower" / "tls" / "ca.key").read_text())
        op_ssh = key_body((op / "clusters" / "flower" / "id_ed25519").read_text())
        op_secret = json.loads((op / "local" / "server.json").read_text())["client_secret"]
        # the operator's home minus its local/ (that is the emulated cloud itself, which holds every tenant)
        for secret, homes in ((b_key, (op, home_b, home_c)), (ca_key, (home_b, home_c)), (op_ssh, (home_b, home_c)),
                              (op_secret, (home_b, home_c)), (ident_b["client_secret"], (op, home_c)),
                              (ident_c["client_secret"], (op, home_b))):
            for root in homes:
                assert files_holding(root, secret, op / "local") == [], (root, secret[:12])
        # B's token cannot list the operator's resource groups
        op_sub = json.loads((op / "local" / "server.json").read_text())["subscription_id"]
        with pytest.raises(Exception, match="AuthorizationFailed|SubscriptionNotFound|InvalidAuthenticationToken"):
            list(sdk(op, {**ident_b, "subscription_id": op_sub}).resources.resource_groups.list())
        server_ip = json.loads(ok(flwrazure(op, "status", "--json")).stdout)["vms"][0]["public_ip"]
        op_key = str(op / "clusters" / "flower" / "id_ed25519")
        assert run(server_ip, f"grep -rlF -- {b_key!r} ~ /etc 2>/dev/null | head -3; true", key=op_key).strip() == ""
        assert run(rec_b["host"], f"grep -rlF -- {ca_key!r} ~ /etc 2>/dev/null | head -3; true",
                   key=rec_b["ssh_private_key"]).strip() == ""

        # remove C: its SuperNode is refused from then on (a restart of it shows it), the next run uses 2
        assert "SuperNode ID:" in ok(flwrazure(home_c, "silo", "logs", "-n", "200")).stdout
        ok(flwrazure(op, "silo", "remove", "c", "--cluster", "flower", "--yes"))
        silo_operator.check_removed(op, "c", joined["c"]["egress"], joined["b"]["egress"])
        since = int(time.time())
        run(ip_c, "sudo -n systemctl restart flower-supernode", key=str(key_c))
        deadline = time.monotonic() + 120
        while True:
            log = run(ip_c, f"journalctl -u flower-supernode --since @{since} --no-pager -o cat", key=str(key_c))
            # the Fleet rule no longer admits it (its connections fail), and were it let through, its key is gone
            if re.search(r"Exit Code: 305|Failed to initialize the connection|Connection attempt failed", log):
                break
            assert time.monotonic() < deadline, log[-3000:]
            time.sleep(3)
        status_c = contract.documented("silo status", flwrazure(home_c, "silo", "status", "--json").stdout)
        status_c = status_c["joined_silos"][0]
        assert status_c["state"] != "online", status_c
        run_sklearn(cli, op, 2)

        # leave: B's subscription holds nothing of B's; C's machine keeps everything but what join installed
        left_b = contract.documented("silo leave", ok(flwrazure(home_b, "silo", "leave", "--yes", "--json",
                                                                timeout=600)).stdout)
        assert left_b["removed"], left_b
        cloud_b = sdk(op, ident_b)
        assert [g.name for g in cloud_b.resources.resource_groups.list()] == []
        assert list(cloud_b.resources.resources.list()) == []
        ok(flwrazure(home_c, "silo", "leave", "--yes"))
        left = run(ip_c, "ls -A ~; systemctl list-unit-files 'flower-*' --no-legend | wc -l", key=str(key_c))
        assert not {"flwrazure", "flwr-venv", ".flwr"} & set(left.split()) and left.split()[-1] == "0", left
        assert ".ssh" in left.split()  # the machine is theirs: what join did not install stays
        assert not (home_b / "silos" / "flower-b").exists() and not (home_c / "silos" / "flower-c").exists()
        print(f"\nsilo e2e: invite->online b {online_after['b']} s, c {online_after['c']} s; "
              f"whole {time.monotonic() - began:.0f} s")
    finally:
        try:
            for home in (home_b, home_c):
                if any((home / "silos").glob("*/silo.json")):
                    flwrazure(home, "silo", "leave", "--yes", timeout=600)
            ok(flwrazure(op, "teardown", "--yes", "--purge", timeout=600))
        finally:
            flwrazure(op, "local", "down")
    from tests.integration.test_hosts_lifecycle import EMPTY, leftovers

    assert leftovers(op / "local") == EMPTY
