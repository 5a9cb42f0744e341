"""Azure Spot VMs on the local cloud, through the real SDK: priority / eviction policy / max price checked as the
compute RP checks them, the low-priority quota counter, simulateEviction, and the eviction and capacity faults."""

import time

import pytest
from azure.core.exceptions import HttpResponseError

from tests.helpers import arm
from tests.helpers.cloud import until


def _put(cloud, net_stack, name, size="Standard_D2s_v3", **spot):
    nic = cloud.network.network_interfaces.begin_create_or_update(
        "rg", f"{name}-nic", arm.nic(net_stack["subnet"])).result()
    body = arm.vm(nic.id, size=size)
    body["properties"].update(spot)
    return cloud.compute.virtual_machines.begin_create_or_update("rg", name, body)


def _refused(call) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value


def test_spot_vm_shape_and_defaults(cloud, net_stack):
    vm = _put(cloud, net_stack, "s", priority="Spot").result()
    assert (vm.priority, vm.eviction_policy, vm.billing_profile.max_price) == ("Spot", "Deallocate", -1)
    vm = _put(cloud, net_stack, "t", priority="spot", evictionPolicy="delete",
              billingProfile={"maxPrice": 0.5}).result()
    assert (vm.priority, vm.eviction_policy, vm.billing_profile.max_price) == ("Spot", "Delete", 0.5)
    regular = _put(cloud, net_stack, "r").result()
    assert regular.priority is None and regular.billing_profile is None


@pytest.mark.parametrize("props,code", [
    ({"evictionPolicy": "Deallocate"}, "EvictionPolicyCanBeSetOnlyOnAzureSpotVirtualMachines"),
    ({"priority": "Regular", "billingProfile": {"maxPrice": 1}}, "MaxPriceIsSupportedOnlyForAzureSpotVirtualMachines"),
    ({"priority": "Spot", "billingProfile": {"maxPrice": 0}}, "MaxPriceValueInvalid"),
    ({"priority": "Spot", "billingProfile": {"maxPrice": -2}}, "MaxPriceValueInvalid"),
    # the local price list's Spot price of a D2s v3 is 0.02 USD/hour
    ({"priority": "Spot", "billingProfile": {"maxPrice": 0.001}}, "SpotPriceGreaterThanProvidedMaxPrice"),
])
def test_bad_spot_fields_are_refused_with_azures_codes(cloud, net_stack, props, code):
    err = _refused(lambda: _put(cloud, net_stack, "v", **props))
    assert err.status_code == 400 and err.error.code == code
    assert [v.name for v in cloud.compute.virtual_machines.list("rg")] == []
    if code == "SpotPriceGreaterThanProvidedMaxPrice":
        assert "'0.001 USD' is lower than the current spot price '0.02 USD'" in err.error.message


def test_changes_on_an_existing_vm(cloud, net_stack):
    _put(cloud, net_stack, "r").result()
    err = _refused(lambda: _put(cloud, net_stack, "r", priority="Spot"))
    assert err.error.code == "VMPriorityCannotBeApplied"
    _put(cloud, net_stack, "s", priority="Spot", billingProfile={"maxPrice": 0.5}).result()
    assert _refused(lambda: _put(cloud, net_stack, "s", priority="Regular")).error.code == "PropertyChangeNotAllowed"
    assert _refused(lambda: _put(cloud, net_stack, "s", priority="Spot", evictionPolicy="Delete")
                    ).error.code == "PropertyChangeNotAllowed"
    err = _refused(lambda: _put(cloud, net_stack, "s", priority="Spot", billingProfile={"maxPrice": 0.6}))
    assert err.status_code == 409 and err.error.code == "MaxPriceChangeNotAllowedForAllocatedVMs"
    cloud.compute.virtual_machines.begin_deallocate("rg", "s").result()
    vm = _put(cloud, net_stack, "s", priority="Spot", billingProfile={"maxPrice": 0.6}).result()
    assert vm.billing_profile.max_price == 0.6  # allowed while deallocated, as Azure says


def test_spot_cores_count_against_the_low_priority_quota(cloud, net_stack):
    _put(cloud, net_stack, "s", priority="Spot").result()
    _put(cloud, net_stack, "r").result()
    usage = {u.name.value: (u.current_value, u.name.localized_value) for u in cloud.compute.usage.list("eastus")}
    assert usage["lowPriorityCores"] == (2, "Total Regional Low-priority vCPUs")
    assert usage["cores"][0] == 2 and usage["standardDSv3Family"][0] == 2  # the regular VM only
    cloud.compute.virtual_machines.begin_deallocate("rg", "s").result()
    usage = {u.name.value: u.current_value for u in cloud.compute.usage.list("eastus")}
    assert usage["lowPriorityCores"] == 2  # a deallocated Spot VM still counts (Azure's Spot docs)
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"lowPriorityCores": 3}}})
    err = _refused(lambda: _put(cloud, net_stack, "t", priority="Spot"))
    assert err.error.code == "OperationNotAllowed" and "Low Priority Cores quota" in err.error.message
    _put(cloud, net_stack, "u").result()  # a regular VM does not use that pool


def _power(cloud, name):
    view = cloud.compute.virtual_machines.instance_view("rg", name)
    return [s.code for s in view.statuses]


def test_simulate_eviction_deallocates_and_start_brings_it_back(cloud, net_stack):
    cloud.admin("PATCH", "config", {"time_scale": 0.01})  # the 30 s notice in 0.3 s
    _put(cloud, net_stack, "s", priority="Spot").result()
    _put(cloud, net_stack, "r").result()
    assert _refused(lambda: cloud.compute.virtual_machines.simulate_eviction("rg", "r")).error.code == \
        "OperationNotAllowed"
    cloud.compute.virtual_machines.simulate_eviction("rg", "s")  # 204
    assert until(lambda: "PowerState/deallocated" in _power(cloud, "s"), 10)
    assert _power(cloud, "s") == ["ProvisioningState/succeeded", "PowerState/deallocated"]
    assert cloud.compute.disks.list_by_resource_group("rg")  # its disk is kept
    cloud.compute.virtual_machines.begin_start("rg", "s").result()
    assert _power(cloud, "s")[-1] == "PowerState/running"


def test_delete_policy_deletes_the_evicted_vm(cloud, net_stack):
    cloud.admin("PATCH", "config", {"time_scale": 0.01})
    _put(cloud, net_stack, "s", priority="Spot", evictionPolicy="Delete").result()
    cloud.compute.virtual_machines.simulate_eviction("rg", "s")
    assert until(lambda: [v.name for v in cloud.compute.virtual_machines.list("rg")] == [], 10)


def test_eviction_and_capacity_faults(cloud, net_stack):
    cloud.admin("PATCH", "config", {"time_scale": 0.01})
    _put(cloud, net_stack, "c-1", priority="Spot").result()
    _put(cloud, net_stack, "c-2", priority="Spot").result()
    added = cloud.admin("POST", "faults", {"kind": "eviction", "path": "c-2"}).json()["value"][0]
    assert [i.rsplit("/", 1)[1] for i in added["evicted"]] == ["c-2"]
    assert until(lambda: _power(cloud, "c-2")[-1] == "PowerState/deallocated", 10)
    assert _power(cloud, "c-1")[-1] == "PowerState/running"
    cloud.admin("POST", "faults", {"kind": "capacity", "path": "c-2", "times": 1})
    started = time.monotonic()
    err = _refused(lambda: cloud.compute.virtual_machines.begin_start("rg", "c-2"))
    assert err.status_code == 409 and err.error.code == "SkuNotAvailable" and time.monotonic() - started < 5
    assert "is currently not available in location 'eastus'" in err.error.message
    cloud.compute.virtual_machines.begin_start("rg", "c-2").result()  # capacity is back (times: 1)
    assert _power(cloud, "c-2")[-1] == "PowerState/running"


def test_price_list_has_spot_meters(cloud):
    got = cloud.raw("GET", "/api/retail/prices", api=None, token=None,
                    **{"$filter": "armSkuName eq 'Standard_D2s_v3' and armRegionName eq 'eastus'"})
    spot = [i for i in got.json()["Items"] if "Spot" in i["skuName"]]
    assert [(i["skuName"], i["meterName"], i["retailPrice"]) for i in spot] == [("D2s v3 Spot", "D2s v3 Spot", 0.02)]
