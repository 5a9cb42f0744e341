"""The operator's side of cross-silo federations (issue 24): invite, admit, list, remove. Decisions and formats
in plan/silo.py; the records are the `silos` key of the cluster's record (the token's digest, never the token).

A silo's SuperNode is registered at the SuperLink like a client VM's (flwr supernode register, on the server VM
over SSH, under the name `silo-<NAME>`), and its egress addresses join the Fleet rule's sources (open-ports keeps
them there). The operator never gets SSH to a silo, nor a silo to the operator's VMs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flwrazure import ui
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import silo as plan
from flwrazure.plan import versions
from flwrazure.workstation import files, state


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def key_name(name: str) -> str:
    """The silo's name among the SuperLink's registrations and key files on the server VM (never a VM's name)."""
    return f"silo-{name}"


def _silos(st: dict) -> dict[str, dict]:
    return dict(st.get("silos") or {})


def _set(cluster: str, name: str, rec: dict) -> None:
    def put(st: dict) -> dict:
        st["silos"] = {**_silos(st), name: rec}
        return st

    state.change(cluster, put)


def _secure_started(cluster: str, st: dict, what: str) -> None:
    if not st.get("started"):
        raise UsageError(f"cluster {cluster} has not been started: run `flwrazure start --cluster {cluster}` (secure, "
                         f"the default) before {what}.")
    if not st.get("secure"):
        raise UsageError(f"cluster {cluster} was started with --insecure (no TLS, no SuperNode authentication): a "
                         f"silo could neither trust the SuperLink nor be told apart from anyone else. Restart it "
                         f"secure (`flwrazure start --cluster {cluster}`) before {what}.")
    if not st.get("cluster_id"):
        raise UsageError(f"cluster {cluster} was recorded before clusters had an identity ({plan.names.TAG_ID}): "
                         "silos need one; create a new cluster for a cross-silo federation.")


# -- invite -----------------------------------------------------------------------------------------------------
def _output_path(given: Path | None, name: str, cluster: str) -> Path:
    """The invitation's file: -o FILE or NAME.invitation.json here. An existing file is replaced only when it is
    an earlier invitation of this very silo and cluster (which the new one voids anyway): anything else is kept."""
    out = Path(given) if given else Path(f"{name}.invitation.json")
    if out.is_dir():
        raise UsageError(f"-o {out} is a directory: give a file name (e.g. {out / f'{name}.invitation.json'}).")
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: folder {out.parent} does not exist.")
    if out.exists() or out.is_symlink():
        try:
            old = plan.parse_invitation(plan.loads(out.read_text(encoding="utf-8"), str(out)))
            ours = (old.cluster, old.silo) == (cluster, name) and not out.is_symlink()
        except (UsageError, OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise UsageError(f"-o {out} exists and is not an earlier invitation of silo {name} to cluster {cluster}: "
                             "it is kept; give another file name with -o.")
    return out


def invite(cluster: str, name: str, expires: str, output: Path | None) -> dict:
    plan.silo_name(name, "NAME")
    span = plan.parse_duration(expires)
    st = state.load(cluster)
    _secure_started(cluster, st, "inviting silos")
    plan.check_invite(name, _silos(st).get(name))
    out = _output_path(output, name, cluster)
    ca = state.cluster_dir(cluster) / "tls" / "ca.crt"
    try:
        pem = ca.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlwrazureError(f"cluster {cluster}'s CA certificate {ca} cannot be read ({exc}): re-run "
                             f"`flwrazure start --cluster {cluster}`.") from None
    version = st["flwr_version"]
    if not st.get("superlink_address"):
        raise FlwrazureError(f"cluster {cluster}'s record has no SuperLink address: re-run `flwrazure start "
                             f"--cluster {cluster}`.")
    now = _now()
    inv = plan.Invitation(cluster, st["cluster_id"], name, st["superlink_address"].rsplit(":", 1)[0],
                          versions.port_plan(version).fleet, pem, version, plan.iso(now + span), plan.new_token())
    plan.parse_invitation(inv.to_dict())  # what the silo will read, checked as it will check it
    rec = plan.record(inv, now)
    _set(cluster, name, rec)  # first: a file whose token is not recorded could never be admitted
    files.write_atomic(out, plan.dumps(inv), 0o600)
    return {"invitation": str(out), "ca_fingerprint": rec["ca_fingerprint"], "silo": name, "cluster": cluster,
            "expires": inv.expires, "shared_port": versions.port_plan(version).control == inv.fleet_port,
            "next": plan.next_invite(name, cluster)}


# -- admit ------------------------------------------------------------------------------------------------------
def read_request(path: Path) -> plan.JoinRequest:
    what = f"join request {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} does not exist: give the file the silo's `flwrazure silo join` wrote.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} cannot be read ({getattr(exc, 'strerror', None) or exc}).") from None
    return plan.parse_request(plan.loads(text, what), what)


def _check_key_unique(cluster: str, st: dict, req: plan.JoinRequest) -> None:
    """A key another silo of this cluster was admitted with is refused: a silo copying another's public key
    would otherwise be admitted as that silo's node."""
    for other, rec in _silos(st).items():
        if other != req.silo and rec.get("state") == plan.ADMITTED and rec.get("public_key") == req.public_key:
            raise UsageError(f"the join request of silo {req.silo} carries the public key silo {other} was "
                             f"admitted with: refused (each silo makes its own key pair).")


def admit(cluster: str, request_path: Path) -> dict:
    req = read_request(request_path)
    st = state.load(cluster)
    _secure_started(cluster, st, "admitting silos")
    rec = _silos(st).get(req.silo)
    decision = plan.check_request(req, rec, cluster, st.get("cluster_id"), st["flwr_version"], _now())
    if decision == plan.ADMIT:
        _check_key_unique(cluster, st, req)
        node = _register(st, req)
        rec = plan.admitted(rec, req, node, _now())
        _set(cluster, req.silo, rec)  # at once: a re-run does not register twice
    rules = _converge_fleet(cluster, st)
    return {"cluster": cluster, "silo": req.silo, "node_id": rec["node_id"], "egress": list(req.egress),
            "already_admitted": decision == plan.ALREADY, "rules": rules, "next": plan.next_admit(cluster)}


def _server(st: dict):
    if st.get("paused"):
        raise UsageError(f"cluster {st['cluster']} is paused: its SuperLink cannot be asked; run `flwrazure resume "
                         f"--cluster {st['cluster']}` first.")
    from flwrazure.azure.target import connect
    from flwrazure.commands import server_admin

    conn, adm = server_admin(st, connect(st["cloud"], st["subscription"]))
    if conn is None:
        raise FlwrazureError(f"the server VM of cluster {st['cluster']} has no public IP: is it paused or gone? "
                             "(`flwrazure status`)")
    return conn, adm


def _register(st: dict, req: plan.JoinRequest) -> str:
    from flwrazure.remote import flwradmin

    conn, adm = _server(st)
    with conn:
        node = flwradmin.register(conn, adm, {key_name(req.silo): req.public_key})[key_name(req.silo)]
    if node == "registered":
        raise UsageError(f"the SuperLink knows silo {req.silo}'s public key already (a client VM's or an earlier "
                         "silo's): refused; the silo makes a new key pair and join request.")
    return node


def _converge_fleet(cluster: str, st: dict) -> list[dict] | None:
    """The Fleet rule admits the client VMs and the admitted silos (open-ports converges every Flower rule to the
    record). Without Flower rules yet (open-ports never ran) there is nothing to widen: open-ports adds them."""
    if not st.get("control_sources"):
        ui.warn(f"cluster {cluster} has no Flower rules yet: `flwrazure open-ports --cluster {cluster}` opens the "
                "Fleet port to its clients and admitted silos.")
        return None
    from flwrazure.commands import ports

    return ports.run(cluster, None, False)["rules"]


# -- list -------------------------------------------------------------------------------------------------------
def nodes_by_id(st: dict) -> dict[str, dict] | None:
    """The SuperLink's node list by node id, or None when it cannot be asked (server not reachable)."""
    from flwrazure.remote import flwradmin

    try:
        conn, adm = _server(st)
    except FlwrazureError as exc:
        ui.warn(f"cannot ask the SuperLink which silos are online: {exc}")
        return None
    with conn:
        listed = flwradmin.nodes(conn, adm)
    return None if listed is None else {str(n.get("node-id")): n for n in listed}


def rows(st: dict, ask: bool = True) -> list[dict]:
    """One row per silo (see plan.online_state); the SuperLink is asked only when a silo has a node there."""
    silos = _silos(st)
    listed = None
    if ask and any(r.get("node_id") and r.get("state") in (plan.ADMITTED, plan.REMOVED) for r in silos.values()):
        listed = nodes_by_id(st)
    return [plan.online_state(silos[n], listed) for n in sorted(silos)]


def list_silos(cluster: str) -> dict:
    st = state.load(cluster)
    return {"cluster": cluster, "silos": rows(st), "next": [] if _silos(st) else
            [f"flwrazure silo invite <name> --cluster {cluster}"]}


# -- remove -----------------------------------------------------------------------------------------------------
def remove(cluster: str, name: str) -> dict:
    plan.silo_name(name, "NAME")
    st = state.load(cluster)
    rec = _silos(st).get(name)
    if rec is None:
        known = ", ".join(sorted(_silos(st))) or "none"
        raise UsageError(f"cluster {cluster} has no silo named {name} (silos: {known}).")
    was = rec.get("state")
    if was == plan.ADMITTED and rec.get("node_id"):
        from flwrazure.remote import flwradmin

        conn, adm = _server(st)
        with conn:
            result = flwradmin.unregister(conn, adm, {key_name(name): int(rec["node_id"])})[key_name(name)]
        if result != "ok":
            raise FlwrazureError(f"unregistering silo {name} (node {rec['node_id']}) failed: {result}; nothing was "
                                 "changed. Re-run the same `flwrazure silo remove`.")
    if was != plan.REMOVED:
        _set(cluster, name, plan.removed(rec, _now()))
    rules = _converge_fleet(cluster, state.load(cluster)) if was == plan.ADMITTED or was == plan.REMOVED else None
    return {"cluster": cluster, "silo": name, "was": was, "node_id": rec.get("node_id"), "rules": rules,
            "next": []}  # the silo's admin runs `flwrazure silo leave` on their side: nothing for the operator


def admitted_silos(cluster: str) -> list[str]:
    """The silos a teardown leaves without a SuperLink (their records go with the cluster's): their admins are
    told to `silo leave`."""
    try:
        st = state.load(cluster)
    except UsageError:
        return []
    return sorted(n for n, r in _silos(st).items() if r.get("state") == plan.ADMITTED)
