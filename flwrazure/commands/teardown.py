"""teardown: delete what flwrazure created for a cluster, and nothing else.

The resource group goes as a whole only when flwrazure created it and it holds nothing foreign; otherwise only
resources tagged for the cluster are deleted, in dependency order (VMs, then NICs, then IPs/NSG/disks, then the
VNet). Afterwards nothing tagged for the cluster may be left."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flwrazure.errors import FlwrazureError
from flwrazure.plan import names
from flwrazure.workstation import flwrconfig, state

KIND_OF = {"microsoft.compute/virtualmachines": "vm", "microsoft.network/networkinterfaces": "nic",
           "microsoft.network/publicipaddresses": "pip", "microsoft.network/networksecuritygroups": "nsg",
           "microsoft.compute/disks": "disk", "microsoft.network/virtualnetworks": "vnet"}
STAGES = [("vm",), ("nic",), ("pip", "nsg", "disk"), ("vnet",)]


def plan(cluster: str) -> dict:
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect

    st = state.load(cluster)
    target = connect(st["cloud"], st["subscription"])
    rg = st["resource_group"]
    try:
        group = inventory.group(target, rg)
        with ThreadPoolExecutor(max_workers=2) as pool:
            listed = pool.submit(lambda: [r.as_dict() for r in target.resources.resources.list_by_resource_group(rg)]
                                 if group else [])
            pips = pool.submit(lambda: inventory.snapshot(target, rg, ("pip",))["pip"] if group else {})
            in_group, pips = listed.result(), pips.result()
    except Exception as exc:
        raise translate(exc, f"resource group {rg}") from exc
    vms = names.all_vms(cluster, st["clients"])
    os_disks = {v.os_disk.lower() for v in vms}
    # the public address of each VM and IP we may delete: their pinned host keys go with them
    cid = st.get("cluster_id")
    address = {name: (pip.get("properties") or {}).get("ipAddress") for name, pip in pips.items()
               if names.is_ours(pip.get("tags"), cluster, cid)}
    addresses = {**address, **{v.vm.lower(): address.get(v.public_ip.lower()) for v in vms}}
    owned = names.owned(in_group, cluster, cid)  # with children, e.g. an extension Azure Policy put on our VM
    ours, foreign = [], []
    for res in in_group:
        kind = KIND_OF.get(res["type"].lower())
        # OS disks carry no tags: ours by name when detached or held by one of our VMs, never another cluster's
        disk = (kind == "disk" and res["name"].lower() in os_disks
                and (not res.get("managedBy") or res["managedBy"].lower() in owned)
                and not names.other_identity(res.get("tags"), cid))
        mine = res["id"].lower() in owned or disk
        (ours if mine else foreign).append({"name": res["name"], "type": res["type"], "kind": kind,
                                            "id": res["id"]})
    deleting = (group or {}).get("properties", {}).get("provisioningState") == "Deleting"
    mode = "group" if group and st.get("rg_created") and not foreign else "tagged"
    return {"cluster": cluster, "target": target, "state": st, "resource_group": rg, "group_exists": bool(group),
            "group_deleting": deleting, "mode": mode, "resources": ours, "foreign": foreign,
            "addresses": {k: v for k, v in addresses.items() if v}}


def _delete_fn(target, kind: str):
    net, comp = target.network, target.compute
    return {"vm": comp.virtual_machines.begin_delete, "disk": comp.disks.begin_delete,
            "nic": net.network_interfaces.begin_delete, "pip": net.public_ip_addresses.begin_delete,
            "nsg": net.network_security_groups.begin_delete, "vnet": net.virtual_networks.begin_delete}[kind]


def _forget(p: dict, purge: bool) -> None:
    """The cluster's local record and the user's flwr connection to it (config.toml, or the app's federation)."""
    state.forget(p["cluster"], purge)
    flwrconfig.remove_connection(p["cluster"], p["state"].get("federation_pyproject"))


def _forget_host_keys(p: dict, names_: list[str]) -> None:
    """Host keys belong to VMs: once a VM (or its address) is deleted, its pinned key must not meet the next VM
    Azure gives that address to."""
    from flwrazure.remote import ssh

    ssh.forget_hosts(state.cluster_dir(p["cluster"]) / "known_hosts",
                     [p["addresses"].get(n.lower()) for n in names_])


def execute(p: dict, wait: bool, purge: bool, progress=None) -> dict:
    import time

    from flwrazure.azure import groupdelete, inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.waiter import Waiter

    target, rg, cluster = p["target"], p["resource_group"], p["cluster"]
    # an interrupted teardown shows in `flwrazure list` as tearing-down (re-run it to finish)
    state.update(cluster, {"teardown": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    deleted: list[str] = []
    if p["mode"] == "group":
        deletion = None
        if not p["group_deleting"]:
            if wait:  # follow Azure's own operation: it says when the deletion failed
                deletion = groupdelete.begin(target, rg)
            else:
                try:
                    target.resources.resource_groups.begin_delete(rg, polling=False)
                except Exception as exc:
                    raise translate(exc, f"resource group {rg}") from exc
        deleted.append(f"resource group {rg}")
        _forget_host_keys(p, list(p["addresses"]))  # accepted: everything in the group goes
        if not wait:
            _forget(p, purge)
            return {"cluster": cluster, "mode": "group", "deleted": deleted, "waited": False}
        groupdelete.wait_gone(target, rg, deletion)
    else:
        waiter = Waiter(inventory.listers(target, rg), target.poll)
        by_kind: dict[str, list[dict]] = {}
        for res in p["resources"]:
            if res["kind"]:
                by_kind.setdefault(res["kind"], []).append(res)

        def remove(kind: str, res: dict) -> None:
            try:
                _delete_fn(target, kind)(rg, res["name"], polling=False)
                waiter.gone(kind, res["name"])
            except Exception as exc:
                raise translate(exc, f"{inventory.LABELS[kind]} {res['name']}") from exc
            deleted.append(f"{inventory.LABELS[kind]} {res['name']}")
            if kind in ("vm", "pip"):
                _forget_host_keys(p, [res["name"]])
            if progress:
                progress.advance("resources")

        with ThreadPoolExecutor(max_workers=32) as pool:
            for stage in STAGES:
                jobs = [pool.submit(remove, kind, res) for kind in stage for res in by_kind.get(kind, [])]
                for job in jobs:
                    job.result()
    leftovers = [r["name"] for r in inventory.tagged(target, rg, cluster, p["state"].get("cluster_id"))]
    if leftovers:
        raise FlwrazureError(f"teardown left resources tagged for cluster {cluster}: {', '.join(leftovers)}. "
                             "Re-run `flwrazure teardown` to retry.")
    if p["mode"] == "group" and inventory.group(target, rg) is not None:
        raise FlwrazureError(f"resource group {rg} still exists after teardown: re-run `flwrazure teardown`.")
    _forget(p, purge)
    return {"cluster": cluster, "mode": p["mode"], "deleted": deleted, "waited": True,
            "kept_foreign": [f["name"] for f in p["foreign"]]}
