"""create-cluster re-run on an existing cluster with another option: what it can converge it converges (the SSH
rule), what it cannot change is refused with one line naming what would do it — exit 2, nothing written to Azure,
the record untouched (it used to exit 0, change nothing on Azure and record the new value)."""

import json
import time

import pytest

from tests.helpers.cloud import flwrazure
from tests.helpers.sshagent import keygen
from tests.integration.test_bad_input import assert_one_line_exit_2

BASE = ("create-cluster", "--cloud", "local", "--clients", "2", "--ssh-source", "203.0.113.9",
        "--flwr-version", "1.42.0")
CHANGES = [
    (("--vm-size", "Standard_D4s_v3"), "az vm resize -g flower-rg -n flower-server --size Standard_D4s_v3"),
    (("--server-vm-size", "Standard_D4s_v3"), "VM flower-server is Standard_D2s_v3, not Standard_D4s_v3"),
    (("--client-vm-size", "Standard_D4s_v3"), "or re-run with --client-vm-size Standard_D2s_v3"),
    (("--admin-user", "flwr"), "created with --admin-user azureuser (you asked for flwr)"),
    (("--clients", "3"), "`flwrazure scale --cluster flower --clients 3`"),
    (("--clients", "1"), "`flwrazure scale --cluster flower --clients 1`"),
    (("--resource-group", "elsewhere-rg"), "already exists with --resource-group flower-rg"),
    (("--flwr-version", "1.34.0"), "already exists with --flwr-version 1.42.0"),
    (("--location", "westeurope"), "already exists with --location eastus"),
    (("--ssh-key", "KEY"), "Azure sets a VM's SSH key only when it is created"),
]


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("change, needle", CHANGES, ids=[" ".join(c) for c, _ in CHANGES])
def test_a_change_create_cluster_cannot_make_is_refused_and_nothing_is_written(product_cloud, home, tmp_path,
                                                                               change, needle):
    _ok(flwrazure(home, *BASE))
    record = (home / "clusters" / "flower" / "state.json").read_text()
    if change[1] == "KEY":
        change = (change[0], str(keygen(tmp_path / "mine")))
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *BASE, *change), needle)
    assert product_cloud.writes(since) == []
    assert (home / "clusters" / "flower" / "state.json").read_text() == record
    sizes = {vm.name: vm.hardware_profile.vm_size for vm in product_cloud.compute.virtual_machines.list("flower-rg")}
    assert sizes == dict.fromkeys(["flower-server", "flower-client-1", "flower-client-2"], "Standard_D2s_v3")


def test_rerun_without_ssh_key_keeps_the_key_the_vms_trust(product_cloud, home, tmp_path):
    key = keygen(tmp_path / "mine")
    _ok(flwrazure(home, *BASE, "--ssh-key", str(key)))
    since = time.time()
    again = json.loads(_ok(flwrazure(home, *BASE, "--json")).stdout)
    assert again["ssh_private_key"] == str(key) and product_cloud.writes(since) == []
    record = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    assert record["ssh_private_key"] == str(key)


def test_another_ssh_source_converges_the_ssh_rule_and_the_record(product_cloud, home):
    _ok(flwrazure(home, *BASE))
    since = time.time()
    again = json.loads(_ok(flwrazure(home, *BASE, "--ssh-source", "198.51.100.7", "--json")).stdout)
    rule = product_cloud.network.security_rules.get("flower-rg", "flower-nsg", "flwrazure-ssh").as_dict()["properties"]
    assert (rule.get("sourceAddressPrefixes") or [rule.get("sourceAddressPrefix")]) == ["198.51.100.7"]
    assert again["ssh_sources"] == ["198.51.100.7"]
    assert [w["path"].rsplit("/", 1)[-1] for w in product_cloud.writes(since)] == ["flwrazure-ssh"]  # one rule
    record = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    assert record["ssh_sources"] == ["198.51.100.7"]


def test_a_rerun_signed_in_to_another_subscription_is_refused(product_cloud, home):
    """As when `az account set` changed the default: the local cloud has one subscription, so the record is made
    to name another (where the cluster would live)."""
    _ok(flwrazure(home, *BASE))
    path = home / "clusters" / "flower" / "state.json"
    record = json.loads(path.read_text())
    record["subscription"] = "00000000-0000-0000-0000-0000000000aa"
    path.write_text(json.dumps(record))
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *BASE), "lives in subscription 00000000-0000-0000-0000-0000000000aa")
    assert product_cloud.writes(since) == [] and json.loads(path.read_text()) == record
