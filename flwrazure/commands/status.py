"""status: the cluster's VMs (power state, addresses), its inbound rules, Flower version and port plan."""

from __future__ import annotations

import dataclasses

from flwrazure.commands import in_background
from flwrazure.commands.create import network_of
from flwrazure.plan import names, silo, spot, versions
from flwrazure.workstation import state


def run(cluster: str) -> dict:
    from flwrazure.azure import inventory, prices
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect

    st = state.load(cluster)
    finish = unfinished(cluster, st)
    target = connect(st["cloud"], st["subscription"])
    rg = st["resource_group"]
    private = bool(st.get("private_clients"))
    priced = in_background(prices.lookup, target, st["location"], prices.cluster_sizes(st),
                           prices.cluster_disks(st), 8.0, private, name="prices")
    # the lists beside the group's read (one round trip less); they are used only when the group exists
    listed = in_background(inventory.snapshot, target, rg, ("vmview", "nic", "pip", "nsg") + (("nat",) if private else ()),
                           name="lists")
    try:
        group = inventory.group(target, rg)
    except Exception as exc:
        raise translate(exc, f"resource group {rg}") from exc
    if group is None or (group.get("properties") or {}).get("provisioningState") == "Deleting":
        gone = _gone(cluster, st, target, group, finish)
        if gone is not None:
            return gone
    vms = names.all_vms(cluster, st["clients"])
    rules_out: list[dict] = []
    snap: dict = {}
    rows = [{"vm": v.vm, "role": v.role, "public_ip": None, "private_ip": None, "size": None, "state": "missing",
             "provisioning": None} for v in vms]
    if group is not None:
        try:
            snap = listed.result()
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
        rows = spot.mark_evicted(inventory.vm_rows(snap, vms), bool(st.get("paused")))
        nsg = snap["nsg"].get(names.nsg(cluster).lower())
        for r in (nsg or {}).get("properties", {}).get("securityRules", []):
            p = r["properties"]
            rules_out.append({"name": r["name"], "priority": p["priority"], "port": _port(p.get("destinationPortRange")),
                              "sources": p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix")],
                              "destination": p.get("destinationAddressPrefix"), "access": p["access"]})
    data = st.get("client_data") or {}  # recorded when start copied it: no remote call
    for row in rows:
        if row["role"] == "client":
            row["data_path"] = (data.get(row["vm"]) or {}).get("path")
            row["data_bytes"] = (data.get(row["vm"]) or {}).get("bytes")
    plan = versions.port_plan(st["flwr_version"])
    seen: dict = {}  # the SuperLink's node list, when _services could ask it
    online = _services(st, rows, plan, seen) if st.get("started") and group is not None else None
    try:
        est = priced.result(timeout=30)
    except Exception:  # no price known: no estimate
        est = None
    power = cluster_power([r["state"] for r in rows]) if group is not None else "missing"
    return {"power": power, "paused": power == "paused", "cost": est.to_dict() if est else None,
            "interrupted": finish is not None, "next": [finish] if finish else _next(cluster, st, power),
            "cluster": cluster, "cloud": st["cloud"], "resource_group": rg, "location": st["location"],
            "resource_group_exists": group is not None, "flwr_version": st["flwr_version"],
            "port_plan": dataclasses.asdict(plan),
            "vms": rows, "rules": sorted(rules_out, key=lambda r: r["priority"]),
            "network": network_of(private, st.get("subnet_prefix") or "", snap, cluster),
            "secure": st.get("secure"), "supernodes_online": online,
            "silos": [silo.online_state(rec, seen.get("nodes")) for _, rec in sorted((st.get("silos") or {}).items())]}


def _next(cluster: str, st: dict, power: str) -> list[str]:
    """What to run next on a cluster whose group exists: resume a paused one, start Flower on one without it."""
    if power in ("paused", "partly paused", "evicted"):
        return [f"flwrazure resume --cluster {cluster}"]
    if power == "running" and not st.get("started"):
        return [f"flwrazure start --cluster {cluster}"]
    return []


def _port(text: str | None) -> int | str | None:
    """A rule's destination port as a number (open-ports says 8000, so does status); a range ("8000-8001") or "*"
    as Azure spells it."""
    return int(text) if text and text.isdigit() else text


def unfinished(cluster: str, st: dict) -> str | None:
    """The command that finishes the cluster's create-cluster when it was interrupted (Ctrl-C, or killed: its
    record still says "creating" while no command works on the cluster); None when it finished or runs now."""
    if st.get("status") == "interrupted" or (st.get("status") == "creating" and not state.busy(cluster)):
        from flwrazure.commands.doctor import create_command

        return (st.get("interrupted") or {}).get("next") or create_command(st)
    return None


def _gone(cluster: str, st: dict, target, group: dict | None, finish: str | None = None) -> dict | None:
    """The status of a cluster whose resource group is gone or going: after `teardown --no-wait` the check
    teardown skipped (the group gone, so nothing of the cluster is left) is finished here and the cluster forgotten;
    a group deleted outside flwrazure is said to be gone, nothing billed, with the next step. None: a group being
    deleted by someone else (its resources are still there until it is gone)."""
    rg = st["resource_group"]
    base = {"cluster": cluster, "cloud": st["cloud"], "resource_group": rg, "location": st["location"],
            "resource_group_exists": group is not None, "flwr_version": st["flwr_version"], "vms": [], "rules": [],
            "paused": False, "secure": st.get("secure"), "supernodes_online": None, "interrupted": finish is not None,
            "network": network_of(bool(st.get("private_clients")), st.get("subnet_prefix") or "", {}, cluster)}
    if st.get("teardown"):  # `teardown --no-wait` asked for the group's deletion
        if group is not None:
            return {**base, "power": "being deleted", "cost": None, "forgotten": False,
                    "note": f"resource group {rg} is being deleted (teardown --no-wait; teardown waits for it, then "
                            "forgets the cluster)",
                    "next": [f"flwrazure teardown --cluster {cluster}"]}
        from flwrazure.commands import teardown

        teardown.finish_forgotten(cluster, st, target)
        return {**base, "power": "deleted", "cost": _nothing_billed(rg), "forgotten": True,
                "note": f"resource group {rg} is gone: cluster {cluster} is torn down and forgotten", "next": []}
    if group is not None:
        return None
    if finish is not None:  # interrupted before its resource group was created
        return {**base, "power": "missing", "cost": _nothing_billed(rg), "forgotten": False,
                "note": f"create-cluster was interrupted before resource group {rg} was created: nothing of cluster "
                        f"{cluster} exists or is billed",
                "next": [finish, f"flwrazure teardown --cluster {cluster}"]}
    from flwrazure.commands.doctor import create_command

    return {**base, "power": "deleted", "cost": _nothing_billed(rg), "forgotten": False,
            "note": f"resource group {rg} no longer exists (deleted outside flwrazure): nothing of cluster "
                    f"{cluster} is left or billed (teardown forgets it, create-cluster creates it again)",
            "next": [f"flwrazure teardown --cluster {cluster}", create_command(st)]}


def _nothing_billed(rg: str) -> dict:
    from flwrazure.plan.cost import Estimate

    return Estimate(0.0, 0.0, [], [], f"resource group {rg} no longer exists").to_dict()


def _services(st: dict, rows: list[dict], plan, seen: dict) -> int | None:
    """Each VM's Flower service state (over SSH, all VMs at once, into `rows`); returns the SuperNodes the
    SuperLink sees online (None when it could not be asked), and puts its node list by node id in seen["nodes"]
    (for the silos' online state)."""
    from flwrazure import workers
    from flwrazure.azure.target import no_hosts
    from flwrazure.commands.start import SUPERLINK, SUPERNODE
    from flwrazure.plan import layout as layout_
    from flwrazure.plan.services import Layout
    from flwrazure.remote import daemons, flwradmin, ssh

    if no_hosts(st["cloud"]):  # API-only VMs: their addresses are not on this machine, send nothing there
        for row in rows:
            row["service"] = "no sandbox host (API-only VM)"
        return None
    layout = Layout(f"/home/{st['admin_user']}")
    known = state.cluster_dir(st["cluster"]) / "known_hosts"
    listed: list = []

    server = next((r for r in rows if r["role"] == "server"), None)

    def probe(row: dict) -> None:
        row["service"] = "unreachable"
        hop = layout_.route(row, server)
        if row["state"] != "running" or not hop:
            row["service"] = "vm not running"
            return
        try:
            conn = ssh.connect(hop[0], st["admin_user"], st["ssh_private_key"], known, via=hop[1])
            unit = SUPERLINK if row["role"] == "server" else SUPERNODE
            with conn:
                kind = (st.get("supervisors") or {}).get(row["vm"], daemons.SYSTEMD)
                row["service"] = daemons.state(conn, unit, kind, layout)
                if row["role"] == "server" and row["service"] == "active":
                    adm = flwradmin.setup(conn, layout, st["flwr_version"], plan.control, bool(st.get("secure")))
                    listed.append(flwradmin.nodes(conn, adm))
        except Exception as exc:  # status reports; it does not fail on one unreachable VM
            row["service"] = f"unreachable ({type(exc).__name__})"

    with workers.pool(min(16, len(rows))) as pool:
        list(pool.map(probe, rows))
    if not listed or listed[0] is None:
        return None
    seen["nodes"] = {str(n.get("node-id")): n for n in listed[0]}
    if st.get("secure"):  # node ids are known only where flwrazure registered the keys
        clients = [r["vm"] for r in rows if r["role"] == "client"]
        seen = flwradmin.by_vm(st.get("registered_supernodes") or {}, listed[0], clients)
        for row in rows:
            if row["vm"] in seen:
                row["supernode"] = seen[row["vm"]]
    return flwradmin.count_online(listed[0])


def cluster_power(states: list[str]) -> str:
    """The cluster as a whole from its VMs' power states: running, paused (every VM deallocated: compute is
    not billed), partly paused, evicted (Azure evicted Spot clients; the others run), or the mix as it is (e.g.
    while starting)."""
    if "evicted" in states and all(s in ("running", "deallocated", "evicted") for s in states):
        return "evicted"
    if states and all(s == "deallocated" for s in states):
        return "paused"
    if states and all(s == "running" for s in states):
        return "running"
    if any(s == "deallocated" for s in states) and all(s in ("running", "deallocated") for s in states):
        return "partly paused"
    return "changing" if any(s in ("starting", "deallocating", "stopping", "creating", "updating") for s in states) \
        else "incomplete"
