"""pause / resume: deallocate every VM of the cluster (compute billing stops; static public IPs, OS disks, keys,
certificates and rules stay), and start them again. Resume brings Flower back (systemd starts the enabled units at
boot; the restart loop, on hosts without systemd, is started again by `start`) and waits until the SuperLink and
every SuperNode are online. The SuperLink's run history lives in its --database on the OS disk, which is kept."""

from __future__ import annotations

import time

from flwrazure import ui, workers
from flwrazure.commands import in_background
from flwrazure.errors import FlwrazureError
from flwrazure.plan import names
from flwrazure.workstation import state


def _vms(target, st: dict, spot: set | None = None) -> dict[str, str]:
    """VM name -> power state, for the cluster's VMs that exist (the Spot ones' names added to `spot`)."""
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate

    try:
        snap = inventory.snapshot(target, st["resource_group"], ("vmview",))
    except Exception as exc:
        raise translate(exc, f"resource group {st['resource_group']}") from exc
    rows = inventory.vm_rows(snap, names.all_vms(st["cluster"], st["clients"]))
    (spot if spot is not None else set()).update(r["vm"] for r in rows if r.get("spot"))
    return {r["vm"]: r["state"] for r in rows if r["state"] != "missing"}


# what Azure answers when it has no capacity for a VM now (Spot: SkuNotAvailable, its Spot error page says)
NO_CAPACITY = {"SkuNotAvailable", "AllocationFailed", "OverconstrainedAllocationRequest", "ZonalAllocationFailed"}


def _each(target, rg: str, vms: list[str], verb: str, spot: set | None = None, cluster: str = "") -> None:
    """begin_<verb> on every VM at once, then wait for all of them; one error naming the first failed VM (a Spot
    VM Azure has no capacity for: what that means and what to do)."""
    from flwrazure.azure.errors import AzureError, translate

    ops = target.compute.virtual_machines
    call = ops.begin_deallocate if verb == "deallocate" else ops.begin_start

    def one(vm: str) -> None:
        try:
            call(rg, vm).result()
        except Exception as exc:
            err = translate(exc, f"virtual machine {vm}")
            if isinstance(err, AzureError) and err.code in NO_CAPACITY and vm in (spot or ()):
                raise FlwrazureError(
                    f"virtual machine {vm}: Azure has no Spot capacity to start it now ({err.code}). Next: re-run "
                    f"`flwrazure resume --cluster {cluster}` later (its disk, addresses and Flower setup are kept), "
                    "or recreate the cluster without --spot if it must run now.", code=f"azure.{err.code}") from exc
            raise err from exc

    with workers.pool(min(32, len(vms))) as pool:
        for job in [pool.submit(one, vm) for vm in vms]:
            job.result()


def _estimate(target, st: dict) -> dict | None:
    from flwrazure.azure import prices

    try:
        est = prices.lookup(target, st["location"], prices.cluster_sizes(st), prices.cluster_disks(st),
                            private=bool(st.get("private_clients")))
    except Exception:  # no price known: no estimate
        return None
    return est.to_dict() if est else None


def pause(cluster: str, show: bool = True) -> dict:
    from flwrazure.azure.target import connect

    st = state.load(cluster)
    target = connect(st["cloud"], st["subscription"])
    began = time.monotonic()
    priced = in_background(_estimate, target, st, name="prices")  # Azure's price list, while the VMs deallocate
    power = _vms(target, st)
    if not power:
        raise FlwrazureError(f"cluster {cluster} has no VMs: nothing to pause (`flwrazure create-cluster`).")
    todo = [vm for vm, s in power.items() if s != "deallocated"]
    st["paused"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    state.save(cluster, st)  # first: an interrupted pause is finished by re-running it, or undone by resume
    with ui.Milestones(f"Deallocating {len(todo)} VM(s) of cluster {cluster}", show and bool(todo)):
        _each(target, st["resource_group"], todo, "deallocate")
    return {"cluster": cluster, "deallocated": todo, "already": sorted(set(power) - set(todo)),
            "seconds": round(time.monotonic() - began, 1), "cost": priced.result(),
            "next": [f"flwrazure resume --cluster {cluster}"]}


def resume(cluster: str, show: bool = True) -> dict:
    from flwrazure.azure.target import connect
    from flwrazure.commands.start import recorded_client_data

    st = state.load(cluster)
    recorded_client_data(st, st["clients"])  # start runs again with it: said before any VM is started
    target = connect(st["cloud"], st["subscription"])
    began = time.monotonic()
    spot: set = set()
    power = _vms(target, st, spot)
    if not power:
        raise FlwrazureError(f"cluster {cluster} has no VMs: nothing to resume (`flwrazure create-cluster`).")
    todo = [vm for vm, s in power.items() if s != "running"]
    _each(target, st["resource_group"], todo, "start", spot, cluster)
    vms_s = round(time.monotonic() - began, 1)
    if show and todo:
        ui.info(f"{len(todo)} VM(s) running again after {vms_s} s")
    st = state.load(cluster)
    st.pop("paused", None)
    state.save(cluster, st)
    flower = None
    if st.get("started"):
        from flwrazure.commands import start

        flower = start.rerun(cluster, show)
    return {"cluster": cluster, "started": todo, "vms_seconds": vms_s, "flower": flower,
            "supernodes_online": (flower or {}).get("supernodes_online"),
            "seconds": round(time.monotonic() - began, 1),
            "next": (flower or {}).get("next") or [f"flwrazure start --cluster {cluster}"]}
