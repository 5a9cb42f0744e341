"""A VM whose policy or Defender extension failed: Azure reports it provisioningState Failed while it runs (the
instance view: PowerState/running, ProvisioningState/failed/VMExtensionProvisioningError, the extension's status
at level Error). create-cluster and scale must take it as running and say which extension failed, not re-PUT it
(which fails the same way) or wait for a Succeeded that never comes."""

import json
import time

from tests.helpers.cloud import flwrazure

CREATE = ("create-cluster", "--cloud", "local", "--ssh-source", "203.0.113.9", "--flwr-version", "1.42.0")
FAILING = [{"vm": "flower-client-1", "extension": "MDE.Linux", "message": "Enable failed: onboarding blob missing"}]


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result


def test_the_local_cloud_reports_a_failed_extension_as_azure_does(product_cloud, home):
    cloud = product_cloud
    _ok(flwrazure(home, *CREATE, "--clients", "1"))
    cloud.admin("PATCH", "config", {"extension_failures": FAILING})
    vm = cloud.compute.virtual_machines.get("flower-rg", "flower-client-1", expand="instanceView").as_dict()
    assert vm["properties"]["provisioningState"] == "Failed"
    view = vm["properties"]["instanceView"]
    codes = [s["code"] for s in view["statuses"]]
    assert codes == ["ProvisioningState/failed/VMExtensionProvisioningError", "PowerState/running"]
    assert "processing extension 'MDE.Linux'" in view["statuses"][0]["message"]
    assert [(e["name"], e["statuses"][0]["level"]) for e in view["extensions"]] == [("MDE.Linux", "Error")]
    ext = cloud.compute.virtual_machine_extensions.get("flower-rg", "flower-client-1", "MDE.Linux")
    assert ext.provisioning_state == "Failed"
    assert cloud.compute.virtual_machines.get("flower-rg", "flower-server").provisioning_state == "Succeeded"
    body = cloud.compute.virtual_machines.get("flower-rg", "flower-client-1").as_dict()
    poller = cloud.compute.virtual_machines.begin_create_or_update("flower-rg", "flower-client-1", body)
    try:  # a re-PUT processes the extension again: its operation ends Failed with the same code
        poller.result()
        raise AssertionError("the re-PUT succeeded")
    except Exception as exc:
        assert "VMExtensionProvisioningError" in str(exc)
    assert cloud.compute.virtual_machines.get("flower-rg", "flower-client-1").provisioning_state == "Failed"


def test_create_cluster_and_scale_take_a_vm_with_a_failed_extension_as_running(product_cloud, home):
    cloud = product_cloud
    _ok(flwrazure(home, *CREATE, "--clients", "2"))
    cloud.admin("PATCH", "config", {"extension_failures": FAILING})
    since = time.time()
    again = _ok(flwrazure(home, *CREATE, "--clients", "2", timeout=60))
    assert cloud.writes(since) == []
    said = " ".join(again.stderr.split())  # the console wraps long lines
    assert said.count("is running, but Azure reports it Failed") == 1, said
    assert "VM flower-client-1 is running, but Azure reports it Failed because its extension MDE.Linux failed" in said
    since = time.time()
    grown = json.loads(_ok(flwrazure(home, "scale", "--clients", "3", "--json", timeout=60)).stdout)
    assert [v["state"] for v in grown["vms"]] == ["running"] * 4
    written = {w["path"].rsplit("/", 1)[-1] for w in cloud.writes(since) if w["method"] == "PUT"}
    assert written == {"flower-client-3-ip", "flower-client-3-nic", "flower-client-3"}, written


def test_a_new_vm_whose_extension_fails_once_provisioned_is_running_too(product_cloud, home):
    """The wait for a new VM meets Failed: still running, still said once, create-cluster succeeds."""
    product_cloud.admin("PATCH", "config", {"extension_failures": FAILING})
    created = json.loads(_ok(flwrazure(home, *CREATE, "--clients", "2", "--json", timeout=60)).stdout)
    assert [v["state"] for v in created["vms"]] == ["running"] * 3
    assert list(created["failed_extensions"]) == ["flower-client-1"]
    assert "MDE.Linux failed" in created["failed_extensions"]["flower-client-1"]
