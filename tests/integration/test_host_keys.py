"""Pinned SSH host keys belong to VMs: deleting a VM forgets its key, so the next VM Azure gives that public
address to is not refused as a changed host (real CLI, real SDK, the local cloud reuses released addresses)."""

import json
import time

import paramiko

from flwrazure.remote import ssh
from tests.helpers.cloud import flwrazure

OTHER = "203.0.113.5"


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def create(home, *extra) -> dict:
    return json.loads(ok(flwrazure(home, "create-cluster", "--cloud", "local", "--ssh-source", "203.0.113.9",
                                   "--json", *extra)).stdout)


def pin(known, *addresses) -> None:
    """What `start` does on first contact with each VM (the product's own trust-on-first-use policy)."""
    client = paramiko.SSHClient()
    for address in addresses:
        ssh._TrustOnFirstUse(known).missing_host_key(client, address, paramiko.ECDSAKey.generate())


def pinned(known) -> set[str]:
    return set(paramiko.HostKeys(str(known)).keys()) if known.exists() else set()


def test_teardown_forgets_the_vms_host_keys_and_the_reused_address_is_not_refused(product_cloud, home):
    first = create(home, "--clients", "1")
    ips = [r["public_ip"] for r in first["vms"]]
    known = home / "clusters" / "flower" / "known_hosts"
    pin(known, *ips, OTHER)
    assert pinned(known) == {*ips, OTHER}
    ok(flwrazure(home, "teardown", "--yes"))  # without --purge: keys and known_hosts stay
    assert pinned(known) == {OTHER}
    again = create(home, "--clients", "1")
    assert {r["public_ip"] for r in again["vms"]} == set(ips)  # Azure (and the local cloud) hand the addresses on
    conn = ssh.connect(again["vms"][0]["public_ip"], "azureuser", str(home / "clusters" / "flower" / "id_ed25519"), known)
    assert conn.client.get_host_keys().lookup(again["vms"][0]["public_ip"]) is None  # first contact again, not a changed key


def test_tagged_teardown_forgets_each_deleted_vms_key(product_cloud, home):
    product_cloud.resources.resource_groups.create_or_update("shared-rg", {"location": "eastus"})
    ips = [r["public_ip"] for r in create(home, "--clients", "2", "--resource-group", "shared-rg",
                                          "--use-existing-group")["vms"]]
    known = home / "clusters" / "flower" / "known_hosts"
    pin(known, *ips, OTHER)
    assert json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)["mode"] == "tagged"
    assert pinned(known) == {OTHER}


def test_a_vm_recreated_by_create_cluster_is_a_new_host(product_cloud, home):
    ips = [r["public_ip"] for r in create(home, "--clients", "2")["vms"]]
    known = home / "clusters" / "flower" / "known_hosts"
    pin(known, *ips)
    # deleted outside flwrazure, with its address (deleteOption Delete); create-cluster makes a new one
    product_cloud.compute.virtual_machines.begin_delete("flower-rg", "flower-client-1").result()
    since = time.time()
    again = create(home, "--clients", "2")
    assert again["vms"][1]["public_ip"] == ips[1] and product_cloud.writes(since)
    assert pinned(known) == {ips[0], ips[2]}


def test_forget_hosts_reads_every_line_form(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("# a comment 198.18.0.10\n198.18.0.10 ssh-ed25519 AAAA\n[198.18.0.10]:2222 ssh-rsa BBBB\n"
                     "198.18.0.11 ssh-ed25519 CCCC\n")
    assert ssh.forget_hosts(known, ["198.18.0.10", None]) == ["198.18.0.10"]
    assert known.read_text() == "# a comment 198.18.0.10\n198.18.0.11 ssh-ed25519 CCCC\n"
    assert ssh.forget_hosts(tmp_path / "absent", ["198.18.0.10"]) == []
