"""teardown: delete what flwrazure created for a cluster, and nothing else.

The resource group goes as a whole only when flwrazure created it for the cluster, it still carries the cluster's
identity and created-group tags, and it holds nothing else, all read again right before its DELETE; otherwise only
resources tagged for the cluster are deleted, in dependency order (VMs, then NICs, then IPs/NSG/disks, then the
VNet). Afterwards nothing tagged for the cluster may be left."""

from __future__ import annotations

import time

from flwrazure import workers
from flwrazure.errors import FlwrazureError
from flwrazure.plan import names
from flwrazure.workstation import flwrconfig, state

KIND_OF = {"microsoft.compute/virtualmachines": "vm", "microsoft.network/networkinterfaces": "nic",
           "microsoft.network/publicipaddresses": "pip", "microsoft.network/networksecuritygroups": "nsg",
           "microsoft.compute/disks": "disk", "microsoft.network/virtualnetworks": "vnet",
           "microsoft.network/natgateways": "nat"}
# --private-clients: the NAT gateway goes once no subnet uses it (after the VNet), its public IP ("natpip", a public
# IP the gateway holds) after it: Azure refuses to delete either while in use
STAGES = [("vm",), ("nic",), ("pip", "nsg", "disk"), ("vnet",), ("nat",), ("natpip",)]
LISTED_AS = {"natpip": "pip"}  # the inventory kind a stage's kind is listed (and labelled) as


def plan(cluster: str) -> dict:
    from flwrazure.azure.target import connect

    st = state.load(cluster)
    target = connect(st["cloud"], st["subscription"])
    return {"cluster": cluster, "target": target, "state": st, "resource_group": st["resource_group"],
            **survey(target, cluster, st)}


def survey(target, cluster: str, st: dict) -> dict:
    """What is in the cluster's group now, whose it is, and how to delete the cluster's part: the whole group
    ("group") only when flwrazure created it for this cluster (recorded), the group itself still carries the
    cluster's identity and created-group tags, and nothing in it is someone else's; else only the cluster's own
    resources ("tagged"), with `why` saying so."""
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate

    rg = st["resource_group"]
    try:
        group = inventory.group(target, rg)
        with workers.pool(2) as pool:
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
        if kind == "pip" and res["name"].lower() == names.nat_public_ip(cluster).lower():
            kind = "natpip"
        # OS disks carry no tags: ours by name when detached or held by one of our VMs, never another cluster's
        disk = (kind == "disk" and res["name"].lower() in os_disks
                and (not res.get("managedBy") or res["managedBy"].lower() in owned)
                and not names.other_identity(res.get("tags"), cid))
        mine = res["id"].lower() in owned or disk
        entry = {"name": res["name"], "type": res["type"], "kind": kind, "id": res["id"]}
        if not mine:
            entry["owner"] = (res.get("tags") or {}).get(names.TAG_CLUSTER) \
                if names.other_identity(res.get("tags"), cid) else None
        (ours if mine else foreign).append(entry)
    if foreign:  # ARM's list lags deletions: what someone deleted moments ago is not in the way
        try:
            foreign = inventory.still_there(target, foreign)
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
    deleting = (group or {}).get("properties", {}).get("provisioningState") == "Deleting"
    group_tags = (group or {}).get("tags") or {}
    why = None
    if group and st.get("rg_created") and not names.created_group(group_tags, cluster, cid):
        why = (f"resource group {rg} no longer carries the tags create-cluster gave it for cluster {cluster} "
               f"(deleted and created again by someone else?): only the cluster's own resources are deleted, the "
               "group is kept")
    elif group and st.get("rg_created") and foreign:
        why = (f"resource group {rg} holds resources that are not cluster {cluster}'s ({foreign_names(foreign)}): "
               "only the cluster's own resources are deleted, the group is kept")
    mode = "group" if group and st.get("rg_created") and why is None else "tagged"
    return {"group_exists": bool(group), "group_deleting": deleting, "group_tags": group_tags, "mode": mode,
            "why": why, "resources": ours, "foreign": foreign,
            "addresses": {k: v for k, v in addresses.items() if v}}


def foreign_names(foreign: list[dict]) -> str:
    return ", ".join(f["name"] + (f" of cluster {f['owner']}" if f.get("owner") else "") for f in foreign)


def already_torn_down(cluster: str, purge: bool) -> dict | None:
    """teardown of a cluster that has no record: done before (its keys may be kept) or never created here. Nothing
    is left to delete, so a second teardown succeeds; with --purge it removes the keys a first one kept."""
    if state.exists(cluster):
        return None
    kept = state.cluster_dir(cluster)
    had_keys = kept.exists()
    if purge and had_keys:
        state.forget(cluster, True)
    return {"cluster": cluster, "mode": "none", "deleted": [], "waited": True, "kept_foreign": [],
            "recorded": False, "keys": str(kept) if had_keys and not purge else None,
            "purged": purge and had_keys, "known_clusters": state.known_clusters(), "next": []}


def finish_forgotten(cluster: str, st: dict, target) -> None:
    """After `teardown --no-wait`, once the group is seen gone (nothing of the cluster can be left in it): forget
    the cluster as teardown would have (with the keys when it was asked with --purge)."""
    _forget({"cluster": cluster, "state": st, "target": target},
            bool((st.get("teardown") or {}).get("purge")))


def _recheck(p: dict) -> None:
    """Read the group again right before deleting it as a whole (the prompt may have waited minutes): if it lost
    the cluster's tags or gained something not the cluster's, delete only the cluster's own resources."""
    fresh = survey(p["target"], p["cluster"], p["state"])
    if fresh["mode"] != "group" or not fresh["group_exists"]:
        why = fresh["why"] or p["why"]
        p.update(fresh)
        p["why"] = (f"since the prompt, {why}" if why else None)


def _empty_group_note(p: dict) -> str | None:
    """After a tagged teardown: the group, when nothing is left in it (e.g. two clusters shared it with
    --use-existing-group and this was the last one), is named; it is kept, as this cluster did not create it."""
    from flwrazure.azure import inventory

    target, rg = p["target"], p["resource_group"]
    try:
        if not p["group_exists"] or inventory.group(target, rg) is None:
            return None
        left = inventory.still_there(target, [r.as_dict() for r in
                                              target.resources.resources.list_by_resource_group(rg)])
    except Exception:  # only a note: the teardown itself is done
        return None
    if left:
        return None
    creator = p["group_tags"].get(names.TAG_CREATED_GROUP)
    made = (f"it was created for cluster {creator}" if creator and creator != p["cluster"]
            else f"flwrazure did not create it for cluster {p['cluster']}" if not p["state"].get("rg_created")
            else "it no longer carries the tags create-cluster gave it")
    return (f"resource group {rg} is empty now and was kept ({made}); delete it with `az group delete --name {rg}` "
            "if nothing else needs it.")


def _delete_fn(target, kind: str):
    net, comp = target.network, target.compute
    return {"vm": comp.virtual_machines.begin_delete, "disk": comp.disks.begin_delete,
            "nic": net.network_interfaces.begin_delete, "pip": net.public_ip_addresses.begin_delete,
            "nsg": net.network_security_groups.begin_delete, "vnet": net.virtual_networks.begin_delete,
            "nat": net.nat_gateways.begin_delete, "natpip": net.public_ip_addresses.begin_delete}[kind]


def _forget(p: dict, purge: bool) -> None:
    """The user's flwr connection to the cluster (config.toml, or the app's federation), then the cluster's local
    record: in this order, so a teardown stopped in between still finds the record and finishes on re-run."""
    flwrconfig.remove_connection(p["cluster"], p["state"].get("federation_pyproject"))
    state.forget(p["cluster"], purge)


def _forget_host_keys(p: dict, names_: list[str]) -> None:
    """Host keys belong to VMs: once a VM (or its address) is deleted, its pinned key must not meet the next VM
    Azure gives that address to."""
    from flwrazure.remote import ssh

    ssh.forget_hosts(state.cluster_dir(p["cluster"]) / "known_hosts",
                     [p["addresses"].get(n.lower()) for n in names_])


def execute(p: dict, wait: bool, purge: bool, progress=None) -> dict:

    from flwrazure.azure import groupdelete, inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.waiter import Waiter

    target, rg, cluster = p["target"], p["resource_group"], p["cluster"]
    # an interrupted teardown shows in `flwrazure list` as tearing-down (re-run it to finish)
    state.update(cluster, {"teardown_started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    deleted: list[str] = []
    recreated = None
    if p["mode"] == "group" and not p["group_deleting"]:
        _recheck(p)
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
        # ARM ids: the group's, then what it held (ARM deletes it with the group)
        deleted += [f"/subscriptions/{target.subscription}/resourceGroups/{rg}", *(r["id"] for r in p["resources"])]
        _forget_host_keys(p, list(p["addresses"]))  # accepted: everything in the group goes
        if not wait:  # the record stays until the group is seen gone (a later status or teardown forgets it)
            state.update(cluster, {"teardown": {"requested": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                "purge": purge}})
            return {"cluster": cluster, "mode": "group", "deleted": deleted, "waited": False, "why": None,
                    "kept_foreign": [], "note": None, "next": [f"flwrazure teardown --cluster {cluster}"]}
        recreated = groupdelete.wait_gone(target, rg, deletion)
    else:
        waiter = Waiter(inventory.listers(target, rg), target.poll)
        by_kind: dict[str, list[dict]] = {}
        for res in p["resources"]:
            if res["kind"]:
                by_kind.setdefault(res["kind"], []).append(res)

        def remove(kind: str, res: dict) -> None:
            listed = LISTED_AS.get(kind, kind)
            try:
                _delete_fn(target, kind)(rg, res["name"], polling=False)
                waiter.gone(listed, res["name"])
            except Exception as exc:
                raise translate(exc, f"{inventory.LABELS[listed]} {res['name']}") from exc
            deleted.append(res["id"])
            if listed in ("vm", "pip"):
                _forget_host_keys(p, [res["name"]])
            if progress:
                progress.advance("resources")

        with workers.pool(32) as pool:
            for stage in STAGES:
                jobs = [pool.submit(remove, kind, res) for kind in stage for res in by_kind.get(kind, [])]
                for job in jobs:
                    job.result()
    leftovers = [r["name"] for r in inventory.tagged(target, rg, cluster, p["state"].get("cluster_id"))]
    if leftovers:
        raise FlwrazureError(f"teardown left resources tagged for cluster {cluster}: {', '.join(leftovers)}. "
                             "Re-run `flwrazure teardown` to retry.")
    note = _empty_group_note(p) if p["mode"] == "tagged" else None
    if p["mode"] == "group":
        still = recreated if recreated is not None else inventory.group(target, rg)
        if still is not None and names.is_ours(still.get("tags"), cluster, p["state"].get("cluster_id")):
            raise FlwrazureError(f"resource group {rg} still exists after teardown: re-run `flwrazure teardown`.")
        if still is not None:
            note = (f"resource group {rg} was deleted, and a group of that name exists again (created since, not "
                    f"cluster {cluster}'s): it is kept.")
    _forget(p, purge or bool((p["state"].get("teardown") or {}).get("purge")))
    return {"cluster": cluster, "mode": p["mode"], "deleted": deleted, "waited": True,
            "kept_foreign": [f["id"] for f in p["foreign"]], "why": p.get("why"), "note": note, "next": []}
