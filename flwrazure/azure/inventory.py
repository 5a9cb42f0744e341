"""What exists in a cluster's resource group, read with one list call per resource kind."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flwrazure.azure.target import Target

KINDS = ("vnet", "nsg", "pip", "nic", "vm")
LABELS = {"vnet": "virtual network", "nsg": "network security group", "pip": "public IP", "nic": "network interface",
          "vm": "virtual machine", "disk": "disk", "rg": "resource group"}


def _as_dicts(pager) -> list[dict]:
    return [item.as_dict() for item in pager]


def listers(target: Target, rg: str) -> dict[str, Callable[[], list[dict]]]:
    net, comp = target.network, target.compute
    return {"vnet": lambda: _as_dicts(net.virtual_networks.list(rg)),
            "nsg": lambda: _as_dicts(net.network_security_groups.list(rg)),
            "pip": lambda: _as_dicts(net.public_ip_addresses.list(rg)),
            "nic": lambda: _as_dicts(net.network_interfaces.list(rg)),
            "vm": lambda: _as_dicts(comp.virtual_machines.list(rg)),
            "vmview": lambda: _as_dicts(comp.virtual_machines.list(rg, expand="instanceView")),
            "disk": lambda: _as_dicts(comp.disks.list_by_resource_group(rg))}


def snapshot(target: Target, rg: str, kinds: tuple[str, ...] = KINDS) -> dict[str, dict[str, dict]]:
    """{kind: {lower-case name: body}} for each kind, read in parallel (one list call each)."""
    fns = listers(target, rg)
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
        results = dict(zip(kinds, pool.map(lambda k: fns[k](), kinds), strict=True))
    return {kind: {item["name"].lower(): item for item in items} for kind, items in results.items()}


def group(target: Target, rg: str) -> dict | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return target.resources.resource_groups.get(rg).as_dict()
    except ResourceNotFoundError:
        return None


def tagged(target: Target, rg: str, cluster: str, cluster_id: str | None) -> list[dict]:
    """What in the cluster's resource group still carries its identity (one filtered list; a group that is gone
    holds nothing). Never the whole subscription: another cluster of the same name elsewhere is not ours."""
    from azure.core.exceptions import ResourceNotFoundError

    from flwrazure.plan import names

    tag, value = (names.TAG_ID, cluster_id) if cluster_id else (names.TAG_CLUSTER, cluster)
    try:
        found = _as_dicts(target.resources.resources.list_by_resource_group(
            rg, filter=f"tagName eq '{tag}' and tagValue eq '{value}'"))
    except ResourceNotFoundError:
        return []
    return [r for r in found if names.is_ours(r.get("tags"), cluster, cluster_id)]


def power_state(vm: dict) -> str:
    """What the VM is doing: its power state (running, deallocated, …), except while it is being created or
    deleted. A running VM whose provisioningState is Updating (an extension that Azure Policy or Defender adds) or
    Failed (e.g. such an extension failed) is running: its Flower services are there to be used."""
    props = vm.get("properties", {})
    statuses = (props.get("instanceView") or {}).get("statuses") or []
    power = next((s["code"].split("/", 1)[1] for s in statuses if s.get("code", "").startswith("PowerState/")), None)
    state = str(props.get("provisioningState", "")).lower()
    if state in ("creating", "deleting") or (power is None and state):
        return state
    return power or "unknown"


def provisioning(vm: dict | None) -> str | None:
    """The VM's provisioningState when it is not Succeeded (updating, failed, …), for display next to the power."""
    state = str(((vm or {}).get("properties") or {}).get("provisioningState", "")).lower()
    return state if state and state != "succeeded" else None


def vm_rows(snap: dict[str, dict[str, dict]], vms: list) -> list[dict]:
    """One row per planned VM: name, role, public IP, private IP, size, state ('missing' when absent)."""
    rows = []
    for v in vms:
        vm = snap.get("vmview", snap.get("vm", {})).get(v.vm.lower())
        nic = snap.get("nic", {}).get(v.nic.lower())
        pip = snap.get("pip", {}).get(v.public_ip.lower())
        private = None
        if nic:
            cfg = nic["properties"]["ipConfigurations"][0]["properties"]
            private = cfg.get("privateIPAddress")
        rows.append({"vm": v.vm, "role": v.role, "public_ip": (pip or {}).get("properties", {}).get("ipAddress"),
                     "private_ip": private,
                     "size": (vm or {}).get("properties", {}).get("hardwareProfile", {}).get("vmSize"),
                     "state": power_state(vm) if vm else "missing", "provisioning": provisioning(vm)})
    return rows
