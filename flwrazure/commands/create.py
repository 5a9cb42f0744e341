"""create-cluster: validate, preflight, then converge the cluster's resources concurrently."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flwrazure import ui
from flwrazure.commands import in_background, interrupt
from flwrazure.errors import UsageError
from flwrazure.plan import cost, names, spot, versions
from flwrazure.spec import ClusterSpec
from flwrazure.workstation import operator, sshkeys, state

GROUP_CREATED_TAG = names.TAG_CREATED_GROUP


def _record(spec: ClusterSpec, target, rg_created: bool, key_path: Path, status: str,
            os_disks: dict[str, str]) -> dict:
    plan = versions.port_plan(spec.flwr_version)
    data = {**spec.to_dict(), "subscription": target.subscription, "rg_created": rg_created,
            "ssh_private_key": str(key_path), "port_plan": plan.__dict__, "status": status,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if state.exists(spec.cluster):
        old = state.load(spec.cluster)
        # keep what later commands recorded (open-ports' sources, start's registrations, ...): re-running
        # create-cluster, or scale through it, must not make the cluster forget that Flower runs on it
        data = {**old, **data, "control_sources": old.get("control_sources")}
        for key in ("teardown", "teardown_started"):  # created again after a teardown: no longer being torn down
            data.pop(key, None)
        if status == "created":  # an interrupted create is finished now
            data.pop("interrupted", None)
        os_disks = {**(old.get("os_disks") or {}), **os_disks}
        data["created"] = old.get("created", data["updated"])
    else:
        data["created"] = data["updated"]
    data["os_disks"] = os_disks  # the OS disk type each VM size gets (for the cost estimate of status, pause)
    state.save(spec.cluster, data)
    return data


def _drain(facts: dict) -> None:
    for future in facts.values():
        future.exception()


def _forget_new_hosts(cluster: str, writes: list[str], rows: list[dict]) -> None:
    """A VM created now is a new machine: a key pinned earlier for its address (a VM deleted outside flwrazure,
    whose address Azure handed on) belongs to another machine."""
    from flwrazure.remote import ssh

    created = {w.split("/", 1)[1].lower() for w in writes if w.startswith("vm/")}
    ssh.forget_hosts(state.cluster_dir(cluster) / "known_hosts",
                     [r[key] for r in rows if r["vm"].lower() in created for key in ("public_ip", "private_ip")])


def _check_same_cluster(spec: ClusterSpec, grow: bool = False) -> None:
    """A recorded cluster keeps its place, version, identity and clients; a new one gets an identity of its own.
    A re-run that asks for something else is refused before the cloud is asked anything (the way --location
    always was): it used to exit 0, change nothing on Azure and record the new value. grow: scale adds clients
    through create-cluster's steps."""
    from flwrazure.plan import layout

    if not state.exists(spec.cluster):
        spec.cluster_id = spec.cluster_id or str(uuid.uuid4())
        spec.private_clients = layout.resolve(spec.private_clients, None, spec.cluster)
        return
    old = state.load(spec.cluster)
    spec.cluster_id = old.get("cluster_id")  # None: recorded before identities existed (names.is_ours)
    spec.private_clients = layout.resolve(spec.private_clients, bool(old.get("private_clients")), spec.cluster)
    if spec.clients < old.get("clients", 0):
        raise UsageError(f"cluster {spec.cluster} has {old['clients']} client VMs and create-cluster only adds "
                         f"some: --clients {spec.clients} would leave {old['clients'] - spec.clients} of them "
                         f"unmanaged. Remove clients with `flwrazure scale --cluster {spec.cluster} --clients "
                         f"{spec.clients}`, or re-run with --clients {old['clients']}.")
    if spec.clients > old.get("clients", 0) and not grow:
        raise UsageError(f"cluster {spec.cluster} has {old['clients']} client VMs (you asked for {spec.clients}): "
                         f"add clients with `flwrazure scale --cluster {spec.cluster} --clients {spec.clients}` (it "
                         f"also opens the Fleet port to them and starts their SuperNodes when Flower runs), or "
                         f"re-run with --clients {old['clients']}.")
    for key, flag in (("cloud", "--cloud"), ("resource_group", "--resource-group"), ("location", "--location"),
                      ("flwr_version", "--flwr-version")):
        if old.get(key) != getattr(spec, key):
            raise UsageError(f"cluster {spec.cluster} already exists with {flag} {old.get(key)} (you asked for "
                             f"{getattr(spec, key)}): re-run without changing it, choose another --cluster, or "
                             f"`flwrazure teardown --cluster {spec.cluster}` first.")


def _check_subscription(spec: ClusterSpec, subscription: str) -> None:
    """The recorded cluster lives in one subscription; a re-run signed in to another would build a second
    cluster there and make the record forget the first."""
    if not state.exists(spec.cluster):
        return
    recorded = state.load(spec.cluster).get("subscription")
    if recorded and recorded.lower() != subscription.lower():
        raise UsageError(f"cluster {spec.cluster} lives in subscription {recorded}, not {subscription}: pass "
                         f"--subscription {recorded} (or `az account set --subscription {recorded}`), or choose "
                         "another --cluster.")


def _key_blob(line: str | None) -> str:
    parts = (line or "").split()
    return " ".join(parts[:2])


def check_existing_vms(spec: ClusterSpec, snap: dict, public_key: str | None, key_path: Path) -> None:
    """What Azure fixed when the cluster's VMs were created and create-cluster does not change: their size, admin
    user and SSH key. A re-run asking for another is refused with what would do it (nothing written); the record
    then keeps describing the VMs that exist."""
    from flwrazure.azure import provision

    rg = spec.resource_group
    for v in names.all_vms(spec.cluster, spec.clients):
        body = snap["vm"].get(v.vm.lower())
        if body is None:
            continue
        props = body.get("properties") or {}
        size, wanted = (props.get("hardwareProfile") or {}).get("vmSize"), provision.size_of(spec, v)
        if size and size.lower() != wanted.lower():
            flag = "--server-vm-size" if v.role == "server" else "--client-vm-size"
            raise UsageError(f"VM {v.vm} is {size}, not {wanted}: create-cluster does not resize VMs. Resize it with "
                             f"`az vm resize -g {rg} -n {v.vm} --size {wanted}` (it restarts the VM; "
                             f"`az vm list-vm-resize-options -g {rg} -n {v.vm}` lists the sizes it can take), then "
                             f"re-run with {flag} {wanted}; or re-run with {flag} {size}.")
        conflict = v.role == "client" and spot.rerun_conflict(v.vm, body, spec.spot, spec.max_price)
        if conflict:
            raise UsageError(conflict)
        osp = props.get("osProfile") or {}
        user = osp.get("adminUsername")
        if user and user != spec.admin_user:
            raise UsageError(f"the VMs of cluster {spec.cluster} were created with --admin-user {user} (you asked for "
                             f"{spec.admin_user}): Azure fixes a VM's admin user when it is created. Re-run with "
                             f"--admin-user {user}, or `flwrazure teardown --cluster {spec.cluster}` and create it "
                             "again.")
        keys = [_key_blob(k.get("keyData")) for k in
                ((osp.get("linuxConfiguration") or {}).get("ssh") or {}).get("publicKeys") or []]
        if public_key and keys and _key_blob(public_key) not in keys:
            recorded = state.load(spec.cluster).get("ssh_private_key") if state.exists(spec.cluster) else None
            raise UsageError(f"VM {v.vm} does not trust the key {key_path}: Azure sets a VM's SSH key only when it "
                             f"is created. Re-run without --ssh-key (the cluster uses {recorded or 'its own key'}), "
                             f"or add the key to each VM first (`az vm user update -g {rg} -n {v.vm} -u "
                             f"{spec.admin_user} --ssh-key-value {key_path}.pub`) and re-run with it.")


def _recorded_here(cluster_id: str) -> str | None:
    """The cluster of this FLWRAZURE_HOME that has this identity, if any: a group or resource carrying it is this
    workstation's own, not another user's."""
    for name in state.known_clusters():
        try:
            if state.load(name).get("cluster_id") == cluster_id:
                return name
        except Exception:  # an unreadable record names nothing
            continue
    return None


def _sizes(spec: ClusterSpec) -> list[str]:
    """One entry per VM for the estimate (Spot clients priced at the Spot meter)."""
    return [spec.server_size] + [cost.spot(spec.client_size) if spec.spot else spec.client_size] * spec.clients


def _price_lookup(target, spec: ClusterSpec):
    """The prices the estimate needs, asked in a background thread (a Future) before preflight has read which OS
    disk type each VM size gets: every type create-cluster may give is asked (one query each, at the same time)."""
    from flwrazure.azure import prices

    return in_background(prices.fetch, target, spec.location, _sizes(spec), list(cost.DISK_TIERS), 8.0,
                         bool(spec.private_clients), name="prices")


def estimate_of(future, sizes: list[str], disks: list[str], private: bool = False) -> dict | None:
    """The estimate's dict from a prices.fetch Future, for VMs of these sizes and OS disk types; None when no price
    is known (never an invented number)."""
    try:
        got = future.result(timeout=30)
    except Exception:  # no answer at all: no estimate
        return None
    return cost.estimate(sizes, got[0], got[1], disks, private).to_dict() if got is not None else None


def _left(spec: ClusterSpec, seen: dict):
    """What of the cluster exists once Ctrl-C stopped the command: what was found, and every PUT sent since,
    answered or not. None before the group was read (the record says what there may be)."""
    from flwrazure.plan.interrupt import Left

    run_ = seen["run"]
    if run_ is not None:
        run_.stop()  # whatever thread is still going sends nothing after this count
    sent = list(run_.sent) if run_ is not None else []
    vms = seen["vms"] | {w.split("/", 1)[1].lower() for w in sent if w.startswith("vm/")}
    ips = seen["ips"] | {w.split("/", 1)[1].lower() for w in sent if w.startswith("pip/")}
    if not seen["read"]:
        return None
    return Left(spec.cluster, spec.resource_group, vms=len(vms), ips=len(ips), group=seen["group"])


def network_of(private: bool, subnet_prefix: str, snap: dict, cluster: str) -> dict:
    """The `network` object (plan.layout.summary) from a snapshot that holds the public IPs (and NAT gateways)."""
    from flwrazure.plan import layout

    return layout.summary(private, subnet_prefix, snap.get("nat", {}).get(names.nat_gateway(cluster).lower()),
                          snap.get("pip", {}).get(names.nat_public_ip(cluster).lower()))


def user_data(spec: ClusterSpec, extra_pip: list[str] | None, index_url: str | None) -> str | None:
    """The new VMs' customData: Flower installed by cloud-init on their first boot (plan.userdata), with `up`'s
    --extra-pip/--index-url, else what start was last given (scale). None when it cannot go there (a secret in
    them, no index known for pip itself on Azure): start then installs over SSH, as before."""
    import os

    from flwrazure.plan import userdata

    if extra_pip is None and state.exists(spec.cluster):
        opts = state.load(spec.cluster).get("start_options") or {}
        extra_pip, index_url = list(opts.get("extra_pip") or []), opts.get("index_url")
    extra_pip = list(extra_pip or [])
    if not userdata.eligible(extra_pip, index_url):
        return None
    default_index = None
    if spec.cloud != "local" and not index_url:  # the VM's pip names no index: where pip itself comes from
        try:
            from pip._internal.models.index import PyPI  # pip's own default, as pip on this machine knows it

            default_index = PyPI.simple_url
        except Exception:
            return None
    # test hook: apt packages cloud-init installs before Flower (a name that does not exist makes it fail)
    apt = tuple(os.environ.get("FLWRAZURE_USER_DATA_APT", "").split())
    try:
        text = userdata.cloud_config(spec.flwr_version, extra_pip, spec.admin_user, index_url, default_index, apt)
    except ValueError as exc:
        raise UsageError(f"FLWRAZURE_USER_DATA_APT: {exc}.") from None
    try:
        return userdata.custom_data(text)
    except ValueError as exc:
        raise UsageError(f"{exc}: fewer or shorter --extra-pip requirements would fit.") from None


def run(spec: ClusterSpec, ssh_key: Path | None, show_progress: bool = True,
        operator_address: bool = False, grow: bool = False, extra_pip: list[str] | None = None,
        index_url: str | None = None) -> dict:
    """operator_address: detect the operator's address even when --ssh-source was given (`up` admits it to the
    Control port); it is in the result as operator_ip. grow: more clients than recorded is what `scale` asks.
    extra_pip, index_url: start's (`up`), installed by the new VMs' user data during their first boot."""
    from flwrazure.azure import groupdelete, inventory, preflight, provision
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect
    from flwrazure.azure.waiter import Waiter

    _check_same_cluster(spec, grow)
    # what of the cluster exists, for the line Ctrl-C prints (commands.interrupt)
    seen: dict = {"read": False, "group": False, "vms": set(), "ips": set(), "run": None}
    interrupt.left_by(lambda: _left(spec, seen))
    custom_data = user_data(spec, extra_pip, index_url)
    key_path, public_key = None, None
    if ssh_key is None and state.exists(spec.cluster):  # the key the cluster's VMs trust, not a new one
        recorded = state.load(spec.cluster).get("ssh_private_key")
        generated = state.cluster_dir(spec.cluster) / "id_ed25519"
        if recorded and Path(recorded) != generated:
            ssh_key = Path(recorded)
    if ssh_key:  # every key problem is found here, before the cloud is asked anything
        from flwrazure.remote.ssh import check_key

        user_key = check_key(ssh_key, "--ssh-key")
        key_path, public_key = user_key.path, user_key.public_line
    target = connect(spec.cloud, spec.subscription, choosing=True)
    _check_subscription(spec, target.subscription)
    priced = _price_lookup(target, spec)  # in flight while the cluster is built
    rg = spec.resource_group
    pool = ThreadPoolExecutor(max_workers=6)
    # the operator's address (an echo service: a round trip over the internet on Azure), preflight's reads and the
    # group's: all in flight at once, and all answered before anything is created
    flag = " and ".join(f for f, wanted in (("--ssh-source", not spec.ssh_sources),
                                            ("--control-source", operator_address)) if wanted)
    detected = pool.submit(operator.detect, target, flag) if flag else None
    facts = preflight.fetch(target, spec.location, pool)
    try:
        group = inventory.group(target, rg)
    except Exception as exc:
        _drain(facts)
        raise translate(exc, f"resource group {rg}") from exc
    finally:
        pool.shutdown(wait=False)
    me = detected.result() if detected is not None else None  # its UsageError (address unknown) ends it here
    spec.ssh_sources = spec.ssh_sources or (me,)
    you = me or "<your-ip>"
    if group and group.get("properties", {}).get("provisioningState") == "Deleting":
        ui.info(f"Resource group {rg} is still being deleted; waiting for that to finish…")
        groupdelete.wait_gone(target, rg, retry="re-run `flwrazure create-cluster`")
        group = None
    group_tags = (group or {}).get("tags") or {}
    ours = names.is_ours(group_tags, spec.cluster, spec.cluster_id)
    other = names.other_identity(group_tags, spec.cluster_id)
    sibling = _recorded_here(other) if other else None
    if group and sibling and not spec.allow_existing_group:
        raise UsageError(f"resource group {rg} was created for cluster {sibling} (recorded here): pass "
                         f"--use-existing-group to add cluster {spec.cluster} to it (its teardown never deletes "
                         "the group), or choose another --resource-group.")
    if group and other and not spec.allow_existing_group:
        raise UsageError(f"resource group {rg} holds flwrazure cluster {group_tags.get(names.TAG_CLUSTER)} of "
                         f"another user or machine ({names.TAG_ID} {other}); it is never adopted, changed or "
                         f"deleted from here: choose another --cluster and --resource-group (e.g. "
                         f"--cluster {spec.cluster}-2).")
    if group and not ours and not spec.allow_existing_group:
        raise UsageError(f"resource group {rg} already exists and was not created by flwrazure for cluster "
                         f"{spec.cluster}: pass --use-existing-group to add the cluster to it (it will never be "
                         "deleted), or choose another --resource-group.")
    if group and group.get("location") != spec.location:
        raise UsageError(f"resource group {rg} is in {group.get('location')}, not {spec.location}: pass "
                         f"--location {group.get('location')} or choose another --resource-group.")
    rg_created = group is None or names.created_group(group_tags, spec.cluster, spec.cluster_id)
    kinds = inventory.KINDS + (("nat",) if spec.private_clients else ())
    snap = inventory.snapshot(target, rg, kinds) if group else {k: {} for k in kinds}
    vms = names.all_vms(spec.cluster, spec.clients)
    ips = [v.public_ip for v in vms if provision.has_public_ip(spec, v)]
    planned = {("vnet", names.vnet(spec.cluster)), ("nsg", names.nsg(spec.cluster))}
    if spec.private_clients:
        ips.append(names.nat_public_ip(spec.cluster))
        planned.add(("nat", names.nat_gateway(spec.cluster)))
    seen.update(read=True, group=group is not None, vms={v.vm.lower() for v in vms if v.vm.lower() in snap["vm"]},
                ips={ip.lower() for ip in ips if ip.lower() in snap["pip"]})
    planned |= {("pip", ip) for ip in ips} | {(k, n) for v in vms for k, n in (("nic", v.nic), ("vm", v.vm))}
    for kind, name in sorted(planned):
        found = snap[kind].get(name.lower())
        if found and not names.is_ours(found.get("tags"), spec.cluster, spec.cluster_id):
            other = names.other_identity(found.get("tags"), spec.cluster_id)
            sibling = _recorded_here(other) if other else None
            whose = (f"belongs to cluster {sibling} (recorded here)" if sibling else
                     f"belongs to flwrazure cluster {found['tags'].get(names.TAG_CLUSTER)} of another user or machine "
                     f"({names.TAG_ID} {other}; never adopted, changed or deleted from here)" if other else
                     f"was not created by flwrazure for cluster {spec.cluster}")
            raise UsageError(f"{inventory.LABELS[kind]} {name} already exists in {rg} and {whose}: choose another "
                             "--cluster or --resource-group.")
    if key_path is None and (generated := state.cluster_dir(spec.cluster) / "id_ed25519.pub").exists():
        public_key = generated.read_text().strip()
    check_existing_vms(spec, snap, public_key, key_path or state.cluster_dir(spec.cluster) / "id_ed25519")
    missing_vms = [provision.size_of(spec, v) for v in vms if v.vm.lower() not in snap["vm"]]
    missing_ips = sum(1 for ip in ips if ip.lower() not in snap["pip"])
    machines = preflight.check(target, spec.location, facts, missing_vms, missing_ips,
                               (spec.server_size, spec.client_size),
                               flags=dict(reversed(list(zip((spec.server_size, spec.client_size), spec.size_flags,
                                                            strict=True)))),
                               spot_needed=tuple(spec.client_size for v in vms if spec.spot and v.role == "client"
                                                 and v.vm.lower() not in snap["vm"]))
    # sizes as the catalog spells them (Azure's names ignore case: standard_d2s_v3 is Standard_D2s_v3)
    spec.server_size, spec.client_size = (preflight.spelled(facts, s) for s in (spec.server_size, spec.client_size))
    priced = _price_lookup(target, spec)  # in flight while the cluster is built

    # from here on things are created: record the cluster first, so teardown works even if we are killed
    if key_path is None:
        key_path = state.cluster_dir(spec.cluster) / "id_ed25519"
        state.cluster_dir(spec.cluster).mkdir(parents=True, exist_ok=True)
        public_key = sshkeys.generate(key_path, f"flwrazure-{spec.cluster}")
    os_disks = {size: disk for size, (_image, disk) in machines.items()}
    _record(spec, target, rg_created, key_path, "creating", os_disks)
    if group is None:
        tags = {**names.tags(spec.cluster, cluster_id=spec.cluster_id), GROUP_CREATED_TAG: spec.cluster}
        seen["group"] = True
        try:
            target.resources.resource_groups.create_or_update(rg, {"location": spec.location, "tags": tags})
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
    waiter = Waiter(inventory.listers(target, rg), target.poll)
    totals = {**({"nat": 1} if spec.private_clients else {}), "vnet": 1, "nsg": 1, "pip": len(ips), "nic": len(vms),
              "vm": len(vms)}
    with ui.Steps({inventory.LABELS[k] + "s": n for k, n in totals.items()}, show_progress) as steps:
        class _Progress:
            def advance(self, kind: str) -> None:
                steps.advance(inventory.LABELS[kind] + "s")

        run_ = seen["run"] = provision.Run(target, spec, public_key, snap, waiter, _Progress(), machines=machines,
                                           custom_data=custom_data)
        provision.converge(run_)
    for vm, why in sorted(run_.failed_extensions.items()):  # once per VM: it runs, Azure says Failed
        ui.warn(f"VM {vm} is running, but Azure reports it Failed because its extension {why}; flwrazure leaves "
                f"it as it is. To clear it, fix or remove the extension (`az vm extension list -g {rg} --vm-name "
                f"{vm}`; one that Azure Policy or Defender added comes back unless its owner exempts the VM).")
    final = inventory.snapshot(target, rg, ("vmview", "nic", "pip") + (("nat",) if spec.private_clients else ()))
    rows = inventory.vm_rows(final, vms)
    _forget_new_hosts(spec.cluster, run_.writes, rows)
    data = _record(spec, target, rg_created, key_path, "created", os_disks)
    return {"cluster": spec.cluster, "cloud": spec.cloud, "resource_group": rg, "location": spec.location,
            "flwr_version": spec.flwr_version, "port_plan": data["port_plan"], "vms": rows,
            "ssh_private_key": str(key_path), "ssh_sources": list(spec.ssh_sources), "operator_ip": me,
            "network": network_of(spec.private_clients, spec.subnet_prefix, final, spec.cluster),
            "cost": estimate_of(priced, _sizes(spec), cost.os_disks(_sizes(spec), data["os_disks"]),
                                spec.private_clients),
            "failed_extensions": dict(run_.failed_extensions),
            "next": [f"flwrazure open-ports --cluster {spec.cluster} --source {you}"]}
