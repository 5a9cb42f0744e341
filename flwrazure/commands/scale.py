"""scale --clients N on a live federation (decisions in plan/scale.py).

Growing reuses the converging steps: create-cluster for the new clients' IP -> NIC -> VM chains, open-ports to
extend the Fleet rule to their public IPs, start for bootstrap, key registration and their SuperNodes — existing
VMs, services and registrations are left as they are (start changes nothing that is already right).

Shrinking, highest numbers first: refuse while a run is in progress (unless --force); stop the leaving SuperNodes;
withdraw their keys from the SuperLink (secure clusters); narrow the Fleet rule to the staying clients (before the
leaving IPs are released: a released address may go to someone else); delete their VMs, NICs, public IPs and OS
disks; forget their pinned host keys and SuperNode keys; record N. Every step is idempotent, so an interrupted scale
is finished by re-running it (the record keeps the old count until the end)."""

from __future__ import annotations

import time
from pathlib import Path

from flwrazure import ui, workers
from flwrazure.commands import server_admin
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import layout, names
from flwrazure.plan import scale as plan
from flwrazure.spec import MAX_CLIENTS, ClusterSpec
from flwrazure.workstation import state

SPEC_FIELDS = ("cluster", "clients", "cloud", "subscription", "resource_group", "location", "server_size",
               "client_size", "admin_user", "flwr_version", "allow_existing_group", "address_space", "subnet_prefix",
               "private_clients", "spot", "max_price")


def spec_of(st: dict, clients: int) -> ClusterSpec:
    """The recorded cluster's spec with another client count."""
    spec = ClusterSpec(**{k: st[k] for k in SPEC_FIELDS if k in st})
    spec.clients = clients
    spec.ssh_sources = tuple(st.get("ssh_sources") or ())
    return spec


def run(cluster: str, clients: int, force: bool = False, repartition: bool = False, show: bool = True) -> dict:
    from flwrazure.azure.target import connect

    if not 1 <= clients <= MAX_CLIENTS:
        raise UsageError(f"--clients {clients}: a cluster needs 1 to {MAX_CLIENTS} client VMs.")
    st = state.load(cluster)
    if st.get("paused"):
        raise UsageError(f"cluster {cluster} is paused: run `flwrazure resume --cluster {cluster}` first, then scale.")
    from flwrazure.commands.start import recorded_client_data

    recorded_client_data(st, clients)  # a joining client's DIR/<i> is there, before any VM is created
    target = connect(st["cloud"], st["subscription"])
    began = time.monotonic()
    existing = _client_vms(target, st)
    ch = plan.change(cluster, st["clients"], clients, existing)
    staying = [names.client(cluster, i).vm for i in range(1, min(clients, st["clients"]) + 1)]
    recorded = dict(st.get("partitions") or {})
    restarts = plan.restarted_by_repartition(recorded, staying, clients) if repartition and st.get("started") else []
    if st.get("started") and (ch.leaving or restarts):
        _refuse_during_run(st, force)
    result: dict = {"cluster": cluster, "from": st["clients"], "to": clients, "joined": list(ch.joining),
                    "left": [], "unregistered": [], "restarted": restarts}
    if restarts:  # start gives every SuperNode num-partitions=N: those started with another N are restarted
        st["partitions"] = {}
        state.save(cluster, st)
    if ch.leaving:
        result.update(_shrink(target, st, ch, show))
    if ch.grows or not ch.leaving:  # growing, or converging an interrupted grow (a no-op when all is in place)
        result.update(_grow(state.load(cluster), clients, show))
    elif restarts:
        from flwrazure.commands import start

        result["flower"] = start.rerun(cluster, show)
    st = state.load(cluster)
    mixed = plan.mixed_partitions(st.get("partitions") or {}, clients) if st.get("started") else {}
    result["partitions"] = st.get("partitions") or {}
    result["mixed_partitions"] = {str(k): v for k, v in mixed.items()}
    if "cost" not in result:
        from flwrazure.commands.power import _estimate

        result["cost"] = _estimate(target, st)
    result["seconds"] = round(time.monotonic() - began, 1)
    result["next"] = [f"flwrazure scale --clients {clients} --repartition --cluster {cluster}"] if mixed else []
    return result


def _client_vms(target, st: dict) -> set[str]:
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate

    try:
        vms = inventory.snapshot(target, st["resource_group"], ("vm",))["vm"]
    except Exception as exc:
        raise translate(exc, f"resource group {st['resource_group']}") from exc
    prefix = f"{st['cluster']}-client-"
    return {b["name"] for b in vms.values() if b["name"].startswith(prefix) and names.is_ours(b.get("tags"),
                                                                                             st["cluster"],
                                                                                             st.get("cluster_id"))}


def _grow(st: dict, clients: int, show: bool) -> dict:
    from flwrazure.commands import create, ports

    cluster = st["cluster"]
    created = create.run(spec_of(st, clients), Path(st["ssh_private_key"]), show_progress=show, grow=True)
    out: dict = {"vms": created["vms"], "cost": created.get("cost")}
    st = state.load(cluster)
    with workers.pool(1, "open-ports") as side:
        # the Flower rules exist: the Fleet rule follows the client IPs, beside start (as in `up`)
        opening = side.submit(ports.run, cluster, None, False) if st.get("control_sources") else None
        if st.get("started"):
            from flwrazure.commands import start

            out["flower"] = start.rerun(cluster, show)
            out["supernodes_online"] = out["flower"]["supernodes_online"]
        if opening is not None:
            out["rules"] = opening.result()["rules"]
    return out


def _refuse_during_run(st: dict, force: bool) -> None:
    from flwrazure.azure.target import connect
    from flwrazure.remote import flwradmin

    conn, adm = server_admin(st, connect(st["cloud"], st["subscription"]))
    if conn is None:
        return
    with conn:
        listed = flwradmin.runs(conn, adm)
    if listed is None:
        if not force:
            raise FlwrazureError("could not ask the SuperLink whether a run is in progress: check `flwrazure status`,"
                                 " or pass --force to scale anyway.")
        return
    active = plan.active_runs(listed)
    if active and not force:
        raise UsageError(f"run(s) {', '.join(active)} in progress: removing or restarting SuperNodes now would break "
                         "them. Wait until they finish (`flwr ls`), or pass --force.")


def _shrink(target, st: dict, ch: plan.Change, show: bool) -> dict:
    from flwrazure.azure import inventory
    from flwrazure.commands import ports

    cluster = st["cluster"]
    snap = inventory.snapshot(target, st["resource_group"], ("vmview", "nic", "pip"))
    rows = {r["vm"]: r for r in inventory.vm_rows(snap, [names.client(cluster, int(v.rsplit("-", 1)[1]))
                                                          for v in ch.leaving])}
    server = inventory.vm_rows(snap, [names.server(cluster)])[0]  # the jump host to private client VMs
    out: dict = {"left": list(ch.leaving), "stopped": [], "unregistered": []}
    draining = None
    if st.get("started"):
        # the order matters: stopped SuperNodes deactivate themselves (a registered node's next heartbeat would
        # make it online again), then their keys are withdrawn, then the SuperLink is asked until it no longer
        # lists them online — only then are their VMs deleted (a VM deleted first leaves its SuperNode offered
        # to new runs for up to a minute, and those runs get "Node Unavailable" from it)
        with workers.pool(min(16, len(ch.leaving))) as pool:
            stopped = list(pool.map(lambda vm: _stop_supernode(st, rows[vm], server), ch.leaving))
        out["stopped"] = [vm for vm, ok in zip(ch.leaving, stopped, strict=True) if ok]
        draining = _Draining(st, target, ch, all(stopped))
    try:
        if draining is not None:
            if st.get("secure"):
                out["unregistered"] = _unregister(draining.server(), st, ch.leaving, show)
            draining.before_delete()
        if st.get("control_sources"):  # narrow the Fleet rule before the leaving addresses are released
            out["rules"] = ports.run(cluster, None, False, clients=ch.target)["rules"]
        _delete(target, st, ch.leaving)
        _forget_local(st, ch.leaving, {r[k] for r in rows.values() for k in ("public_ip", "private_ip") if r[k]})
        st = state.load(cluster)
        st["clients"] = ch.target
        for vm in ch.leaving:
            (st.get("registered_supernodes") or {}).pop(vm, None)
            (st.get("partitions") or {}).pop(vm, None)
            (st.get("supervisors") or {}).pop(vm, None)
            (st.get("client_data") or {}).pop(vm, None)
        state.save(cluster, st)
        if show:
            ui.info(f"{len(ch.leaving)} client(s) removed: {', '.join(ch.leaving)}")
        if draining is not None:  # scale returns once no new run can be given a removed SuperNode
            out["drain"] = draining.after_delete()
            _say_drain(out["drain"], st["flwr_version"], show)
    finally:
        if draining is not None:
            draining.close()
    return out


class _Draining:
    """Until the SuperLink no longer offers the leaving SuperNodes to new runs, as plan.drain decides per Flower
    version: ask it (`flwr supernode list` on the server VM) until none is listed online, or, where it cannot be
    asked (or does not answer), wait the heartbeat grace from the moment the last of them stopped."""

    def __init__(self, st: dict, target, ch: plan.Change, all_stopped: bool):
        self.st, self.target, self.ch = st, target, ch
        self.plan = plan.drain(st["flwr_version"])
        # the node ids now (unregistering removes them from the record); a VM without one is counted instead
        ids, _ = plan.unregister_plan(dict(st.get("registered_supernodes") or {}), ch.leaving)
        self.ids = {vm: str(n) for vm, n in ids.items()}
        self.began = time.monotonic()
        self.stopped_at = self.began if all_stopped else None  # else: they die with their VMs
        self.offered: list[str] | None = None  # leaving VMs listed online; None: not known
        self._server: tuple | None = None

    def server(self):
        """(SSH connection, admin flwr) on the server VM, opened once; (None, None) when it has no address."""
        if self._server is None:
            self._server = server_admin(self.st, self.target)
        return self._server

    def close(self) -> None:
        if self._server and self._server[0] is not None:
            self._server[0].close()
        self._server = None

    def before_delete(self) -> None:
        if self.plan.confirm:
            self.offered = self._poll(self.plan.before_delete)
        self.close()  # not held open, idle, while the VMs are deleted; after_delete opens another when needed

    def after_delete(self) -> dict:
        self.stopped_at = self.stopped_at or time.monotonic()  # the VMs are gone: so are their SuperNodes
        if self.plan.confirm and self.offered != []:
            self.offered = self._poll(self.plan.after_delete)
        if not self.plan.confirm or self.offered is None:
            time.sleep(plan.grace_left(self.stopped_at, time.monotonic(), self.plan.grace))
        return {"how": "listed" if self.plan.confirm and self.offered is not None else "grace",
                "confirmed": self.offered == [], "offered": list(self.offered or []),
                "seconds": round(time.monotonic() - self.began, 1)}

    def _poll(self, bound: float) -> list[str] | None:
        from flwrazure.remote import flwradmin

        try:
            conn, adm = self.server()
        except FlwrazureError as exc:  # an insecure cluster's shrink needs no server VM: wait the grace instead
            ui.warn(f"cannot ask the SuperLink which SuperNodes it offers ({exc})")
            self._server = conn, adm = None, None
        start, offered, silent = time.monotonic(), None, 0
        while conn is not None:
            try:
                listed = flwradmin.answered_nodes(conn, adm)
            except Exception as exc:  # the SSH connection broke: not known, so the grace is waited
                ui.warn(f"cannot ask the SuperLink which SuperNodes it offers ({exc})")
                self.close()
                return None
            silent = silent + 1 if listed is None else 0
            offered = None if listed is None else plan.still_offered(listed, self.ids, self.ch.leaving,
                                                                      self.ch.target)
            if offered == [] or silent >= plan.NO_ANSWER_TRIES or time.monotonic() - start >= bound:
                break
            time.sleep(1)
        return offered


def _say_drain(drain: dict, version: str, show: bool) -> None:
    """What new runs are given now: a warning always (on stderr), the all-clear only with progress output."""
    if drain["confirmed"]:
        if show:
            ui.info("the SuperLink no longer offers the removed SuperNodes to new runs (`flwr supernode list`)")
    elif drain["offered"]:
        ui.warn(f"the SuperLink still lists {', '.join(drain['offered'])} online {drain['seconds']:.0f} s after "
                "they were stopped; a run started now may get \"Node Unavailable\" from them. Check "
                "`flwr supernode list` and run again later.")
    elif show:
        why = (f"Flower {version} cannot say which SuperNodes it offers to new runs" if not plan.drain(version).confirm
               else "the SuperLink did not answer `flwr supernode list`")
        ui.info(f"{why}: waited until {plan.GRACE:.0f} s (its heartbeat grace) had passed since the removed "
                "SuperNodes stopped, so none is offered now")


def _stop_supernode(st: dict, row: dict, server: dict) -> bool:
    """Stop a leaving SuperNode (best effort: a VM that is not running or not reachable has nothing running)."""
    from flwrazure.commands.start import SUPERNODE
    from flwrazure.plan.services import Layout
    from flwrazure.remote import daemons, ssh

    hop = layout.route(row, server)
    if row["state"] != "running" or not hop:
        return False
    try:
        conn = ssh.wait(hop[0], row["vm"], st["admin_user"], st["ssh_private_key"],
                        state.cluster_dir(st["cluster"]) / "known_hosts", timeout=30, via=hop[1])
    except FlwrazureError as exc:
        ui.warn(f"{row['vm']}: could not stop its SuperNode ({exc}); its registration is withdrawn anyway.")
        return False
    with conn:
        kind = (st.get("supervisors") or {}).get(row["vm"], daemons.SYSTEMD)
        daemons.stop(conn, SUPERNODE, kind, Layout(f"/home/{st['admin_user']}"))
    return True


def _unregister(server: tuple, st: dict, leaving: tuple[str, ...], show: bool) -> list[str]:
    from flwrazure.remote import flwradmin

    ids, unknown = plan.unregister_plan(dict(st.get("registered_supernodes") or {}), leaving)
    for vm in unknown:
        ui.warn(f"{vm}: its SuperNode key was registered before flwrazure recorded node ids; it cannot be "
                "unregistered by id (`flwr supernode list` on the server VM shows it).")
    if not ids:
        return []
    conn, adm = server
    if conn is None:
        raise FlwrazureError(f"the server VM of cluster {st['cluster']} has no public IP: cannot unregister the "
                             "leaving SuperNodes; re-run `flwrazure scale` once it is back (`flwrazure status`).")
    results = flwradmin.unregister(conn, adm, ids)
    done = [vm for vm, r in results.items() if r == "ok"]
    fresh = state.load(st["cluster"])  # record progress at once: a re-run does not unregister twice
    for vm in done:
        (fresh.get("registered_supernodes") or {}).pop(vm, None)
    state.save(st["cluster"], fresh)
    failed = {vm: r for vm, r in results.items() if r != "ok"}
    if failed:
        vm, why = next(iter(failed.items()))
        raise FlwrazureError(f"unregistering SuperNode {vm} (node {ids[vm]}) failed: {why}; nothing was deleted. "
                             "Re-run the same `flwrazure scale` command.")
    if show:
        ui.info(f"{len(done)} SuperNode key(s) unregistered")
    return done


def _delete(target, st: dict, leaving: tuple[str, ...]) -> None:
    """The leaving VMs, then whatever of their NICs, public IPs and OS disks is left (only what is ours)."""
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import is_not_found, translate
    from flwrazure.azure.waiter import Waiter
    from flwrazure.commands.teardown import _delete_fn

    rg, cluster = st["resource_group"], st["cluster"]
    vms = [names.client(cluster, int(v.rsplit("-", 1)[1])) for v in leaving]
    waiter = Waiter(inventory.listers(target, rg), target.poll)

    def remove(kind: str, name: str) -> None:
        try:
            _delete_fn(target, kind)(rg, name, polling=False)
            waiter.gone(kind, name)
        except Exception as exc:
            if is_not_found(exc):
                return
            raise translate(exc, f"{inventory.LABELS[kind]} {name}") from exc

    for stage in (("vm",), ("nic",), ("pip", "disk")):
        snap = inventory.snapshot(target, rg, stage)
        jobs = []
        for kind in stage:
            for v in vms:
                name = {"vm": v.vm, "nic": v.nic, "pip": v.public_ip, "disk": v.os_disk}[kind]
                body = snap[kind].get(name.lower())
                if body is None:
                    continue  # gone already (deleteOption cascades)
                if kind == "disk":  # OS disks carry no tags: ours by name once detached, never another identity's
                    if body.get("managedBy") or names.other_identity(body.get("tags"), st.get("cluster_id")):
                        continue
                elif not names.is_ours(body.get("tags"), cluster, st.get("cluster_id")):
                    continue  # not ours: never deleted
                jobs.append((kind, name))
        if jobs:
            with workers.pool(min(32, len(jobs))) as pool:
                for job in [pool.submit(remove, k, n) for k, n in jobs]:
                    job.result()


def _forget_local(st: dict, leaving: tuple[str, ...], ips: set[str]) -> None:
    """Pinned host keys of the deleted VMs' addresses, and their SuperNode keys (a client that joins later under
    the same name gets a new key and registration)."""
    from flwrazure.remote import ssh

    cdir = state.cluster_dir(st["cluster"])
    ssh.forget_hosts(cdir / "known_hosts", ips)
    for vm in leaving:
        for suffix in ("", ".pub"):
            (cdir / "supernodes" / f"{vm}.key{suffix}").unlink(missing_ok=True)
