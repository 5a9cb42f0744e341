"""Microsoft.Compute through the real azure-mgmt-compute client: VM lifecycle, power states, cascades, checks."""

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.helpers import arm


def _nic(cloud, net_stack, name="nic", delete_ip=True):
    ip = cloud.network.public_ip_addresses.begin_create_or_update(
        "rg", f"{name}-ip", arm.pip(delete_option="Delete" if delete_ip else None)).result()
    return cloud.network.network_interfaces.begin_create_or_update(
        "rg", name, arm.nic(net_stack["subnet"], ip.id, net_stack["nsg"])).result()


def test_vm_create_is_lro_creating_to_succeeded(cloud, net_stack):
    nic = _nic(cloud, net_stack)
    resp = cloud.raw("PUT", f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines/vm1",
                     arm.vm(nic.id, tags={"k": "v"}), api="2026-04-01")
    assert resp.status_code == 201
    assert resp.json()["properties"]["provisioningState"] == "Creating"
    assert "/providers/Microsoft.Compute/locations/eastus/operations/" in resp.headers["Azure-AsyncOperation"]
    vm = cloud.compute.virtual_machines.begin_create_or_update("rg", "vm1", arm.vm(nic.id, tags={"k": "v"})).result()
    assert vm.provisioning_state == "Succeeded" and vm.tags == {"k": "v"}
    assert vm.os_profile.computer_name == "vm1" and vm.os_profile.admin_username == "azureuser"
    assert vm.storage_profile.image_reference.offer == "ubuntu-24_04-lts"
    view = cloud.compute.virtual_machines.get("rg", "vm1", expand="instanceView").instance_view
    assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert cloud.network.network_interfaces.get("rg", "nic").virtual_machine.id == vm.id
    disk = cloud.compute.disks.get("rg", vm.storage_profile.os_disk.name)
    assert disk.managed_by == vm.id
    assert [v.name for v in cloud.compute.virtual_machines.list("rg")] == ["vm1"]
    assert [v.name for v in cloud.compute.virtual_machines.list_all()] == ["vm1"]


def test_power_transitions(cloud, net_stack):
    nic = _nic(cloud, net_stack)
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()

    def power():
        return cloud.compute.virtual_machines.instance_view("rg", "vm").statuses[-1].code

    cloud.compute.virtual_machines.begin_power_off("rg", "vm").result()
    assert power() == "PowerState/stopped"
    cloud.compute.virtual_machines.begin_deallocate("rg", "vm").result()
    assert power() == "PowerState/deallocated"
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_restart("rg", "vm")
    assert err.value.status_code == 409 and err.value.error.code == "OperationNotAllowed"
    cloud.compute.virtual_machines.begin_start("rg", "vm").result()
    assert power() == "PowerState/running"
    cloud.compute.virtual_machines.begin_restart("rg", "vm").result()
    assert power() == "PowerState/running"


def test_transient_power_states_are_visible_with_latency(cloud, net_stack):
    nic = _nic(cloud, net_stack)
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
    cloud.admin("PATCH", "config", {"latency": 0.4})
    poller = cloud.compute.virtual_machines.begin_deallocate("rg", "vm")
    assert cloud.compute.virtual_machines.instance_view("rg", "vm").statuses[-1].code == "PowerState/deallocating"
    poller.result()
    poller = cloud.compute.virtual_machines.begin_start("rg", "vm")
    assert cloud.compute.virtual_machines.instance_view("rg", "vm").statuses[-1].code == "PowerState/starting"
    poller.result()


def test_delete_option_cascades(cloud, net_stack):
    kept_nic = _nic(cloud, net_stack, "kept", delete_ip=False)
    gone_nic = _nic(cloud, net_stack, "gone", delete_ip=True)
    keep = cloud.compute.virtual_machines.begin_create_or_update("rg", "keep", arm.vm(kept_nic.id, delete=False)).result()
    cloud.compute.virtual_machines.begin_create_or_update("rg", "gone", arm.vm(gone_nic.id, delete=True)).result()
    cloud.compute.virtual_machines.begin_delete("rg", "gone").result()
    cloud.compute.virtual_machines.begin_delete("rg", "keep").result()
    left = sorted(r.name for r in cloud.resources.resources.list_by_resource_group("rg"))
    assert left == sorted(["vnet", "nsg", "kept", "kept-ip", keep.storage_profile.os_disk.name])
    disk = cloud.compute.disks.get("rg", keep.storage_profile.os_disk.name)
    assert disk.managed_by is None and disk.disk_state == "Unattached"
    assert cloud.network.network_interfaces.get("rg", "kept").virtual_machine is None
    with pytest.raises(ResourceNotFoundError):
        cloud.compute.virtual_machines.get("rg", "gone")


def test_nic_held_by_vm_cannot_be_deleted_nor_reused(cloud, net_stack):
    nic = _nic(cloud, net_stack)
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
    with pytest.raises(HttpResponseError) as err:
        cloud.network.network_interfaces.begin_delete("rg", "nic")
    assert err.value.status_code == 400 and err.value.error.code == "NicInUse"
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm2", arm.vm(nic.id))
    assert err.value.error.code == "NicInUse"


@pytest.mark.parametrize("mutate, code", [
    (lambda b: b["properties"]["hardwareProfile"].update(vmSize="Standard_Nope"), "InvalidParameter"),
    (lambda b: b["properties"]["osProfile"].update(adminUsername="admin"), "InvalidParameter"),
    (lambda b: b["properties"]["osProfile"].update(adminUsername="test2"), "InvalidParameter"),
    (lambda b: b["properties"]["osProfile"].update(adminUsername="support_388945a0"), "InvalidParameter"),
    (lambda b: b["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0].update(keyData="ssh-rsa AAAA"),
     "InvalidParameter"),
    (lambda b: b["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0].update(path="/root/keys"),
     "InvalidParameter"),
    (lambda b: b["properties"]["storageProfile"]["imageReference"].update(sku="99-lts"), "PlatformImageNotFound"),
    (lambda b: b["properties"]["osProfile"].update(computerName="bad_host!"), "InvalidParameter"),
    (lambda b: b["properties"]["networkProfile"]["networkInterfaces"][0].update(
        id=b["properties"]["networkProfile"]["networkInterfaces"][0]["id"] + "x"), "NotFound"),
])
def test_vm_validation(cloud, net_stack, mutate, code):
    nic = _nic(cloud, net_stack)
    body = arm.vm(nic.id)
    mutate(body)
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body)
    assert err.value.error.code == code
    assert list(cloud.compute.virtual_machines.list("rg")) == []


def test_immutable_properties(cloud, net_stack):
    nic = _nic(cloud, net_stack)
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id, tags={"a": "b"})).result()
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id, user="other"))
    assert err.value.status_code == 409 and err.value.error.code == "PropertyChangeNotAllowed"


def test_custom_data_as_the_compute_api_takes_it(cloud, net_stack):
    """osProfile.customData: base64 of at most 65535 bytes (87380 characters), else InvalidParameter on target
    customData; never echoed back (GET, list); a different one on an existing VM is 409, the same one is fine."""
    import base64

    nic = _nic(cloud, net_stack)

    def body(data):
        b = arm.vm(nic.id)
        b["properties"]["osProfile"]["customData"] = data
        return b

    for bad in ("not base64!", base64.b64encode(b"x" * 65536).decode()):
        with pytest.raises(HttpResponseError) as err:
            cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body(bad))
        assert (err.value.status_code, err.value.error.code, err.value.error.target) == \
            (400, "InvalidParameter", "customData")
        assert "maximum length of 87380 characters" in err.value.error.message
    data = base64.b64encode(b"#cloud-config\n{}\n").decode()
    vm = cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body(data)).result()
    assert vm.os_profile.custom_data is None  # Azure omits it in every answer
    got = cloud.raw("GET", f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines/vm").json()
    assert "customData" not in got["properties"]["osProfile"]
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body(data)).result()  # the same: accepted
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body(base64.b64encode(b"#!/bin/sh").decode()))
    assert (err.value.status_code, err.value.error.code) == (409, "PropertyChangeNotAllowed")


def test_vm_delete_of_missing_is_204_and_get_404(cloud, net_stack):
    path = f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines/ghost"
    assert cloud.raw("DELETE", path, api="2026-04-01").status_code == 204
    with pytest.raises(ResourceNotFoundError) as err:
        cloud.compute.virtual_machines.get("rg", "ghost")
    assert err.value.error.code == "ResourceNotFound"


def test_group_delete_removes_vms_and_disks(cloud, net_stack):
    for i in range(3):
        nic = _nic(cloud, net_stack, f"n{i}")
        cloud.compute.virtual_machines.begin_create_or_update("rg", f"vm{i}", arm.vm(nic.id, delete=False)).result()
    cloud.resources.resource_groups.begin_delete("rg").result()
    assert list(cloud.resources.resources.list()) == []
    assert list(cloud.compute.disks.list()) == []


def test_failed_vm_reports_code_in_instance_view_and_list_expands(cloud, net_stack):
    cloud.admin("POST", "faults", {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines",
                                   "code": "AllocationFailed", "message": "No capacity."})
    nic = _nic(cloud, net_stack)
    with pytest.raises(HttpResponseError):
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
    status = cloud.compute.virtual_machines.instance_view("rg", "vm").statuses[0]
    assert status.code == "ProvisioningState/failed/AllocationFailed" and status.message == "No capacity."
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()  # a re-PUT retries
    listed = [v.as_dict() for v in cloud.compute.virtual_machines.list("rg", expand="instanceView")]
    assert listed[0]["properties"]["instanceView"]["statuses"][-1]["code"] == "PowerState/running"


def test_vm_updating_knob_keeps_running_vms_updating_for_a_while(cloud, net_stack):
    """`vm_updating` (seconds): running VMs sit in provisioningState Updating, power state unchanged, as while Azure
    Policy or Defender install extensions: every running VM when the knob is set, and each new VM once created."""
    def state(name):
        vm = cloud.compute.virtual_machines.get("rg", name, expand="instanceView").as_dict()
        codes = [s["code"] for s in vm["properties"]["instanceView"]["statuses"]]
        return vm["properties"]["provisioningState"], [c for c in codes if c.startswith("PowerState/")]

    nic = _nic(cloud, net_stack)
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
    assert state("vm") == ("Succeeded", ["PowerState/running"])
    assert cloud.admin("PATCH", "config", {"vm_updating": -1}).status_code == 400
    assert cloud.admin("PATCH", "config", {"vm_updating": 1.0}).status_code == 200
    assert state("vm") == ("Updating", ["PowerState/running"])
    nic2 = _nic(cloud, net_stack, "nic2")
    cloud.compute.virtual_machines.begin_create_or_update("rg", "vm2", arm.vm(nic2.id)).result()  # LRO Succeeded
    assert state("vm2") == ("Updating", ["PowerState/running"])
    deadline = time.time() + 10
    while time.time() < deadline and {state("vm")[0], state("vm2")[0]} != {"Succeeded"}:
        time.sleep(0.1)
    assert state("vm") == state("vm2") == ("Succeeded", ["PowerState/running"])


def _caps(cloud, size):
    sku = next(s for s in cloud.compute.resource_skus.list(filter="location eq 'eastus'") if s.name == size)
    return {c.name: c.value for c in sku.capabilities}


def test_resource_skus_report_each_sizes_real_capabilities(cloud):
    """Figures from Azure's size pages (vCPUs, memory, VM generation support, premium storage, CPU)."""
    want = {"Standard_D2s_v3": ("2", "8", "V1,V2", "True", "x64"), "Standard_B1s": ("1", "1", "V1,V2", "True", "x64"),
            "Standard_A2_v2": ("2", "4", "V1", "False", "x64"), "Standard_D2_v3": ("2", "8", "V1", "False", "x64"),
            "Standard_D1_v2": ("1", "3.5", "V1", "False", "x64"), "Standard_D2_v2": ("2", "7", "V1", "False", "x64"),
            "Standard_D2ps_v5": ("2", "8", "V2", "True", "Arm64")}
    for size, (vcpus, mem, gens, premium, arch) in want.items():
        caps = _caps(cloud, size)
        assert (caps["vCPUs"], caps["MemoryGB"], caps["HyperVGenerations"], caps["PremiumIO"],
                caps["CpuArchitectureType"]) == (vcpus, mem, gens, premium, arch), size


GEN1 = {**arm.IMAGE, "sku": "server-gen1"}
ARM64 = {**arm.IMAGE, "sku": "server-arm64"}


@pytest.mark.parametrize("size, image, disk, code, text", [
    ("Standard_A2_v2", arm.IMAGE, None, "BadRequest", "cannot boot Hypervisor Generation '2'"),
    ("Standard_D2_v3", arm.IMAGE, "StandardSSD_LRS", "BadRequest", "cannot boot Hypervisor Generation '2'"),
    ("Standard_D2_v3", GEN1, "Premium_LRS", "InvalidParameter", "does not support the storage account type Premium_LRS"),
    ("Standard_D1_v2", GEN1, "Premium_LRS", "InvalidParameter", "does not support the storage account type Premium_LRS"),
    ("Standard_D2ps_v5", arm.IMAGE, "Premium_LRS", "BadRequest", "architecture 'x64'"),
    ("Standard_D2s_v3", ARM64, "Premium_LRS", "BadRequest", "architecture 'Arm64'"),
    ("Standard_D2s_v3", arm.IMAGE, "Fast_SSD", "InvalidRequestFormat", "Cannot parse"),
])
def test_vm_put_refuses_what_the_size_cannot_boot_or_attach(cloud, net_stack, size, image, disk, code, text):
    nic = _nic(cloud, net_stack)
    body = arm.vm(nic.id, size=size, image=image)
    if disk:
        body["properties"]["storageProfile"]["osDisk"]["managedDisk"] = {"storageAccountType": disk}
    with pytest.raises(HttpResponseError) as err:
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body)
    assert err.value.status_code == 400 and err.value.error.code == code and text in err.value.error.message
    assert list(cloud.compute.virtual_machines.list("rg")) == []


@pytest.mark.parametrize("size, image, disk", [
    ("Standard_A2_v2", GEN1, "StandardSSD_LRS"), ("Standard_D2_v3", GEN1, "Standard_LRS"),
    ("Standard_D2ps_v5", ARM64, "Premium_LRS"), ("Standard_D2s_v3", GEN1, "Premium_LRS"),
])
def test_vm_put_accepts_what_fits(cloud, net_stack, size, image, disk):
    nic = _nic(cloud, net_stack)
    body = arm.vm(nic.id, size=size, image=image)
    body["properties"]["storageProfile"]["osDisk"]["managedDisk"] = {"storageAccountType": disk}
    vm = cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", body).result().as_dict()
    assert vm["properties"]["storageProfile"]["osDisk"]["managedDisk"]["storageAccountType"] == disk
    disk_body = cloud.compute.disks.get("rg", vm["properties"]["storageProfile"]["osDisk"]["name"]).as_dict()
    assert disk_body["sku"]["name"] == disk
    assert disk_body["properties"]["hyperVGeneration"] == ("V1" if image is GEN1 else "V2")


def test_vm_boots_during_its_create_which_ends_when_the_agent_is_ready(tmp_path):
    """As on Azure: the guest boots within the create's duration (its host started ready_budget before the end),
    the create ends when its provisioning agent signals ready and never before the create's duration; a guest
    slower than the budget makes the create longer. API only: a driver that records when it was asked to boot."""
    import threading

    from flwrazure.localcloud.hosts import NullDriver
    from flwrazure.localcloud.server import LocalCloudServer
    from tests.helpers.cloud import clients_for

    class Guest(NullDriver):
        def __init__(self):
            super().__init__()
            self.booted, self.ready = None, threading.Event()

        def ready_budget(self) -> float:
            return 1.0

        def create(self, ctx, vm):
            self.booted = time.monotonic()

        def wait_ready(self, ctx, vm, timeout=300.0):
            return self.ready.wait(timeout)

    guest = Guest()
    server = LocalCloudServer(tmp_path / "local", config={"latency_by_type": {"Microsoft.Compute/virtualMachines": 2}},
                              driver=guest).start()
    try:
        cloud = clients_for(server)
        cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
        vnet = cloud.network.virtual_networks.begin_create_or_update("rg", "vnet", arm.vnet()).result()
        nsg = cloud.network.network_security_groups.begin_create_or_update("rg", "nsg", {"location": "eastus"}).result()
        nic = _nic(cloud, {"subnet": vnet.subnets[0].id, "nsg": nsg.id})
        began = time.monotonic()
        poller = cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id))
        time.sleep(1.5)
        assert guest.booted is not None and 0.8 <= guest.booted - began <= 1.4  # 2 s create, 1 s boot budget
        time.sleep(1.5)  # past the create's 2 s: still Creating, the agent has not signalled ready
        assert cloud.compute.virtual_machines.get("rg", "vm").provisioning_state == "Creating"
        guest.ready.set()
        assert poller.result().provisioning_state == "Succeeded"
        assert time.monotonic() - began >= 3.0
        # a fast guest: the create still takes its whole duration
        nic2 = _nic(cloud, {"subnet": vnet.subnets[0].id, "nsg": nsg.id}, name="nic2")
        began = time.monotonic()
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm2", arm.vm(nic2.id)).result()
        assert time.monotonic() - began >= 2.0
    finally:
        server.stop()
