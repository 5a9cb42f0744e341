"""The silo's side of a cross-silo federation: `silo join`, `silo leave`, `silo status`, `silo logs`.

join: check the invitation and every option (nothing is created before the CA fingerprint is confirmed), then
the machine — one VM in a resource group of the silo's own (`--cloud`: SSH only from the silo admin's address, no
inbound Flower rule: the SuperNode connects out) or a machine the silo runs (`--host`) — then over SSH: the
invited Flower version, the SuperNode's key pair made on that machine (the private key never leaves it), the CA
certificate, the data, the SuperNode service (it retries until the operator admits it), and last the join request
for the operator. Re-running converges; --wait watches the SuperNode's own log until the SuperLink accepted it.

leave: stop the SuperNode and delete what join created: the resource group it made (the VM, its disk, address,
network), or on a --host machine the service and the files join installed."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from flwrazure import ui
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import names, services, silo, silo_member
from flwrazure.plan.clientdata import DATA_DIR
from flwrazure.plan.silo_member import SUPERNODE
from flwrazure.workstation import files, settings

ADMIN_USER = "azureuser"
WAIT_TIMEOUT = 1800.0


def silos_dir() -> Path:
    return settings.home() / "silos"


def record_dir(cluster: str, silo_name: str) -> Path:
    return silos_dir() / silo_member.record_name(cluster, silo_name)


def _record_path(cluster: str, silo_name: str) -> Path:
    return record_dir(cluster, silo_name) / "silo.json"


def save(rec: dict) -> None:
    folder = settings.ensure_private_dir(record_dir(rec["cluster"], rec["silo"]))
    files.write_atomic(folder / "silo.json", json.dumps(rec, indent=2) + "\n")


def records() -> list[dict]:
    out = []
    for path in sorted(silos_dir().glob("*/silo.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"the silo record {path} cannot be read ({exc}): fix or remove it.") from None
    return out


def find(cluster: str | None, silo_name: str | None) -> dict:
    """The recorded silo meant: the one named, or the only one of this FLWRAZURE_HOME."""
    found = [r for r in records() if (cluster is None or r["cluster"] == cluster)
             and (silo_name is None or r["silo"] == silo_name)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError("this FLWRAZURE_HOME has joined no such silo" + (f" ({silo_name or '*'} of cluster "
                         f"{cluster or '*'})" if cluster or silo_name else "") + ": `flwrazure silo join FILE` first.")
    raise UsageError("this FLWRAZURE_HOME has joined several silos (" + ", ".join(
        f"{r['silo']} of {r['cluster']}" for r in found) + "): pass --cluster C and --silo NAME.")


# -- before anything is created ---------------------------------------------------------------------------------
@dataclass
class Join:
    """A join whose every input was checked: what `run` needs."""
    invitation: silo.Invitation
    invitation_text: str
    fingerprint: str
    mode: str  # "cloud" | "host"
    cloud: str | None
    subscription: str | None
    location: str
    vm_size: str
    user: str
    address: str | None  # --host's address (the VM's is known once it exists)
    ssh_key: Path | None  # --host's key
    egress: tuple[str, ...]  # given with --egress (else decided: the VM's public IP, the --host address)
    ssh_sources: tuple[str, ...]  # --ssh-source (--cloud): else the address this machine is seen from
    data: Path | None
    data_listing: dict
    data_path: str | None
    output: Path
    existing: dict | None


def read_invitation(path: Path) -> tuple[silo.Invitation, str]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"invitation {path}: cannot be read ({exc.strerror or exc}): give the file the operator "
                         "sent.") from None
    return silo.parse_invitation(silo.loads(text, f"invitation {path}"), f"invitation {path}"), text


def _data(data: Path | None, data_path: str | None) -> tuple[Path | None, dict, str | None]:
    if (data is None) == (data_path is None):
        raise UsageError("give the silo's data with exactly one of --data DIR (copied to the machine) or "
                         "--data-path PATH (a directory already on it).")
    if data_path is not None:
        return None, {}, silo_member.data_path(data_path)
    from flwrazure.workstation import clientdata

    root = Path(data).expanduser()
    if not root.is_dir():
        raise UsageError(f"--data {data}: no such directory. Give the directory holding this silo's data (its "
                         "files are copied to the machine as ~/flwrazure/data).")
    return root.resolve(), clientdata.listing(root.resolve()), None


def check(invitation: Path, *, cloud: str | None, host: str | None, ssh_key: Path | None,
          subscription: str | None, location: str, vm_size: str, egress: str | None, data: Path | None,
          data_path: str | None, output: Path | None, resume: bool, ca_fingerprint: str | None = None,
          ssh_source: str | None = None) -> Join:
    """Every input, in the order a user fixes them; raises UsageError (exit 2) before anything is created. A
    re-run (--resume) takes what it is not given from the record of the first join."""
    inv, text = read_invitation(invitation)
    if ca_fingerprint is not None:  # a changed CA is said first: nothing else about this invitation matters
        silo.check_fingerprint(inv, ca_fingerprint)
    path = _record_path(inv.cluster, inv.silo)
    existing = json.loads(path.read_text()) if path.exists() else None
    if existing is None and resume:
        raise UsageError(f"--resume: this FLWRAZURE_HOME has not joined silo {inv.silo} of cluster {inv.cluster} "
                         "yet: run `flwrazure silo join` without --resume.")
    if existing is None or existing.get("token_sha256") != silo.token_digest(inv.token):
        silo.check_invitation(inv, dt.datetime.now(dt.timezone.utc))  # once joined, its expiry is the operator's
    if existing is not None and resume and cloud is None and host is None:
        if existing["mode"] == "host":
            host, ssh_key = f"{existing['user']}@{existing['host']}", ssh_key or Path(existing["ssh_private_key"])
        else:
            cloud = existing["cloud"]
        if data is None and data_path is None:
            data, data_path = (Path(existing["data"]) if existing.get("data") else None), existing.get("data_path")
        output = output or (Path(existing["join_request"]) if existing.get("join_request") else None)
    if (cloud is None) == (host is None):
        raise UsageError("say where the silo's SuperNode runs: --cloud azure|local (one VM in a resource group of "
                         "your own) or --host USER@ADDR --ssh-key KEY (a machine you run).")
    user, address, key = ADMIN_USER, None, None
    if host is not None:
        user, address = silo_member.parse_host(host)
        if ssh_key is None:
            raise UsageError(f"--host {host}: pass --ssh-key KEY, the private key that logs in as {user} there.")
        from flwrazure.remote.ssh import check_key

        key = check_key(ssh_key, "--ssh-key").path
    elif ssh_key is not None:
        raise UsageError("--ssh-key goes with --host: with --cloud, join makes the VM's key itself.")
    if existing is not None:
        was = existing.get("host") if existing["mode"] == "host" else existing.get("cloud")
        now = address if host is not None else cloud
        if existing["mode"] != ("host" if host is not None else "cloud") or was != now:
            where = f"--host {existing['user']}@{was}" if existing["mode"] == "host" else f"--cloud {was}"
            raise UsageError(f"silo {inv.silo} of cluster {inv.cluster} was joined here with {where}: re-run with "
                             f"it (or `flwrazure silo leave --cluster {inv.cluster} --silo {inv.silo}` first).")
    given_egress = tuple(silo.address(e, "--egress") for e in silo_member.parse_egress(egress)) if egress else ()
    sources = ()
    if ssh_source is not None:
        from flwrazure.plan.rules import parse_sources

        if host is not None:
            raise UsageError("--ssh-source goes with --cloud (the VM's SSH rule); your --host machine's firewall is "
                             "yours.")
        sources = parse_sources(ssh_source, "--ssh-source")
        if "*" in sources:
            raise UsageError("--ssh-source any would open the silo VM's SSH to everyone: give your address or "
                             "network.")
    root, listing, remote_path = _data(data, data_path)
    if cloud is not None:
        from flwrazure.azure.target import require_hosts

        require_hosts(cloud)  # the local cloud without sandbox VMs: nothing to log into
    out = Path(output) if output else Path(f"{inv.silo}.join-request.json")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: the directory {out.parent} does not exist.")
    return Join(inv, text, silo.fingerprint(inv.ca_certificate), "host" if host else "cloud", cloud, subscription,
                location, vm_size, user, address, key, given_egress, sources, root, listing, remote_path, out,
                existing)


def check_fingerprint(job: Join, given: str | None, interactive: bool) -> bool:
    """True when the fingerprint was given (check compared it) or confirmed at the first join; False when the
    caller must ask (a terminal); no terminal and no --ca-fingerprint: refused."""
    if given is not None:
        silo.check_fingerprint(job.invitation, given)
        return True
    if job.existing and job.existing.get("ca_fingerprint") == job.fingerprint:  # confirmed at the first join
        return True
    if not interactive:
        raise UsageError(f"the invitation's CA certificate has SHA-256 fingerprint {job.fingerprint}: compare it with "
                         "the one the operator sent you by another channel and pass --ca-fingerprint FINGERPRINT "
                         "(no terminal to confirm at).")
    return False


# -- the machine ------------------------------------------------------------------------------------------------
class _Quiet:
    def advance(self, kind: str) -> None:
        pass


def _new_record(job: Join) -> dict:
    inv = job.invitation
    rec = {"cluster": inv.cluster, "cluster_id": inv.cluster_id, "silo": inv.silo, "silo_id": str(uuid.uuid4()),
           "mode": job.mode, "cloud": job.cloud, "subscription": job.subscription, "location": job.location,
           "vm_size": job.vm_size, "resource_group": None, "rg_created": False, "vm": None, "user": job.user,
           "host": job.address, "ssh_private_key": str(job.ssh_key) if job.ssh_key else None,
           "status": "joining", "created": silo.iso(dt.datetime.now(dt.timezone.utc))}
    if job.mode == "cloud":
        rec["resource_group"] = silo_member.resource_group(inv.cluster, inv.silo)
        rec["vm"] = silo_member.vm(inv.cluster, inv.silo).vm
    return rec


def _create_vm(rec: dict, sources: tuple[str, ...]) -> str:
    """The silo's one VM, in a group of its own (converged: what exists and is ours is kept). Returns its public
    IP. SSH is open only from the address this machine is seen from; there is no Flower rule."""
    from concurrent.futures import ThreadPoolExecutor

    from flwrazure.azure import inventory, preflight, provision
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect
    from flwrazure.azure.waiter import Waiter
    from flwrazure.spec import ClusterSpec
    from flwrazure.workstation import operator, sshkeys

    target = connect(rec["cloud"], rec.get("subscription"), choosing=True)
    if rec.get("subscription") and rec["subscription"].lower() != target.subscription.lower():
        raise UsageError(f"silo {rec['silo']}'s VM lives in subscription {rec['subscription']}, not "
                         f"{target.subscription}: pass --subscription {rec['subscription']}.")
    rg, v, owner = rec["resource_group"], silo_member.vm(rec["cluster"], rec["silo"]), \
        silo_member.record_name(rec["cluster"], rec["silo"])
    with ThreadPoolExecutor(max_workers=6) as pool:
        detected = None if sources else pool.submit(operator.detect, target, "--ssh-source")
        facts = preflight.fetch(target, rec["location"], pool)
        try:
            group = inventory.group(target, rg)
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
        me = (detected.result(),) if detected is not None else sources
        tags = (group or {}).get("tags") or {}
        if group and not names.created_group(tags, owner, rec["silo_id"]):
            raise UsageError(f"resource group {rg} already exists and was not created by this silo's join: it is "
                             "never adopted; remove it or join from the FLWRAZURE_HOME that created it.")
        if group and group.get("location") != rec["location"]:
            raise UsageError(f"resource group {rg} is in {group.get('location')}: pass --location "
                             f"{group.get('location')}.")
        snap = inventory.snapshot(target, rg) if group else {k: {} for k in inventory.KINDS}
        machines = preflight.check(target, rec["location"], facts,
                                   [rec["vm_size"]] if v.vm.lower() not in snap["vm"] else [],
                                   0 if v.public_ip.lower() in snap["pip"] else 1, (rec["vm_size"],),
                                   flags={rec["vm_size"]: "--vm-size"})
    rec["vm_size"] = preflight.spelled(facts, rec["vm_size"])
    folder = settings.ensure_private_dir(record_dir(rec["cluster"], rec["silo"]))
    key = folder / "id_ed25519"
    public = Path(f"{key}.pub").read_text().strip() if key.exists() else sshkeys.generate(key, f"flwrazure-{owner}")
    rec.update({"subscription": target.subscription, "ssh_private_key": str(key), "rg_created": True})
    save(rec)  # before anything is created: leave finds it even if join is killed now
    if group is None:
        try:
            target.resources.resource_groups.create_or_update(rg, {"location": rec["location"], "tags": {
                **names.tags(owner, silo_member.ROLE, rec["silo_id"]), names.TAG_CREATED_GROUP: owner}})
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
    spec = ClusterSpec(cluster=owner, clients=0, cloud=rec["cloud"], subscription=target.subscription,
                       resource_group=rg, location=rec["location"], server_size=rec["vm_size"],
                       client_size=rec["vm_size"], admin_user=rec["user"], ssh_sources=me,
                       cluster_id=rec["silo_id"])
    run = provision.Run(target, spec, public, snap, Waiter(inventory.listers(target, rg), target.poll), _Quiet(),
                        machines=machines, vms=[v])
    provision.converge(run)
    if any(w.startswith("vm/") for w in run.writes):  # a new machine: a key pinned for this address is not its
        from flwrazure.remote import ssh

        rows = inventory.vm_rows(inventory.snapshot(target, rg, ("pip",)), [v])
        ssh.forget_hosts(folder / "known_hosts", [r["public_ip"] for r in rows if r["public_ip"]])
    row = inventory.vm_rows(inventory.snapshot(target, rg, ("vmview", "nic", "pip")), [v])[0]
    if not row["public_ip"]:
        raise FlwrazureError(f"VM {v.vm} has no public IP address yet: re-run `flwrazure silo join --resume`.")
    rec["ssh_sources"] = list(me)
    return row["public_ip"]


def _egress(job: Join, address: str) -> tuple[str, ...]:
    """The address(es) the SuperLink sees this silo's SuperNode connect from: --egress when given; else the VM's
    public IP (--cloud: Azure sends a VM's outbound traffic from its public IP); else the --host address (an IP,
    or the IPv4 address its DNS name resolves to) — a machine behind NAT gives its NAT's address with --egress."""
    if job.egress:
        return job.egress
    try:
        ip = socket.getaddrinfo(address, 22, socket.AF_INET)[0][4][0]
    except (OSError, IndexError):
        raise UsageError(f"--host {address}: no IPv4 address found for it; pass --egress IP (the address the "
                         "SuperLink sees the machine connect from).") from None
    return (silo.address(ip, "the machine's address"),)


def _supernode(conn, job: Join, rec: dict, layout, kind: str) -> tuple[str, dict | None, bool]:
    """Everything on the machine; returns (public key, data copied, service changed)."""
    from flwrazure.remote import bootstrap, clientdata, daemons, ssh

    inv = job.invitation
    bootstrap.ensure_flwr(conn, layout, inv.flwr_version, [], None, rec.get("vm") or rec["host"])
    line = ssh.run(conn, silo_member.keygen_command(layout, f"flwrazure-silo-{inv.silo}")).strip().splitlines()
    public = silo.public_key(line[-1] if line else "", f"the SuperNode public key made on {conn.host}")
    ssh.put_text(conn, inv.ca_certificate, layout.path(silo_member.CA), "600")
    copied = None
    if job.data is not None:
        copied = clientdata.sync(conn, layout.path(DATA_DIR), job.data, job.data_listing)
        path = layout.path(DATA_DIR)
    else:
        path = job.data_path
    command = services.supernode_command(inv.flwr_version, layout, inv.address, 0, 1, True, runtime_deps=True,
                                         data_path=path, fleet_port=inv.fleet_port)
    title = f"Flower SuperNode of silo {inv.silo}"
    changed = daemons.install(conn, SUPERNODE, kind, layout,
                              services.unit(title, command, layout, rec["user"], None),
                              services.loop_script(title, SUPERNODE, command, layout, None))
    return public, copied, changed


def node_state(conn, kind: str, layout) -> tuple[str, int | None]:
    from flwrazure.remote import daemons, ssh

    active = daemons.state(conn, SUPERNODE, kind, layout)
    return silo_member.node_state(active, ssh.output(conn, silo_member.current_log_command(kind, layout)))


def wait_online(conn, kind: str, layout, timeout: float) -> tuple[int | None, float]:
    """(node id, seconds) once the SuperNode's current run logged its node id (the SuperLink accepted its key);
    (None, seconds) at the timeout."""
    began = time.monotonic()
    while True:
        state, node = node_state(conn, kind, layout)
        if state == "online":
            return node, time.monotonic() - began
        if time.monotonic() - began >= timeout:
            return None, time.monotonic() - began
        time.sleep(2)


def connect(rec: dict, address: str, timeout: float = 600):
    """SSH to the silo's machine with the record's key and pinned host key; a new VM may take minutes to answer,
    a machine that runs already (leave, logs) is given `timeout`."""
    from flwrazure.remote import ssh

    return ssh.wait(address, rec.get("vm") or address, rec["user"], rec["ssh_private_key"],
                    record_dir(rec["cluster"], rec["silo"]) / "known_hosts", timeout=timeout)


def _machine_facts(conn, job: Join, rec: dict):
    """The layout under the user's real home, and, at the first join, what was there before (leave keeps it)."""
    from flwrazure.remote import ssh

    layout = services.Layout(silo_member.home(ssh.output(conn, 'printf %s "$HOME"'), rec["user"]))
    if "venv_existed" not in rec:
        rec["venv_existed"] = ssh.succeeds(conn, f"test -e {shlex.quote(layout.venv)}")
        flwr_home = shlex.quote(f"{layout.home}/{silo_member.FLWR_HOME}")
        rec["flwr_home_existed"] = ssh.succeeds(conn, f"test -e {flwr_home}")
    where = shlex.quote(job.data_path or "")
    if job.data_path is not None and not ssh.succeeds(conn, f"test -d {where} && test -r {where}"):
        raise UsageError(f"--data-path {job.data_path}: no such directory on {conn.host} (readable by "
                         f"{rec['user']}); put the data there first, or copy it with --data DIR.")
    return layout


def run(job: Join, wait: bool, timeout: float = WAIT_TIMEOUT, show: bool = True) -> dict:
    from flwrazure.remote import daemons

    inv = job.invitation
    rec = dict(job.existing) if job.existing else _new_record(job)
    if job.ssh_key is not None:  # --host: the key given now logs in (it may have been rotated since)
        rec["ssh_private_key"] = str(job.ssh_key)
    rec.update({"flwr_version": inv.flwr_version, "superlink": inv.superlink, "ca_fingerprint": job.fingerprint,
                "token_sha256": silo.token_digest(inv.token),
                "expires": inv.expires, "data": str(job.data) if job.data else None, "data_path": job.data_path})
    save(rec)
    files.write_atomic(record_dir(inv.cluster, inv.silo) / "invitation.json", job.invitation_text)
    progress = ui.Milestones(f"Joining cluster {inv.cluster} as silo {inv.silo}", show)
    with progress:
        if job.mode == "cloud":
            address = _create_vm(rec, job.ssh_sources)
            rec["host"] = address
            save(rec)
            progress.done("vm", f"VM {rec['vm']} ({address}) in resource group {rec['resource_group']}")
        else:
            address = rec["host"]
        egress = _egress(job, address)
        conn = connect(rec, address)
        try:
            layout = _machine_facts(conn, job, rec)
            kind = daemons.supervisor(conn)
            rec.update({"home": layout.home, "supervisor": kind, "egress": list(egress)})
            save(rec)
            public, copied, changed = _supernode(conn, job, rec, layout, kind)
            progress.done("supernode", f"Flower {inv.flwr_version}, SuperNode key made on the machine, service "
                                       f"{SUPERNODE} {'(re)started' if changed else 'running'} ({kind})")
            request = silo.JoinRequest(inv.cluster, inv.cluster_id, inv.silo, inv.token, public, egress,
                                       inv.flwr_version)
            files.write_atomic(job.output, silo.dumps(request))  # 0600: it carries the token
            rec.update({"public_key": public, "join_request": str(job.output.resolve()), "status": "joined"})
            save(rec)
            state, node = node_state(conn, kind, layout)
            seconds = None
            if wait and state != "online":
                node, seconds = wait_online(conn, kind, layout, timeout)
                state = "online" if node is not None else state
                if node is not None:
                    progress.done("online", f"SuperNode online (node id {node}) after {seconds:.0f} s of waiting")
        finally:
            conn.close()
    return {"cluster": inv.cluster, "silo": inv.silo, "mode": job.mode, "address": address,
            "egress": list(egress), "vm": rec.get("vm"), "resource_group": rec.get("resource_group"),
            "join_request": str(job.output), "public_key": public, "state": state,
            "node_id": None if node is None else str(node),  # a string, as the operator's side has it
            "waited_s": round(seconds, 1) if seconds is not None else None,
            "data_copied": len(copied["copied"]) if copied else 0, "service_changed": changed,
            "milestones": progress.seconds,
            "next": [] if state == "online" else
            [f"flwrazure silo join --resume --wait --cluster {inv.cluster} --silo {inv.silo}"]}


def told(result: dict) -> str | None:
    """What join tells its admin to do next, in words (the JSON's `next` has the command alone)."""
    if result["state"] == "online":
        return None
    return (f"send {result['join_request']} to the operator of cluster {result['cluster']} (`flwrazure silo admit "
            f"{Path(result['join_request']).name} --cluster {result['cluster']}`); once admitted, `flwrazure silo "
            "join --resume --wait` says when the SuperNode is online")


# -- leave, status, logs ----------------------------------------------------------------------------------------
def leave(rec: dict, show: bool = True) -> dict:
    """Stop the SuperNode and delete what join created; the record goes last (a failed leave can be re-run)."""
    rec = {**rec, "status": "leaving"}
    save(rec)
    removed: list[str] = []
    if rec["mode"] == "cloud":
        removed += _delete_group(rec)
    elif rec.get("host"):
        removed += _clean_host(rec)
    shutil.rmtree(record_dir(rec["cluster"], rec["silo"]), ignore_errors=True)
    return {"cluster": rec["cluster"], "silo": rec["silo"], "mode": rec["mode"], "removed": removed, "next": []}


def _delete_group(rec: dict) -> list[str]:
    from flwrazure.azure import groupdelete, inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect as connect_cloud

    if not rec.get("subscription"):  # join stopped before it asked the cloud anything
        return []
    target = connect_cloud(rec["cloud"], rec["subscription"])
    rg, owner = rec["resource_group"], silo_member.record_name(rec["cluster"], rec["silo"])
    try:
        group = inventory.group(target, rg)
    except Exception as exc:
        raise translate(exc, f"resource group {rg}") from exc
    if group is None:
        return []
    if not names.created_group(group.get("tags"), owner, rec["silo_id"]):
        raise UsageError(f"resource group {rg} does not carry this silo's identity (it was re-created by someone "
                         "else): it is not deleted; remove what is yours in it by hand.")
    if (group.get("properties") or {}).get("provisioningState") != "Deleting":
        deletion = groupdelete.begin(target, rg)
        groupdelete.wait_gone(target, rg, deletion, retry="re-run `flwrazure silo leave`")
    else:
        groupdelete.wait_gone(target, rg, retry="re-run `flwrazure silo leave`")
    if inventory.group(target, rg) is not None:
        raise FlwrazureError(f"resource group {rg} is still there after its deletion: re-run `flwrazure silo leave`.")
    return [f"resource group {rg} (VM {rec['vm']}, its disk, NIC, public IP, network and NSG)"]


def _clean_host(rec: dict) -> list[str]:
    from flwrazure.remote import daemons, ssh

    if not rec.get("home"):  # join never logged in: it installed nothing
        return []
    layout = services.Layout(rec["home"])
    conn = connect(rec, rec["host"], timeout=120)
    try:
        kind = rec.get("supervisor") or daemons.supervisor(conn)
        if daemons.state(conn, SUPERNODE, kind, layout) == "active":
            daemons.stop(conn, SUPERNODE, kind, layout)
        ssh.run(conn, silo_member.removal_command(layout, kind, bool(rec.get("data")),
                                                  rec.get("venv_existed") is False,
                                                  rec.get("flwr_home_existed") is False))
    finally:
        conn.close()
    what = [f"service {SUPERNODE}", f"{layout.base}/ (the files join wrote)"]
    return what + ([layout.venv] if rec.get("venv_existed") is False else []) + \
        ([f"{layout.home}/{silo_member.FLWR_HOME}"] if rec.get("flwr_home_existed") is False else [])


def status(rec: dict) -> dict:
    """What the silo owns and how its SuperNode is, from its own machine (never the operator's)."""
    from flwrazure.remote import daemons, ssh

    row = {k: rec.get(k) for k in ("cluster", "silo", "mode", "cloud", "subscription", "resource_group", "vm",
                                   "host", "user", "egress", "flwr_version", "superlink", "status",
                                   "join_request", "data", "data_path")}
    row.update({"service": None, "state": None, "node_id": None, "reachable": False, "checks": []})
    if not rec.get("home"):
        row["state"] = "not set up"
        return row
    layout = services.Layout(rec["home"])
    try:
        conn = ssh.connect(rec["host"], rec["user"], rec["ssh_private_key"],
                           record_dir(rec["cluster"], rec["silo"]) / "known_hosts", timeout=10)
        conn.open()
    except Exception as exc:  # an answer, not a failure: status says what it saw
        row["error"] = f"SSH to {rec['host']} failed: {exc}"
        return row
    try:
        kind = rec.get("supervisor") or daemons.supervisor(conn)
        row["reachable"] = True
        row["service"] = daemons.state(conn, SUPERNODE, kind, layout)
        row["state"], node = node_state(conn, kind, layout)
        row["node_id"] = None if node is None else str(node)
        key = layout.path(silo_member.KEY)
        mode = ssh.output(conn, f"stat -c %a {key} 2>&1; true").strip()
        ca = ssh.succeeds(conn, f"test -s {layout.path(silo_member.CA)}")
        resume = f"flwrazure silo join --resume --cluster {rec['cluster']} --silo {rec['silo']}"
        row["checks"] = [
            {"name": "supernode key private", "ok": mode == "600", "detail": f"{key}: {mode}",
             "fix": "" if mode == "600" else resume},
            {"name": "CA certificate in place", "ok": ca, "detail": layout.path(silo_member.CA) if ca else "missing",
             "fix": "" if ca else resume},
            {"name": "SuperNode service running", "ok": row["service"] == "active", "detail": str(row["service"]),
             "fix": "" if row["service"] == "active" else resume},
            {"name": "SuperNode accepted by the SuperLink", "ok": row["state"] == "online",
             "detail": row["state"] + (f" (node id {row['node_id']})" if row["node_id"] else ""),
             "fix": "" if row["state"] == "online" else
             f"the operator of cluster {rec['cluster']} admits your join request ({rec.get('join_request')})"}]
    finally:
        conn.close()
    return row


def logs(rec: dict, lines: int) -> str:
    from flwrazure.remote import ssh

    if not rec.get("home"):
        raise UsageError(f"silo {rec['silo']} has no SuperNode yet: re-run `flwrazure silo join`.")
    layout = services.Layout(rec["home"])
    kind = rec.get("supervisor") or "systemd"
    command = (f"journalctl -u {SUPERNODE} -n {int(lines)} --no-pager -o short-iso" if kind == "systemd" else
               f"tail -n {int(lines)} {layout.path(SUPERNODE + '.log')}")
    conn = connect(rec, rec["host"], timeout=60)
    try:
        return ssh.output(conn, command)
    finally:
        conn.close()
