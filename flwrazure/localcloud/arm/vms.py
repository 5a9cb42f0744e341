"""virtualMachines (and the managed OS disks they create): validation like the compute RP, quota and SKU checks,
provisioning and power-state transitions as LROs, deleteOption cascades, and the host driver hooks that turn a
VM into a sandbox host (a later issue plugs a real driver in; the default one does nothing)."""

from __future__ import annotations

import base64
import secrets
import struct
import time
import uuid

from flwrazure.localcloud.arm import catalog as cat
from flwrazure.localcloud.arm import extensions, nics, quota, spot, timing, validate
from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm.common import (
    Ctx,
    Resp,
    async_headers,
    clone,
    location,
    page,
    provisioning_state,
    require_group,
    rid,
    same_location,
    set_state,
    tags,
)
from flwrazure.localcloud.arm.errors import ArmError, invalid_parameter, not_found
from flwrazure.localcloud.arm.operations import now_iso

NS = "Microsoft.Compute"
VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
NIC = "Microsoft.Network/networkInterfaces"
# The compute API takes RSA keys of 2048 bits or more and Ed25519 keys; ECDSA, DSA and shorter RSA keys get
# InvalidParameter on linuxConfiguration.ssh.publicKeys.keyData at the VM PUT.
SSH_KEY_TYPES = {"ssh-rsa", "ssh-ed25519"}
MIN_RSA_BITS = 2048
IMMUTABLE = [("osProfile", "adminUsername"), ("osProfile", "computerName"),
             ("storageProfile", "imageReference"), ("storageProfile", "osDisk", "name")]


def _new_mac(ctx) -> str:
    """A NIC's MAC as Azure shows it once a VM uses the NIC (`00-0D-3A-23-9A-49`: Microsoft's prefix, upper-case,
    hyphens), different from every other NIC's in this cloud: the guest's interface carries it, and two alike on
    one bridge would take each other's packets. Kept by the NIC for its life (across deallocate/start)."""
    taken = {rec["body"]["properties"].get("macAddress") for rec in ctx.store.all_of_type(NIC)}
    while True:
        mac = "00-0D-3A-" + "-".join(f"{b:02X}" for b in secrets.token_bytes(3))
        if mac not in taken:
            return mac


def _dig(obj: dict, path: tuple) -> object:
    for key in path:
        obj = (obj or {}).get(key) if isinstance(obj, dict) else None
    return obj


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The length-prefixed fields of an SSH public key blob (RFC 4253: type, then e and n for RSA)."""
    out, i = [], 0
    while i < len(blob):
        (length,) = struct.unpack(">I", blob[i:i + 4])
        out.append(blob[i + 4:i + 4 + length])
        if len(out[-1]) != length:
            raise ValueError
        i += 4 + length
    if not out:
        raise ValueError
    return out


def _check_ssh_key(data: str) -> None:
    target = "linuxConfiguration.ssh.publicKeys.keyData"
    parts = (data or "").split()
    try:
        if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
            raise ValueError
        fields = _ssh_strings(base64.b64decode(parts[1], validate=True))
        if fields[0].decode() != parts[0]:
            raise ValueError
        if parts[0] == "ssh-rsa" and (len(fields) != 3 or int.from_bytes(fields[2], "big").bit_length() < MIN_RSA_BITS):
            raise ValueError
        if parts[0] == "ssh-ed25519" and (len(fields) != 2 or len(fields[1]) != 32):
            raise ValueError
    except (ValueError, struct.error, UnicodeDecodeError):
        raise invalid_parameter("The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
                                target) from None


STORAGE_TYPES = {t.lower(): t for t in ("Standard_LRS", "Premium_LRS", "StandardSSD_LRS", "UltraSSD_LRS",
                                          "Premium_ZRS", "StandardSSD_ZRS", "PremiumV2_LRS")}


def _check_capabilities(ctx: Ctx, size: str, image: dict, name: str, props_in: dict) -> None:
    """What the size can boot and attach, as the compute RP checks it at the PUT (400, nothing created)."""
    caps = cat.capabilities(ctx.catalog, size)
    gen, arch = cat.image_facts(ctx.catalog, f"{image.get('publisher')}:{image.get('offer')}:{image.get('sku')}")
    if gen not in caps["HyperVGenerations"].split(","):
        number = gen.removeprefix("V")
        raise ArmError(400, "BadRequest",
                       f"The selected VM size '{size}' cannot boot Hypervisor Generation '{number}'. If this was a "
                       "Create operation please check that the Hypervisor Generation of the Image matches the "
                       "Hypervisor Generation of the selected VM Size. If this was an Update operation please "
                       f"select a Hypervisor Generation '{number}' VM Size. For more information, see "
                       "https://aka.ms/azuregen2vm")
    if arch.lower() != caps["CpuArchitectureType"].lower():
        # Azure refuses this at the PUT; the public reports found do not quote its wording, so this one is ours
        raise ArmError(400, "BadRequest",
                       f"The selected VM size '{size}' has CPU architecture '{caps['CpuArchitectureType']}' and "
                       f"cannot boot an image of architecture '{arch}'. Choose an image of architecture "
                       f"'{caps['CpuArchitectureType']}' or another VM size.")
    disk = _dig(props_in, ("storageProfile", "osDisk")) or {}
    wanted = _dig(disk, ("managedDisk", "storageAccountType"))
    if wanted is None:
        return
    storage = validate.enum(wanted, STORAGE_TYPES, "StorageAccountTypes",
                            "properties.storageProfile.osDisk.managedDisk.storageAccountType")
    if storage.startswith("Premium") and not caps["PremiumIO"]:
        raise invalid_parameter(f"Requested operation cannot be performed because the VM size {size} does not "
                                f"support the storage account type {storage} of disk "
                                f"'{disk.get('name') or name + '_OsDisk_1'}'. Consider updating the VM to a size "
                                "that supports Premium storage.", "osDisk.managedDisk.storageAccountType")


def _validate(ctx: Ctx, rid_: str, rg: str, name: str, loc: str, props_in: dict, existing: dict | None) -> tuple[dict, list]:
    """Compute RP checks; returns (properties to store, NIC ids)."""
    size = validate.required(_dig(props_in, ("hardwareProfile", "vmSize")), "vmSize", "properties.hardwareProfile")
    info = quota.size_info(ctx.catalog, size)
    if info is None:
        raise invalid_parameter(f"The value {size} provided for the VM size is not valid. The valid sizes in the "
                                f"current region are: {', '.join(ctx.catalog['vm_sizes'])}.", "vmSize")
    size = next(s for s in ctx.catalog["vm_sizes"] if s.lower() == size.lower())
    if cat.size_restricted(ctx.catalog, size, loc):
        raise ArmError(409, "SkuNotAvailable",
                       f"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: "
                       f"{size}' is currently not available in location '{loc}'. Please try another size or deploy "
                       "to a different location or different zone. See https://aka.ms/azureskunotavailable for "
                       "details.")
    image = _dig(props_in, ("storageProfile", "imageReference")) or {}
    key = f"{image.get('publisher')}:{image.get('offer')}:{image.get('sku')}".lower()
    if not image or key not in {i.lower() for i in ctx.catalog["images"]}:
        raise ArmError(404, "PlatformImageNotFound",
                       f"The platform image '{image.get('publisher')}:{image.get('offer')}:{image.get('sku')}:"
                       f"{image.get('version', 'latest')}' is not available. Verify that all fields in the storage "
                       "profile are correct. For more details about storage profile information, please refer to "
                       "https://aka.ms/storageprofile")
    _check_capabilities(ctx, size, image, name, props_in)
    os_in = props_in.get("osProfile") or {}
    user = os_in.get("adminUsername")
    validate.admin_username(user)
    computer = os_in.get("computerName") or name
    validate.computer_name(computer)
    linux = os_in.get("linuxConfiguration") or {}
    keys = _dig(linux, ("ssh", "publicKeys")) or []
    for k in keys:
        if k.get("path") != f"/home/{user}/.ssh/authorized_keys":
            raise invalid_parameter(f"Destination path for SSH public keys is currently limited to its default "
                                    f"value /home/{user}/.ssh/authorized_keys due to a known issue in Linux "
                                    "provisioning agent.", "linuxConfiguration.ssh.publicKeys.path")
        _check_ssh_key(k.get("keyData"))
    if linux.get("disablePasswordAuthentication") and not keys:
        raise invalid_parameter("Required parameter 'linuxConfiguration.ssh.publicKeys' is missing (null).",
                                "linuxConfiguration.ssh.publicKeys")
    if not linux.get("disablePasswordAuthentication") and not os_in.get("adminPassword") and not keys:
        raise invalid_parameter("Required parameter 'adminPassword' is missing (null).", "adminPassword")
    nic_refs = _dig(props_in, ("networkProfile", "networkInterfaces")) or []
    if not nic_refs:
        raise invalid_parameter("Required parameter 'networkProfile' is missing (null).", "networkProfile")
    nic_ids = []
    for ref in nic_refs:
        nic_id = ref.get("id") or ""
        nic = ctx.store.get(nic_id)
        if nic is None:
            raise ArmError(404, "NotFound", f"Resource {nic_id} not found.")
        holder = (nic["body"]["properties"].get("virtualMachine") or {}).get("id", "")
        if holder and holder.lower() != rid_.lower():
            raise ArmError(400, "NicInUse", f"Network Interface {nic_id} is used by existing resource {holder}. "
                           "In order to delete the network interface, it must be dissociated from the resource. To "
                           "learn more, see aka.ms/deletenic.")
        if nic["body"]["location"] != loc:
            raise invalid_parameter(f"The network interface {nic_id} is in location '{nic['body']['location']}', "
                                    f"but the virtual machine is in location '{loc}'.", "networkInterfaces")
        nic_ids.append(nic["body"]["id"])
    if existing:
        for path in IMMUTABLE:
            old, new = _dig(existing["properties"], path), _dig(props_in, path)
            if path[-1] == "computerName":
                new = computer
            if new is not None and old is not None and str(old).lower() != str(new).lower() and not (
                    isinstance(old, dict) and all(old.get(k) == v for k, v in new.items())):
                raise ArmError(409, "PropertyChangeNotAllowed",
                               f"Changing property '{'.'.join(path)}' is not allowed.", target=".".join(path))
    return _render(ctx, rg, name, size, computer, props_in, existing), nic_ids


def _render(ctx: Ctx, rg: str, name: str, size: str, computer: str, props_in: dict, existing: dict | None) -> dict:
    old = (existing or {}).get("properties", {})
    props = clone(props_in)
    props["hardwareProfile"] = {**props.get("hardwareProfile", {}), "vmSize": size}
    sp = props.setdefault("storageProfile", {})
    image = sp["imageReference"]
    image.setdefault("version", "latest")
    image["exactVersion"] = "24.04.202511200"
    disk = sp.setdefault("osDisk", {})
    disk_name = _dig(old, ("storageProfile", "osDisk", "name")) or disk.get("name") or \
        f"{name}_OsDisk_1_{secrets.token_hex(16)}"
    disk.update({"osType": "Linux", "name": disk_name, "createOption": disk.get("createOption", "FromImage"),
                 "caching": disk.get("caching", "ReadWrite"), "deleteOption": disk.get("deleteOption", "Detach"),
                 "diskSizeGB": disk.get("diskSizeGB", 30)})
    managed = disk.setdefault("managedDisk", {})
    premium = cat.capabilities(ctx.catalog, size)["PremiumIO"]
    managed["storageAccountType"] = STORAGE_TYPES[managed.get("storageAccountType",
                                                              "Premium_LRS" if premium else "Standard_LRS").lower()]
    managed["id"] = rid(ctx.sub, rg, DISK, disk_name)
    sp.setdefault("dataDisks", [])
    sp.setdefault("diskControllerType", "SCSI")
    osp = props["osProfile"]
    osp.pop("adminPassword", None)  # never echoed back, as on Azure
    osp["computerName"] = computer
    osp.setdefault("secrets", [])
    osp.setdefault("allowExtensionOperations", True)
    osp.setdefault("requireGuestProvisionSignal", True)
    lc = osp.setdefault("linuxConfiguration", {})
    lc.setdefault("disablePasswordAuthentication", False)
    lc.setdefault("provisionVMAgent", True)
    lc.setdefault("patchSettings", {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"})
    for ref in props["networkProfile"]["networkInterfaces"]:
        ref.setdefault("properties", {}).setdefault("deleteOption", "Detach")
    props.setdefault("securityProfile", {"securityType": "Standard"})
    props["vmId"] = old.get("vmId") or str(uuid.uuid4())
    props["timeCreated"] = old.get("timeCreated") or now_iso()
    return props


# Azure: the decoded customData may be 65535 bytes, i.e. 87380 base64 characters; the compute API's error names the
# latter (InvalidParameter, target customData, as quoted in public reports)
MAX_CUSTOM_DATA = 87380


def _custom_data(props_in: dict) -> str | None:
    value = (props_in.get("osProfile") or {}).get("customData")
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > MAX_CUSTOM_DATA:
            raise ValueError
        base64.b64decode(value, validate=True)
    except ValueError:
        raise invalid_parameter("Custom data in OSProfile must be in Base64 encoding and with a maximum length of "
                                f"{MAX_CUSTOM_DATA} characters.", "customData") from None
    return value


def put_vm(ctx: Ctx, rg: str, name: str) -> Resp:
    group = require_group(ctx, rg, for_write=True)
    validate.vm_name(name)
    canon_rg = group["body"]["name"]
    rid_ = rid(ctx.sub, canon_rg, VM, name)
    body_in = ctx.body or {}
    loc = location(ctx, body_in.get("location"), VM)
    with ctx.store.lock:
        existing = ctx.store.get(rid_)
        same_location(existing, loc, name, canon_rg)
        if existing and provisioning_state(existing) in ("Deleting", "Creating", "Updating"):
            raise ArmError(409, "OperationNotAllowed",
                           f"Operation 'PUT' is not allowed on VM '{name}' while it is "
                           f"{provisioning_state(existing).lower()}.")
        custom = _custom_data(body_in.get("properties") or {})
        if existing and custom is not None and custom != existing["meta"].get("custom_data", custom):
            raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'customData' is not allowed.",
                           target="customData")
        props, nic_ids = _validate(ctx, rid_, canon_rg, name, loc, body_in.get("properties") or {},
                                   existing["body"] if existing else None)
        props["osProfile"].pop("customData", None)  # never echoed back: GET omits it, as on Azure
        props.update(spot.check(ctx, name, props["hardwareProfile"]["vmSize"], body_in.get("properties") or {},
                                existing["body"]["properties"] if existing else None,
                                bool(existing) and existing["meta"].get("power") != "deallocated"))
        body = {"name": name, "id": rid_, "type": VM, "location": loc, "properties": props}
        if not existing or existing["meta"].get("power") != "deallocated":
            quota.check_cores(ctx, loc, props["hardwareProfile"]["vmSize"], rid_, spot.is_spot(props))
        if not existing:
            spot.check_capacity(ctx, body)
        tag = tags(body_in)
        if tag:
            body["tags"] = tag
        for key in ("zones", "identity", "plan"):
            if body_in.get(key):
                body[key] = body_in[key]
        if existing and existing["body"].get("resources"):  # extensions are kept across updates
            body["resources"] = existing["body"]["resources"]
        retry = existing is not None and provisioning_state(existing) == "Failed" and not existing["meta"].get("booted")
        props["provisioningState"] = "Creating" if not existing or retry else "Updating"
        meta = dict(existing["meta"]) if existing else {"power": "starting"}
        if retry:
            meta["power"] = "starting"
        if custom is not None and "custom_data" not in meta:
            meta["custom_data"] = custom
        ctx.store.put(rid_, body, meta)
        for nic_id in nic_ids:
            net.link(ctx, nic_id, "virtualMachine", rid_, add=True, single=True)
            nic = ctx.store.get(nic_id)["body"]["properties"]
            if not nic.get("macAddress"):
                nic["macAddress"] = _new_mac(ctx)
        response = clone(body)

    creating = not existing or retry
    total = ctx.latency(VM, "UPDATE" if not creating else "PUT")
    began = time.monotonic()

    def work() -> None:
        with ctx.store.lock:
            ctx.store.get(rid_)["meta"].pop("error", None)
        if not existing or not ctx.store.get(rid_)["meta"].get("booted"):
            _provision(ctx, rid_)
            # as on Azure, the create ends when the guest's provisioning agent signals ready (its users and keys
            # applied; the user data runs on after that), and not before the create's own duration
            ctx.driver.wait_ready(ctx, ctx.store.get(rid_)["body"])
            ctx.ops.stopping.wait(max(0.0, total - (time.monotonic() - began)))
        set_state(ctx, rid_, "Succeeded")
        if not existing:
            extensions.attach_policy(ctx, rid_)
            extensions.apply_failures(ctx, rid_)
        start_updating(ctx, rid_)

    def failed(exc: ArmError) -> None:
        set_state(ctx, rid_, "Failed")
        with ctx.store.lock:
            if ctx.store.get(rid_) is not None:
                ctx.store.get(rid_)["meta"]["error"] = exc.error_detail()
        if not existing:
            _set_power(ctx, rid_, "stopped")

    # the guest boots during the create: its host starts that long before the create's end (the platform's part
    # first, then the boot), so the VM is up when the create completes, not a boot later
    op = ctx.ops.start(provider=NS, location=loc, resource_id=rid_,
                       latency=max(0.0, total - ctx.driver.ready_budget()) if creating else total, work=work,
                       on_fail=failed, fail_with=ctx.faults.lro_failure("PUT", VM, rid_) or (
                           extensions.put_failure(ctx, rid_, name) if existing and not retry else None))
    op["create"] = creating
    return Resp(200 if existing else 201, response, async_headers(ctx, NS, loc, op))


def updating_seconds(config: dict) -> float:
    """The `vm_updating` knob: how long a running VM stays in provisioningState Updating after it has been
    provisioned (and, when the knob is set, every running VM from then on), as while Azure Policy or Defender
    install their extensions on it; 0 (default) = never."""
    value = config.get("vm_updating", 0) or 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ArmError(400, "InvalidConfig", "vm_updating is a number of seconds >= 0.")
    return float(value)


def start_updating(ctx: Ctx, rid_: str) -> None:
    """A running, provisioned VM goes Updating for `vm_updating` seconds (power state unchanged), then back."""
    seconds = updating_seconds(ctx.config)
    if not seconds:
        return
    with ctx.store.lock:
        rec = ctx.store.get(rid_)
        if rec is None or rec["meta"].get("power") != "running" or provisioning_state(rec) != "Succeeded":
            return
        rec["body"]["properties"]["provisioningState"] = "Updating"
        rec["meta"]["updating_until"] = time.time() + seconds
        ctx.store.mark_dirty(resource=rid_)
        loc = rec["body"]["location"]

    def done() -> None:
        with ctx.store.lock:
            rec = ctx.store.get(rid_)
            if rec is None or time.time() < rec["meta"].get("updating_until", 0) - 0.05:
                return  # gone, or a later start_updating extended it
            rec["meta"].pop("updating_until", None)
            if provisioning_state(rec) == "Updating":
                rec["body"]["properties"]["provisioningState"] = "Succeeded"
            ctx.store.mark_dirty(resource=rid_)

    ctx.ops.start(provider=NS, location=loc, resource_id=rid_, latency=seconds, work=done)


def start_updating_all(ctx: Ctx) -> None:
    """The knob was just set: every running VM is being updated from now on (a policy assignment reaching it)."""
    for rec in ctx.store.of_type(VM):
        start_updating(ctx, rec["body"]["id"])


def _provision(ctx: Ctx, rid_: str) -> None:
    """A new VM's disk and host, then running (booted: a later PUT or a restart does not create it again)."""
    with ctx.store.lock:
        disk_id = ctx.store.get(rid_)["body"]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
        has_disk = ctx.store.get(disk_id) is not None
    if not has_disk:
        _create_disk(ctx, rid_)
    ctx.driver.create(ctx, ctx.store.get(rid_)["body"])
    with ctx.store.lock:
        ctx.store.get(rid_)["meta"].update(power="running", booted=True)
        ctx.store.mark_dirty(resource=rid_)


def finish_interrupted_creates(ctx: Ctx) -> list[str]:
    """After a crash of the local cloud: the VMs whose create was acknowledged but not finished (the store settled
    them Succeeded, like a cloud that finishes its work while you are away) get their disk and host now; before,
    such a VM said Succeeded and never booted. Returns their ids."""
    with ctx.store.lock:
        vms = [r["body"]["id"] for r in ctx.store.of_type(VM)
               if r["meta"].get("power") == "starting" and not r["meta"].get("booted")
               and not r["meta"].get("error")]
    for vm_id in vms:
        _provision(ctx, vm_id)
    return vms


def _set_power(ctx: Ctx, rid_: str, power: str) -> None:
    with ctx.store.lock:
        rec = ctx.store.get(rid_)
        if rec is not None:
            rec["meta"]["power"] = power
            ctx.store.mark_dirty(resource=rid_)


def _create_disk(ctx: Ctx, vm_id: str) -> None:
    with ctx.store.lock:
        vm = ctx.store.get(vm_id)["body"]
        disk = vm["properties"]["storageProfile"]["osDisk"]
        disk_id = disk["managedDisk"]["id"]
        ctx.store.put(disk_id, {
            "name": disk["name"], "id": disk_id, "type": DISK, "location": vm["location"], "managedBy": vm_id,
            "sku": {"name": disk["managedDisk"]["storageAccountType"],
                    "tier": "Premium" if disk["managedDisk"]["storageAccountType"].startswith("Premium") else "Standard"},
            "properties": {"osType": "Linux", "hyperVGeneration": _generation(ctx, vm), "diskSizeGB": disk["diskSizeGB"],
                           "diskState": "Attached", "provisioningState": "Succeeded", "timeCreated": now_iso(),
                           "creationData": {"createOption": "FromImage", "imageReference": {
                               "id": f"/Subscriptions/{ctx.sub}/Providers/Microsoft.Compute/Locations/"
                                     f"{vm['location']}/Publishers/{vm['properties']['storageProfile']['imageReference']['publisher']}"}},
                           "uniqueId": str(uuid.uuid4())}}, {})


def _generation(ctx: Ctx, vm: dict) -> str:
    image = vm["properties"]["storageProfile"]["imageReference"]
    return cat.image_facts(ctx.catalog, f"{image.get('publisher')}:{image.get('offer')}:{image.get('sku')}")[0]


# Right after a VM is deleted, ARM still routes its GETs to Compute, which answers its own 404 (recording
# error-resource-not-found.json: code NotFound, no x-ms-failure-cause); later ARM's gateway answers ResourceNotFound.
# How long that lasts is not recorded: 60 s (scaled) is assumed.
RECENTLY_DELETED_S = 60.0


def _vm_or_404(ctx: Ctx, rg: str, name: str) -> dict:
    require_group(ctx, rg)
    vm_id = rid(ctx.sub, rg, VM, name)
    rec = ctx.store.get(vm_id)
    if rec is None:
        gone = ctx.store.tombstones.get(vm_id.lower())
        if gone is not None and time.monotonic() - gone < RECENTLY_DELETED_S * timing.scale(ctx.config):
            raise ArmError(404, "NotFound", "The entity was not found in this Azure location.", style="compute")
        raise not_found(VM, name, rg)
    return rec


def instance_view(rec: dict, ctx_store=None) -> dict:
    body, power = rec["body"], rec["meta"].get("power", "running")
    state = provisioning_state(rec)
    labels = {"running": "VM running", "starting": "VM starting", "stopping": "VM stopping",
              "stopped": "VM stopped", "deallocating": "VM deallocating", "deallocated": "VM deallocated"}
    t = body["properties"].get("timeCreated")
    prov = {"code": f"ProvisioningState/{state.lower()}", "level": "Error" if state == "Failed" else "Info",
            "displayStatus": f"Provisioning {state.lower()}", "time": t}
    error = rec["meta"].get("error")
    if state == "Failed" and error:  # as Azure: ProvisioningState/failed/<code> with the message
        prov.update(code=f"ProvisioningState/failed/{error['code']}", message=error["message"])
    ok = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": t}
    agent_ready = power == "running" and state == "Succeeded"
    disk = body["properties"]["storageProfile"]["osDisk"]["name"]
    return {
        "platformUpdateDomain": 0, "platformFaultDomain": 0, "computerName": body["properties"]["osProfile"]["computerName"],
        "osName": "ubuntu", "osVersion": "24.04",
        "vmAgent": {"vmAgentVersion": "2.15.0.1" if agent_ready else "Unknown",
                    "statuses": [{"code": "ProvisioningState/succeeded" if agent_ready else "ProvisioningState/Unavailable",
                                  "level": "Info" if agent_ready else "Warning",
                                  "displayStatus": "Ready" if agent_ready else "Not Ready",
                                  "message": "Guest Agent is running" if agent_ready else "VM status blob is found but not yet populated.",
                                  "time": now_iso()}],
                    "extensionHandlers": []},
        "disks": [{"name": disk, "statuses": [ok]}],
        "bootDiagnostics": {"consoleScreenshotBlobUri": f"local://bootdiagnostics/{body['name']}/screenshot.bmp",
                            "serialConsoleLogBlobUri": f"local://bootdiagnostics/{body['name']}/serialconsole.log"},
        "extensions": extensions.instance_views(ctx_store, body["id"]) if ctx_store is not None else [],
        "hyperVGeneration": cat.image_facts(cat.DEFAULT, ":".join(
            str(body["properties"]["storageProfile"]["imageReference"].get(k)) for k in ("publisher", "offer", "sku")))[0],
        "patchStatus": {
            "availablePatchSummary": {"status": "Unknown", "assessmentActivityId": None, "rebootPending": False,
                                      "criticalAndSecurityPatchCount": 0, "otherPatchCount": 0, "startTime": None,
                                      "lastModifiedTime": None, "error": None},
            "lastPatchInstallationSummary": {"status": "Unknown", "installationActivityId": None,
                                             "maintenanceWindowExceeded": False, "notSelectedPatchCount": 0,
                                             "excludedPatchCount": 0, "pendingPatchCount": 0,
                                             "installedPatchCount": 0, "failedPatchCount": 0, "startTime": None,
                                             "lastModifiedTime": None, "error": None},
            "configurationStatuses": [{"code": "PatchModeConfigurationState/Ready", "level": "Info",
                                       "displayStatus": "Status_PatchModeConfigurationState_Ready", "time": t}]},
        "isVMInStandbyPool": False,
        "statuses": [prov, {"code": f"PowerState/{power}", "level": "Info", "displayStatus": labels[power]}],
    }


def get_vm(ctx: Ctx, rg: str, name: str) -> Resp:
    rec = _vm_or_404(ctx, rg, name)
    body = clone(rec["body"])
    if "instanceview" in ctx.query.get("$expand", "").lower():
        body["properties"]["instanceView"] = instance_view(rec, ctx.store)
    return Resp(200, body)


def get_instance_view(ctx: Ctx, rg: str, name: str) -> Resp:
    return Resp(200, instance_view(_vm_or_404(ctx, rg, name), ctx.store))


def list_vms(ctx: Ctx, rg: str | None) -> Resp:
    if rg is not None:
        require_group(ctx, rg)
    with_view = "instanceview" in ctx.query.get("$expand", "").lower() or ctx.query.get("statusonly") == "true"
    items = []
    for rec in ctx.store.of_type(VM, rg):
        body = rec["body"]
        if with_view:
            body = clone(body)
            body["properties"]["instanceView"] = instance_view(rec, ctx.store)
        items.append(body)
    return page(ctx, items)


# power transitions: action -> (states allowed from, transient power state, final power state, driver method)
ACTIONS = {
    "start": ({"stopped", "deallocated", "running"}, "starting", "running", "start"),
    "deallocate": ({"running", "stopped", "deallocated", "starting"}, "deallocating", "deallocated", "stop"),
    "poweroff": ({"running", "stopped", "starting"}, "stopping", "stopped", "stop"),
    "restart": ({"running"}, "starting", "running", "restart"),
}


def action(ctx: Ctx, rg: str, name: str, verb: str) -> Resp:
    verb = verb.lower()
    if verb not in ACTIONS:
        raise ArmError(400, "InvalidResourceType", f"The resource type 'virtualMachines/{verb}' could not be found.")
    allowed, transient, final, method = ACTIONS[verb]
    with ctx.store.lock:
        rec = _vm_or_404(ctx, rg, name)
        power, state = rec["meta"].get("power"), provisioning_state(rec)
        if state in ("Creating", "Deleting") or power not in allowed:
            raise ArmError(409, "OperationNotAllowed",
                           f"Operation '{verb}' is not allowed on VM '{name}' since the VM is "
                           f"{'being ' + state.lower()[:-3] + 'ed' if state in ('Creating', 'Deleting') else power}.")
        if verb == "start" and power == "deallocated":
            quota.check_cores(ctx, rec["body"]["location"], rec["body"]["properties"]["hardwareProfile"]["vmSize"],
                              rec["body"]["id"], spot.is_spot(rec["body"]["properties"]))
            spot.check_capacity(ctx, rec["body"])
            if spot.is_spot(rec["body"]["properties"]):
                spot.check_price(ctx, "Start VM", rec["body"]["properties"]["hardwareProfile"]["vmSize"],
                                 rec["body"]["properties"]["billingProfile"]["maxPrice"])
        rec["meta"].pop("evicted", None)
        rec["meta"].pop("eviction_notice", None)
        rec["meta"]["power"] = transient
        ctx.store.mark_dirty(resource=rec["body"]["id"])
        rid_, loc = rec["body"]["id"], rec["body"]["location"]

    def work() -> None:
        if not (verb == "start" and power == "running") and not (verb == "deallocate" and power == "deallocated"):
            getattr(ctx.driver, method)(ctx, ctx.store.get(rid_)["body"])
        _set_power(ctx, rid_, final)

    op = ctx.ops.start(provider=NS, location=loc, resource_id=rid_, latency=ctx.latency(VM, verb), work=work,
                       on_fail=lambda exc: _set_power(ctx, rid_, power),
                       fail_with=ctx.faults.lro_failure("POST", VM, rid_))
    return Resp(202, None, async_headers(ctx, NS, loc, op, with_location=True))


def delete_vm(ctx: Ctx, rg: str, name: str) -> Resp:
    require_group(ctx, rg)
    rid_ = rid(ctx.sub, rg, VM, name)
    with ctx.store.lock:
        rec = ctx.store.get(rid_)
        if rec is None:
            return Resp(204)
        rec["body"]["properties"]["provisioningState"] = "Deleting"
        rec["meta"]["power"] = "deallocating" if rec["meta"].get("power") != "deallocated" else "deallocated"
        ctx.store.mark_dirty(resource=rid_)
        loc = rec["body"]["location"]
    op = ctx.ops.start(provider=NS, location=loc, resource_id=rid_, latency=ctx.latency(VM, "DELETE"),
                       work=lambda: purge_vm(ctx, ctx.store.get(rid_)),
                       on_fail=lambda exc: set_state(ctx, rid_, "Failed"),
                       fail_with=ctx.faults.lro_failure("DELETE", VM, rid_))
    return Resp(202, None, async_headers(ctx, NS, loc, op, with_location=True))


def purge_vm(ctx: Ctx, rec: dict | None) -> None:
    """Delete a VM now: stop its host, then apply each deleteOption (NIC, its public IPs, OS disk)."""
    if rec is None:
        return
    body = rec["body"]
    ctx.driver.delete(ctx, body)
    with ctx.store.lock:
        for ref in body["properties"]["networkProfile"]["networkInterfaces"]:
            nic = ctx.store.get(ref["id"])
            if nic is None:
                continue
            nic["body"]["properties"].pop("virtualMachine", None)
            if ref.get("properties", {}).get("deleteOption") == "Delete":
                pips = [cfg["properties"]["publicIPAddress"] for cfg in nic["body"]["properties"]["ipConfigurations"]
                        if cfg["properties"].get("publicIPAddress")]
                nics.unlink_nic(ctx, nic["body"])
                ctx.store.delete(ref["id"])
                for pip_ref in pips:
                    pip = ctx.store.get(pip_ref["id"])
                    option = (pip_ref.get("properties") or {}).get("deleteOption") or \
                        (pip["body"]["properties"].get("deleteOption") if pip else None)
                    if pip is not None and option == "Delete":
                        ctx.store.delete(pip_ref["id"])
        disk = body["properties"]["storageProfile"]["osDisk"]
        disk_rec = ctx.store.get(disk["managedDisk"]["id"])
        if disk_rec is not None:
            if disk.get("deleteOption") == "Delete":
                ctx.store.delete(disk["managedDisk"]["id"])
            else:
                disk_rec["body"].pop("managedBy", None)
                disk_rec["body"]["properties"]["diskState"] = "Unattached"
        extensions.purge(ctx, body["id"])
        ctx.store.delete(body["id"])
        ctx.store.tombstones[body["id"].lower()] = time.monotonic()


# -- disks -----------------------------------------------------------------------------------------------
def get_disk(ctx: Ctx, rg: str, name: str) -> Resp:
    require_group(ctx, rg)
    rec = ctx.store.get(rid(ctx.sub, rg, DISK, name))
    if rec is None:
        raise not_found(DISK, name, rg)
    return Resp(200, rec["body"])


def list_disks(ctx: Ctx, rg: str | None) -> Resp:
    if rg is not None:
        require_group(ctx, rg)
    return page(ctx, [rec["body"] for rec in ctx.store.of_type(DISK, rg)])


def delete_disk(ctx: Ctx, rg: str, name: str) -> Resp:
    require_group(ctx, rg)
    rid_ = rid(ctx.sub, rg, DISK, name)
    with ctx.store.lock:
        rec = ctx.store.get(rid_)
        if rec is None:
            return Resp(204)
        if rec["body"].get("managedBy"):
            raise ArmError(409, "OperationNotAllowed",
                           f"Disk {name} is attached to VM {rec['body']['managedBy']}.")
        loc = rec["body"]["location"]
    op = ctx.ops.start(provider=NS, location=loc, resource_id=rid_, latency=ctx.latency(DISK, "DELETE"),
                       work=lambda: ctx.store.delete(rid_))
    return Resp(202, None, async_headers(ctx, NS, loc, op, with_location=True))
