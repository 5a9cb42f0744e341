"""status: the cluster's VMs (power state, addresses), its inbound rules, Flower version and port plan."""

from __future__ import annotations

from flwrazure import state
from flwrazure.plan import names, versions


def run(cluster: str) -> dict:
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect

    st = state.load(cluster)
    target = connect(st["cloud"], st["subscription"])
    rg = st["resource_group"]
    group = inventory.group(target, rg)
    vms = names.all_vms(cluster, st["clients"])
    rules_out: list[dict] = []
    rows = [{"vm": v.vm, "role": v.role, "public_ip": None, "private_ip": None, "size": None, "state": "missing"}
            for v in vms]
    if group is not None:
        try:
            snap = inventory.snapshot(target, rg, ("vmview", "nic", "pip", "nsg"))
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
        rows = inventory.vm_rows(snap, vms)
        nsg = snap["nsg"].get(names.nsg(cluster).lower())
        for r in (nsg or {}).get("properties", {}).get("securityRules", []):
            p = r["properties"]
            rules_out.append({"name": r["name"], "priority": p["priority"], "port": p.get("destinationPortRange"),
                              "sources": p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix")],
                              "destination": p.get("destinationAddressPrefix"), "access": p["access"]})
    plan = versions.port_plan(st["flwr_version"])
    return {"cluster": cluster, "cloud": st["cloud"], "resource_group": rg, "location": st["location"],
            "resource_group_exists": group is not None, "flwr_version": st["flwr_version"],
            "port_plan": {"generation": plan.generation, "fleet": plan.fleet, "control": plan.control},
            "vms": rows, "rules": sorted(rules_out, key=lambda r: r["priority"])}
