"""Spot client VMs (`--spot [--max-price P]`): the VM fields Azure takes, what a re-run may change on VMs that
exist, and how an evicted client is told apart from a paused one.

Azure shows an evicted Spot VM as deallocated (PowerState/deallocated), like one the user deallocated: the
difference is who did it. flwrazure records its own pause (`paused` in the cluster's record), so a deallocated
Spot VM of a cluster that is not paused was evicted."""

from __future__ import annotations

EVICTION_POLICY = "Deallocate"  # the disk, addresses and Flower setup stay; `resume` starts it again


def vm_fields(max_price: float | None) -> dict:
    """The properties that make a VM Spot: deallocated when evicted, at most max_price USD/hour (-1: up to the
    pay-as-you-go price, evicted for capacity only)."""
    return {"priority": "Spot", "evictionPolicy": EVICTION_POLICY,
            "billingProfile": {"maxPrice": -1 if max_price is None else max_price}}


def is_spot(vm: dict | None) -> bool:
    return ((vm or {}).get("properties") or {}).get("priority") in ("Spot", "Low")


def mark_evicted(rows: list[dict], paused: bool) -> list[dict]:
    """Rows of a status or doctor: a deallocated Spot VM of a cluster the user did not pause is `evicted`."""
    for row in rows:
        if row.get("spot") and row["state"] == "deallocated" and not paused:
            row["state"] = "evicted"
    return rows


def rerun_conflict(vm_name: str, vm: dict, spot: bool, max_price: float | None) -> str | None:
    """Why a re-run of create-cluster cannot give this existing client VM what was asked (one line with the way
    out), or None. Azure never turns a VM into Spot or back (VMPriorityCannotBeApplied, PropertyChangeNotAllowed),
    and changes a Spot VM's max price only while it is deallocated."""
    if spot and not is_spot(vm):
        return (f"VM {vm_name} is a regular (pay-as-you-go) VM: Azure cannot turn an existing VM into a Spot VM. "
                "Re-run without --spot, or tear the cluster down and create it again with --spot.")
    if not spot and is_spot(vm):
        return (f"VM {vm_name} is a Spot VM (created with --spot): Azure cannot turn it into a regular VM. Re-run "
                "with --spot, or tear the cluster down and create it again without it.")
    if spot:
        have = ((vm.get("properties") or {}).get("billingProfile") or {}).get("maxPrice", -1)
        want = -1 if max_price is None else max_price
        if float(have) != float(want):
            again = "without --max-price" if float(have) == -1 else f"with --max-price {have:g}"
            return (f"VM {vm_name} has max price {have:g} USD/hour (-1: up to the pay-as-you-go price), not "
                    f"{want:g}: Azure changes it only while the VM is deallocated. Re-run {again}, or change it "
                    f"with `az vm deallocate` then `az vm update --max-price {want:g}` on each client VM.")
    return None
