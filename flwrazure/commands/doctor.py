"""doctor: gather what can be observed about a cluster — from ARM, from this machine (your address, flwr CLI,
flwr connection, the SuperLink certificate), and from the VMs over SSH (services, SuperNodes, clocks) — and judge it
with plan/doctor.py. `--local-only` skips everything that connects to the VMs. Also: renewing the SuperLink
certificate on a live cluster."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from flwrazure import workers
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import doctor as checks
from flwrazure.plan import layout as network
from flwrazure.plan import names, rules, silo, spot, versions
from flwrazure.workstation import flwrconfig, operator, state


def ssh_fix(st: dict, ip: str) -> str:
    """The exact create-cluster command that re-admits SSH from `ip` without changing anything else."""
    return f"{create_command(st)} --ssh-source {ip}"


def create_command(st: dict) -> str:
    """The create-cluster command that converges to the recorded cluster (re-creates what is missing)."""
    parts = ["flwrazure create-cluster", f"--cluster {st['cluster']}", f"--cloud {st['cloud']}",
             f"--clients {st['clients']}", f"--location {st['location']}", f"--resource-group {st['resource_group']}",
             f"--server-vm-size {st['server_size']}", f"--client-vm-size {st['client_size']}",
             f"--admin-user {st['admin_user']}", f"--flwr-version {st['flwr_version']}"]
    default_key = state.cluster_dir(st["cluster"]) / "id_ed25519"
    if st.get("ssh_private_key") and Path(st["ssh_private_key"]) != default_key:
        parts.append(f"--ssh-key {st['ssh_private_key']}")
    if not st.get("rg_created"):
        parts.append("--use-existing-group")
    if st.get("private_clients"):
        parts.append("--private-clients")
    if st.get("spot"):
        parts.append("--spot" + (f" --max-price {st['max_price']:g}" if st.get("max_price") is not None else ""))
    return " ".join(parts)


def _rule_sources(nsg: dict | None, name: str) -> list[str] | None:
    for r in (nsg or {}).get("properties", {}).get("securityRules", []):
        if r["name"] == name:
            p = r["properties"]
            return list(p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix")])
    return None


def _cert_facts(path: Path) -> tuple[set[str] | None, dt.datetime | None]:
    from cryptography import x509

    from flwrazure.workstation import certs

    if not path.is_file():
        return None, None
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return certs.sans_of(path), cert.not_valid_after_utc


def _connection_entry(st: dict) -> tuple[dict | None, str]:
    import tomlkit

    cluster = st["cluster"]
    if versions.config_toml(st["flwr_version"]):
        path = flwrconfig.config_path()
        keys = ("superlink", cluster)
    else:
        if not st.get("federation_pyproject"):
            return None, "an app's pyproject.toml (start --app DIR writes it)"
        path = Path(st["federation_pyproject"])
        keys = ("tool", "flwr", "federations", cluster)
    try:
        node = tomlkit.parse(path.read_text()).unwrap()
    except (OSError, ValueError):
        return None, str(path)
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), str(path)


def run(cluster: str, local_only: bool = False, now: dt.datetime | None = None) -> dict:
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect
    from flwrazure.commands.start import operator_flwr

    st = state.load(cluster)
    target = connect(st["cloud"], st["subscription"])
    now = now or dt.datetime.now(dt.timezone.utc)
    with workers.pool(3) as pool:
        mine_f = pool.submit(operator_flwr)
        ip_f = pool.submit(lambda: operator.detect(target))
        try:
            snap = inventory.snapshot(target, st["resource_group"], ("vmview", "nic", "pip", "nsg", "vnet"))
        except Exception as exc:
            raise translate(exc, f"resource group {st['resource_group']}") from exc
        try:
            my_ip = ip_f.result()
        except FlwrazureError:
            my_ip = None
        mine = mine_f.result()
    rows = spot.mark_evicted(inventory.vm_rows(snap, names.all_vms(cluster, st["clients"])), bool(st.get("paused")))
    nsg = snap["nsg"].get(names.nsg(cluster).lower())
    plan = versions.port_plan(st["flwr_version"])
    started, secure = bool(st.get("started")), bool(st.get("secure"))
    out: list[checks.Check] = [checks.vms_running(rows, cluster)]
    out.append(checks.address_allowed("SSH", my_ip, _rule_sources(nsg, rules.SSH), ssh_fix(st, my_ip or "<your-ip>")))
    control = _rule_sources(nsg, rules.CONTROL)
    out.append(checks.control_rule(control is not None, cluster, my_ip))
    out.append(checks.address_allowed("Control", my_ip, control,
                                      f"flwrazure open-ports --cluster {cluster} --source {my_ip or '<your-ip>'}"))
    address = st.get("superlink_address") or f"{rows[0]['public_ip']}:{plan.control}"
    entry, where = _connection_entry(st) if started else (None, "")
    if started and secure:
        # valid for the address `flwr` will dial: the one in the user's connection (else the SuperLink's)
        dialed = str((entry or {}).get("address") or address)
        sans, not_after = _cert_facts(state.cluster_dir(cluster) / "tls" / "server.pem")
        out.append(checks.certificate(sans, not_after, dialed.rsplit(":", 1)[0], now, cluster))
    else:
        out.append(checks.skipped("superlink certificate", "no TLS (insecure cluster)" if started else
                                  "Flower not started"))
    if st.get("private_clients"):
        vnet = snap["vnet"].get(names.vnet(cluster).lower()) or {}
        subnet = next((s for s in (vnet.get("properties") or {}).get("subnets") or [] if s["name"] == names.subnet()),
                      None)
        out.append(checks.client_outbound(subnet, names.nat_gateway(cluster), create_command(st)))
    out.append(checks.flwr_cli(mine, st["flwr_version"]))
    if started:
        root = str((state.cluster_dir(cluster) / "tls" / "ca.crt").resolve()) if secure else None
        out.append(checks.connection(entry, address, root, cluster, where))
    else:
        out.append(checks.skipped("flwr connection", "Flower not started"))
    remote = ["control port reachable", "services active", "supernodes online", "clock skew"]
    if any(r.get("state") == silo.ADMITTED for r in (st.get("silos") or {}).values()):
        remote.insert(3, "silos online")
    if local_only or not started or not any(r["state"] == "running" for r in rows):
        why = "--local-only" if local_only else "Flower not started" if not started else "no VM is running"
        out += [checks.skipped(n, why) for n in remote]
    else:
        out += _remote(st, rows, plan, address, my_ip)
    passed, failed, skipped = checks.summary(out)
    return {"cluster": cluster, "operator_ip": my_ip, "operator_flwr": mine, "checks": [c.to_dict() for c in out],
            "passed": passed, "failed": failed, "skipped": skipped, "ok": failed == 0, "next": _fixes(out)}


def _fixes(done: list[checks.Check]) -> list[str]:
    """The failed checks' fixes that are one command (a fix that needs prose around it stays in its check)."""
    import re

    commands = [c.fix.split("   (")[0].strip() for c in done if c.ok is False and c.fix]
    return list(dict.fromkeys(c for c in commands if re.match(r"(flwrazure|flwr|pip|az) ", c) and "(" not in c))


def _remote(st: dict, rows: list[dict], plan, address: str, my_ip: str | None) -> list[checks.Check]:
    """The checks that connect to the VMs: all VMs at once."""
    from flwrazure.azure.target import require_hosts
    from flwrazure.commands.start import SUPERLINK, SUPERNODE
    from flwrazure.plan.services import Layout
    from flwrazure.remote import daemons, flwradmin, ssh

    require_hosts(st["cloud"])
    cluster = st["cluster"]
    layout = Layout(f"/home/{st['admin_user']}")
    known = state.cluster_dir(cluster) / "known_hosts"
    services: dict[str, str] = {}
    offsets: dict[str, float] = {}
    tails: dict[str, list[str]] = {}
    listed: list = []
    hops = {r["vm"]: network.route(r, rows[0]) for r in rows}  # rows[0]: the server
    running = [r for r in rows if r["state"] == "running" and hops[r["vm"]]]
    clients = [r["vm"] for r in rows if r["role"] == "client"]

    def probe(row: dict) -> None:
        unit = SUPERLINK if row["role"] == "server" else SUPERNODE
        kind = (st.get("supervisors") or {}).get(row["vm"], daemons.SYSTEMD)
        try:
            ip, via = hops[row["vm"]]
            conn = ssh.connect(ip, st["admin_user"], st["ssh_private_key"], known, timeout=8, via=via)
            with conn:
                before = time.time()
                remote_now = ssh.output(conn, "date +%s.%N").strip()
                after = time.time()
                try:
                    offsets[row["vm"]] = checks.offset(before, float(remote_now), after)
                except ValueError:
                    pass
                services[row["vm"]] = daemons.state(conn, unit, kind, layout)
                if row["role"] == "server" and services[row["vm"]] == "active":
                    adm = flwradmin.setup(conn, layout, st["flwr_version"], plan.control, bool(st.get("secure")))
                    listed.append(flwradmin.nodes(conn, adm))
                if row["role"] == "client":
                    cmd = (f"journalctl -u {unit} -n 5 --no-pager -q -o cat" if kind == daemons.SYSTEMD else
                           f"tail -n 5 {layout.path(unit + '.log')}")
                    tails[row["vm"]] = ssh.output(conn, cmd).splitlines()
        except Exception as exc:  # doctor reports; one unreachable VM is a finding, not a crash
            services[row["vm"]] = f"unreachable ({type(exc).__name__})"

    with workers.pool(min(16, len(running) + 1)) as pool:
        reach = pool.submit(operator.probe_tcp, address.rsplit(":", 1)[0], int(address.rsplit(":", 1)[1]))
        list(pool.map(probe, running))
        outcome = reach.result()
    for r in rows:
        services.setdefault(r["vm"], "vm not running" if r["state"] != "running" else "unreachable")
    out = [checks.control_reachable(outcome, address, cluster, my_ip), checks.services_active(services, cluster)]
    if listed and listed[0] is not None and st.get("secure"):
        by_vm = flwradmin.by_vm(st.get("registered_supernodes") or {}, listed[0], clients)
        out.append(checks.supernodes_online(by_vm, tails, cluster))
    elif listed and listed[0] is not None:
        online = flwradmin.count_online(listed[0])
        out.append(checks.Check("supernodes online", online >= len(clients), f"{online} of {len(clients)} online",
                                "" if online >= len(clients) else f"flwrazure start --cluster {cluster}"))
    else:
        out.append(checks.skipped("supernodes online", "the SuperLink could not be asked (see services active)"))
    if any(r.get("state") == silo.ADMITTED for r in (st.get("silos") or {}).values()):
        by_id = {str(n.get("node-id")): n for n in listed[0]} if listed and listed[0] is not None else None
        out.append(silo.doctor_check(st.get("silos") or {}, by_id, cluster))
    out.append(checks.clock_skew(offsets))
    return out


def renew_cert(cluster: str, show: bool = True) -> dict:
    """A new SuperLink certificate from the same cluster CA (SuperNodes and the flwr CLI trust the CA, so they keep
    working), installed on the server VM, the SuperLink restarted; waits until every SuperNode is back online."""
    from flwrazure import ui
    from flwrazure.azure.target import connect
    from flwrazure.commands.start import SUPERLINK, _addresses, _wait_superlink
    from flwrazure.plan.services import Layout
    from flwrazure.remote import daemons, flwradmin, ssh
    from flwrazure.workstation import certs

    st = state.load(cluster)
    if not (st.get("started") and st.get("secure")):
        raise UsageError(f"cluster {cluster} runs no TLS SuperLink: nothing to renew.")
    target = connect(st["cloud"], st["subscription"])
    server = _addresses(target, st)[0]
    tls = state.cluster_dir(cluster) / "tls"
    began = time.monotonic()
    crt, key = certs.renew_server_cert(tls, cluster, [server["public_ip"], server["private_ip"]])
    layout = Layout(f"/home/{st['admin_user']}")
    plan = versions.port_plan(st["flwr_version"])
    kind = (st.get("supervisors") or {}).get(server["vm"], daemons.SYSTEMD)
    conn = ssh.wait(server["public_ip"], server["vm"], st["admin_user"], st["ssh_private_key"],
                    state.cluster_dir(cluster) / "known_hosts", timeout=120)
    with conn:
        ssh.put_text(conn, crt.read_text(), layout.path("server.pem"), "600")
        ssh.put_text(conn, key.read_text(), layout.path("server.key"), "600")
        if kind == daemons.SYSTEMD:
            ssh.run(conn, f"sudo -n systemctl restart {SUPERLINK}")
        else:
            daemons.stop(conn, SUPERLINK, kind, layout)
            ssh.run(conn, f"setsid nohup sh {layout.path(SUPERLINK + '.sh')} >> {layout.path(SUPERLINK + '.log')} "
                          "2>&1 < /dev/null &")
        _wait_superlink(conn, plan, layout, True, kind)
        adm = flwradmin.setup(conn, layout, st["flwr_version"], plan.control, True)
        online = flwradmin.wait_online(conn, adm, st["clients"])
    _, not_after = _cert_facts(crt)
    if show:
        ui.out(f"SuperLink certificate renewed (valid until {not_after:%Y-%m-%d}); {online} SuperNode(s) online.")
    return {"cluster": cluster, "not_after": not_after.isoformat(), "supernodes_online": online,
            "seconds": round(time.monotonic() - began, 1), "next": []}
