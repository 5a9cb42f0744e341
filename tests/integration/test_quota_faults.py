"""Quota, SKU availability, latency and fault injection, seen through the real SDK."""

import time

import pytest
from azure.core.exceptions import HttpResponseError

from tests.helpers import arm


def _vm(cloud, net_stack, name, size="Standard_D2s_v3", location="eastus", subnet=None):
    nic = cloud.network.network_interfaces.begin_create_or_update(
        "rg", f"{name}-nic", arm.nic(subnet or net_stack["subnet"], location=location)).result()
    return cloud.compute.virtual_machines.begin_create_or_update("rg", name, arm.vm(nic.id, size=size, location=location))


def test_usage_counts_running_cores(cloud, net_stack):
    _vm(cloud, net_stack, "a").result()
    _vm(cloud, net_stack, "b", size="Standard_D4s_v3").result()
    usage = {u.name.value: (u.current_value, u.limit) for u in cloud.compute.usage.list("eastus")}
    assert usage["cores"] == (6, 100) and usage["standardDSv3Family"] == (6, 100)
    assert usage["virtualMachines"] == (2, 25000)
    cloud.compute.virtual_machines.begin_deallocate("rg", "b").result()
    usage = {u.name.value: u.current_value for u in cloud.compute.usage.list("eastus")}
    assert usage["cores"] == 2  # deallocated VMs free their cores


def test_family_quota_error_names_family_limit_and_usage(cloud, net_stack):
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"by_location": {"eastus": {"families": {"standardDSv3Family": 4}}}}}})
    _vm(cloud, net_stack, "a").result()
    _vm(cloud, net_stack, "b").result()
    with pytest.raises(HttpResponseError) as err:
        _vm(cloud, net_stack, "c")
    assert err.value.status_code == 409 and err.value.error.code == "OperationNotAllowed"
    message = err.value.error.message
    assert "standardDSv3Family Cores quota" in message and "Current Limit: 4" in message
    assert "Current Usage: 4" in message and "Additional Required: 2" in message
    assert [v.name for v in cloud.compute.virtual_machines.list("rg")] == ["a", "b"]


def test_regional_quota_and_start_rechecks(cloud, net_stack):
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"cores": 4}}})
    _vm(cloud, net_stack, "a").result()
    cloud.compute.virtual_machines.begin_deallocate("rg", "a").result()
    _vm(cloud, net_stack, "b").result()
    _vm(cloud, net_stack, "c").result()
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_start("rg", "a")
    assert "Total Regional Cores quota" in err.value.error.message


def test_skus_show_restrictions_and_unavailable_size_fails(cloud, net_stack):
    skus = {s.name: s for s in cloud.compute.resource_skus.list(filter="location eq 'eastus'")}
    assert skus["Standard_D2s_v3"].restrictions == []
    assert skus["Standard_NC6s_v3"].restrictions[0].reason_code == "NotAvailableForSubscription"
    assert {c.name: c.value for c in skus["Standard_D2s_v3"].capabilities}["vCPUs"] == "2"
    with pytest.raises(HttpResponseError) as err:
        _vm(cloud, net_stack, "gpu", size="Standard_NC6s_v3")
    assert err.value.status_code == 409 and err.value.error.code == "SkuNotAvailable"


def test_latency_makes_each_lro_take_that_long(cloud, net_stack):
    cloud.admin("PATCH", "config", {"latency": 0.5})
    start = time.monotonic()
    poller = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip())
    assert time.monotonic() - start < 0.4  # the PUT itself answers at once
    assert cloud.network.public_ip_addresses.get("rg", "ip").provisioning_state == "Updating"
    poller.result()
    assert time.monotonic() - start >= 0.5


def test_throttling_429_is_retried_by_the_sdk(cloud, net_stack):
    cloud.admin("POST", "faults", {"kind": "http", "status": 429, "retry_after": 0, "method": "PUT",
                                   "path": "publicIPAddresses", "times": 2})
    since = time.time()
    cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
    puts = [r["status"] for r in cloud.writes(since) if r["method"] == "PUT"]
    assert puts == [429, 429, 201]


def test_server_errors_are_retried_and_then_surface(cloud, net_stack):
    cloud.admin("POST", "faults", {"kind": "http", "status": 503, "method": "GET", "path": "publicIPAddresses/ip",
                                   "times": 1})
    cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", arm.pip()).result()
    assert cloud.network.public_ip_addresses.get("rg", "ip").name == "ip"
    cloud.admin("POST", "faults", {"kind": "http", "status": 500, "method": "DELETE", "times": -1})
    from azure.mgmt.network import NetworkManagementClient
    impatient = NetworkManagementClient(cloud.credential, cloud.sub, base_url=cloud.info["endpoint"],
                                        connection_verify=cloud.info["ca_bundle"], retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        impatient.public_ip_addresses.begin_delete("rg", "ip")
    assert err.value.status_code == 500 and err.value.error.code == "InternalServerError"
    cloud.admin("DELETE", "faults")


def test_failed_lro_on_the_kth_vm_carries_the_code(cloud, net_stack):
    cloud.admin("POST", "faults", {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines",
                                   "method": "PUT", "skip": 1, "times": 1, "code": "AllocationFailed",
                                   "message": "Allocation failed. We do not have sufficient capacity."})
    _vm(cloud, net_stack, "first").result()
    with pytest.raises(HttpResponseError) as err:
        _vm(cloud, net_stack, "second").result()
    assert err.value.error.code == "AllocationFailed"
    assert cloud.compute.virtual_machines.get("rg", "second").provisioning_state == "Failed"
    _vm(cloud, net_stack, "third").result()


def test_request_log_counts_by_method(cloud):
    cloud.admin("DELETE", "requests")
    cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
    cloud.resources.resource_groups.get("rg")
    log = cloud.admin("GET", "requests").json()["value"]
    assert [(r["method"], r["status"]) for r in log] == [("PUT", 201), ("GET", 200)]
    assert all(r["ms"] >= 0 and r["path"].startswith("/subscriptions/") for r in log)
