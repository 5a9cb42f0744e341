"""start: Flower on the cluster's VMs — bootstrap over SSH on all VMs at once, the SuperLink as a systemd service
(healthy first), SuperNode keys registered, then the SuperNodes; finally the user's flwr connection."""

from __future__ import annotations

import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flwrazure import certs, flwrconfig, state, ui
from flwrazure.errors import FlwrazureError
from flwrazure.plan import names, services, versions

SUPERLINK, SUPERNODE = "flower-superlink", "flower-supernode"


def _addresses(target, st: dict) -> list[dict]:
    from flwrazure.azure import inventory

    snap = inventory.snapshot(target, st["resource_group"], ("nic", "pip"))
    rows = inventory.vm_rows({**snap, "vm": {}}, names.all_vms(st["cluster"], st["clients"]))
    if not all(r["public_ip"] and r["private_ip"] for r in rows):
        raise FlwrazureError(f"cluster {st['cluster']} is incomplete: run `flwrazure create-cluster --cluster "
                             f"{st['cluster']}` first.")
    return rows


def _install_unit(conn, name: str, text: str) -> bool:
    from flwrazure.remote.ssh import run

    path = f"/etc/systemd/system/{name}.service"
    current = conn.run(f"cat {path} 2>/dev/null", hide=True, warn=True, in_stream=False).stdout
    changed = current != text
    if changed:
        run(conn, f"printf %s {shlex.quote(text)} | sudo -n tee {path} >/dev/null && sudo -n systemctl daemon-reload")
    run(conn, f"sudo -n systemctl enable {name} >/dev/null 2>&1; sudo -n systemctl {'restart' if changed else 'start'} "
              f"{name}")
    return changed


def _wait_superlink(conn, plan, layout, secure: bool, timeout: float = 120) -> None:
    """Healthy: /health answers 200 (HTTP generation), or the Control port listens (gRPC generation)."""
    if plan.generation == "http":
        scheme = "https" if secure else "http"
        probe = (f"python3 -c \"import ssl,urllib.request; c=ssl.create_default_context(cafile='{layout.path('ca.crt')}')"
                 f" if '{scheme}'=='https' else None; print(urllib.request.urlopen('{scheme}://127.0.0.1:"
                 f"{plan.control}/health', context=c, timeout=3).status)\"")
    else:
        probe = f"ss -ltn | grep -q ':{plan.control} ' && echo 200"
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        out = conn.run(probe, hide=True, warn=True, in_stream=False).stdout.strip()
        if out == "200":
            return
        time.sleep(1)
    log = conn.run(f"journalctl -u {SUPERLINK} -n 5 --no-pager", hide=True, warn=True, in_stream=False).stdout
    raise FlwrazureError(f"the SuperLink on {conn.host} did not become healthy in {timeout:.0f} s: "
                         f"{' | '.join(log.strip().splitlines()[-3:])}")


def admin_flwr(conn, layout, plan, secure: bool) -> str:
    """A flwr connection on the server VM to its own SuperLink over loopback; returns the command prefix."""
    from flwrazure.remote.ssh import put_text, run

    admin = layout.path("admin")
    trust = f'root-certificates = "{layout.path("ca.crt")}"' if secure else "insecure = true"
    toml = f'[superlink]\ndefault = "admin"\n[superlink.admin]\naddress = "127.0.0.1:{plan.control}"\n{trust}\n'
    run(conn, f"mkdir -p {admin}/keys")
    put_text(conn, toml, f"{admin}/config.toml", "644")
    return f"FLWR_HOME={admin} FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 {layout.venv}/bin/flwr"


def online_count(conn, flwr: str) -> int:
    """SuperNodes the SuperLink lists as online (0 when it does not answer yet)."""
    out = conn.run(f"{flwr} supernode list admin --format json", hide=True, warn=True, in_stream=False).stdout
    try:
        nodes = json.loads(out[out.index("{"):]).get("nodes", [])
    except ValueError:
        return 0
    return sum(1 for n in nodes if n.get("status") == "online")


def _wait_online(conn, flwr: str, want: int, timeout: float = 180) -> int:
    """Until the SuperLink lists `want` SuperNodes online (they retry with backoff up to 20 s)."""
    start, count = time.monotonic(), 0
    while time.monotonic() - start < timeout:
        count = online_count(conn, flwr)
        if count >= want:
            return count
        time.sleep(2)
    raise FlwrazureError(f"only {count} of {want} SuperNodes came online within {timeout:.0f} s: check "
                         "`journalctl -u flower-supernode` on the client VMs (`flwrazure status` lists their IPs).")


def _register(conn, flwr: str, layout, vm: str, pub_line: str) -> str:
    """Register a SuperNode's public key with the SuperLink, from the server VM itself (Control API on loopback)."""
    from flwrazure.remote.ssh import put_text, run

    admin = layout.path("admin")
    put_text(conn, pub_line + "\n", f"{admin}/keys/{vm}.pub", "644")
    out = run(conn, f"{flwr} supernode register {admin}/keys/{vm}.pub admin --format json")
    data = json.loads(out[out.index("{"):])
    node = data.get("node-id") or data.get("node_id") or data.get("nodeId")
    if node is None:
        raise FlwrazureError(f"unexpected answer registering SuperNode {vm}: {out.strip()[:200]}")
    return str(node)


def run(cluster: str, insecure: bool, extra_pip: list[str], index_url: str | None, app: Path | None,
        runtime_deps: bool | None = None) -> dict:
    from flwrazure.azure.target import connect
    from flwrazure.remote import bootstrap, ssh

    st = state.load(cluster)
    target = connect(st["cloud"], st["subscription"])
    plan = versions.port_plan(st["flwr_version"])
    secure = not insecure
    if index_url is None and target.cloud == "local":
        index_url = target.pip_index  # the local cloud's mirror: its VMs have no internet
    if runtime_deps is None:  # offline VMs cannot resolve an app's dependencies at run time: use --extra-pip
        runtime_deps = target.cloud != "local"
    rows = _addresses(target, st)
    server, clients = rows[0], rows[1:]
    layout = services.Layout(f"/home/{st['admin_user']}")
    cdir = state.cluster_dir(cluster)
    known = cdir / "known_hosts"
    key = st["ssh_private_key"]
    if secure:
        ca, _ = certs.ensure_ca(cdir / "tls", cluster)
        certs.ensure_server_cert(cdir / "tls", cluster, [server["public_ip"], server["private_ip"]])
    installed: dict[str, bool] = {}

    def prepare(row: dict):
        conn = ssh.wait(row["public_ip"], row["vm"], st["admin_user"], key, known)
        installed[row["vm"]] = bootstrap.ensure_flwr(conn, layout, st["flwr_version"], extra_pip, index_url)
        return conn

    with ThreadPoolExecutor(max_workers=min(32, len(rows))) as pool:
        conns = dict(zip([r["vm"] for r in rows], pool.map(prepare, rows), strict=True))
    try:
        srv = conns[server["vm"]]
        if secure:
            for name in ("ca.crt", "server.pem", "server.key"):
                ssh.put_text(srv, (cdir / "tls" / name).read_text(), layout.path(name), "600")
        unit = services.unit("Flower SuperLink", services.superlink_command(plan, layout, secure, runtime_deps),
                             layout, st["admin_user"], index_url)
        changed = {server["vm"]: _install_unit(srv, SUPERLINK, unit)}
        _wait_superlink(srv, plan, layout, secure)
        registered = dict(st.get("registered_supernodes") or {})
        flwr = admin_flwr(srv, layout, plan, secure)
        keys = {}
        for row in clients:
            keys[row["vm"]] = certs.ensure_supernode_key(cdir / "supernodes" / f"{row['vm']}.key")
            if secure and row["vm"] not in registered:
                registered[row["vm"]] = _register(srv, flwr, layout, row["vm"], keys[row["vm"]][1])
        st["registered_supernodes"] = registered
        state.save(cluster, st)

        def supernode(args) -> bool:
            i, row = args
            conn = conns[row["vm"]]
            if secure:
                ssh.put_text(conn, (cdir / "tls" / "ca.crt").read_text(), layout.path("ca.crt"), "600")
                ssh.put_text(conn, keys[row["vm"]][0].read_text(), layout.path("supernode.key"), "600")
            text = services.unit(f"Flower SuperNode {i}", services.supernode_command(
                plan, layout, server["public_ip"], i - 1, len(clients), secure), layout, st["admin_user"], index_url)
            return _install_unit(conn, SUPERNODE, text)

        with ThreadPoolExecutor(max_workers=min(32, len(clients))) as pool:
            for row, ch in zip(clients, pool.map(supernode, enumerate(clients, start=1)), strict=True):
                changed[row["vm"]] = ch
        if plan.generation == "http" or secure:  # the gRPC generation's `supernode list` needs auth enabled
            online = _wait_online(srv, flwr, len(clients))
        else:
            online = None
    finally:
        for conn in conns.values():
            conn.close()
    address = f"{server['public_ip']}:{plan.control}"
    root = str((cdir / "tls" / "ca.crt").resolve()) if secure else None
    config = flwrconfig.write_connection(cluster, address, root)
    st.update({"started": True, "secure": secure, "superlink_address": address})
    state.save(cluster, st)
    if not secure:
        ui.warn("--insecure: no TLS and no SuperNode authentication (the seed guide's setup). Not for production.")
    return {"cluster": cluster, "secure": secure, "superlink": address, "flwr_config": str(config),
            "installed": installed, "services_changed": changed, "supernodes_online": online,
            "next": f"flwr run {app or '<app-dir>'} {cluster}"}
