"""start: Flower on the cluster's VMs — bootstrap over SSH on all VMs at once, the SuperLink as a service
(healthy first), SuperNode keys registered, then the SuperNodes; finally the user's flwr connection."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flwrazure import ui, workers
from flwrazure.commands import in_background
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import bootstrap as plan_bootstrap
from flwrazure.plan import layout as network
from flwrazure.plan import names, services, versions
from flwrazure.workstation import certs, flwrconfig, state

SUPERLINK, SUPERNODE = "flower-superlink", "flower-supernode"


def _addresses(target, st: dict) -> list[dict]:
    from flwrazure.azure import inventory

    snap = inventory.snapshot(target, st["resource_group"], ("nic", "pip", "vm"))
    rows = inventory.vm_rows(snap, names.all_vms(st["cluster"], st["clients"]))
    private = bool(st.get("private_clients"))  # client VMs without public IPs (plan.layout)
    if not all(r["private_ip"] and (r["public_ip"] or (private and r["role"] == "client")) for r in rows):
        raise FlwrazureError(f"cluster {st['cluster']} is incomplete: run `flwrazure create-cluster --cluster "
                             f"{st['cluster']}` first.")
    if target.cloud == "local":  # this machine boots x86_64 images only: an Arm64 VM has nothing to log into
        for row in rows:
            image = (snap["vm"].get(row["vm"].lower()) or {}).get("properties", {}).get(
                "storageProfile", {}).get("imageReference", {})
            if "arm64" in str(image.get("sku", "")).lower():
                raise UsageError(f"VM {row['vm']} ({row['size']}) boots an Arm64 image, which the local cloud cannot "
                                 "run on this x86_64 machine (the VM exists in the API only): use an x64 size "
                                 "there, e.g. --vm-size Standard_D2s_v3.")
    return rows


HEALTH_TIMEOUT = 120  # seconds the SuperLink may take to become healthy


def _health_probe(plan, layout, secure: bool) -> str:
    """A shell command printing 200 once the SuperLink is healthy: /health answers 200 (HTTP generation), or the
    Control port listens (gRPC generation)."""
    if plan.generation == "http":
        scheme = "https" if secure else "http"
        return (f"python3 -c \"import ssl,urllib.request; c=ssl.create_default_context(cafile='{layout.path('ca.crt')}')"
                f" if '{scheme}'=='https' else None; print(urllib.request.urlopen('{scheme}://127.0.0.1:"
                f"{plan.control}/health', context=c, timeout=3).status)\" 2>/dev/null")
    return f"ss -ltn | grep -q ':{plan.control} ' && echo 200"


def _wait_superlink(conn, plan, layout, secure: bool, kind: str, timeout: float = HEALTH_TIMEOUT) -> None:
    """Until the SuperLink is healthy (_health_probe); a crash loop or the timeout is one error with its log."""
    from flwrazure.remote import daemons
    from flwrazure.remote.ssh import output

    probe = _health_probe(plan, layout, secure)
    start, failing, checked = time.monotonic(), False, 0.0
    while time.monotonic() - start < timeout and not failing:
        if output(conn, probe).strip() == "200":
            return
        if time.monotonic() - checked >= 1:  # probed every 0.25 s: the SuperLink's first seconds are on the path
            failing = daemons.restarts(conn, SUPERLINK, kind, layout) >= 2  # crash loop: no point in waiting
            checked = time.monotonic()
        time.sleep(0.25)
    log = output(conn, f"journalctl -u {SUPERLINK} -n 5 --no-pager" if kind == daemons.SYSTEMD else
                 f"tail -n 5 {layout.path(SUPERLINK)}.log")
    why = "keeps exiting" if failing else f"did not become healthy in {timeout:.0f} s"
    raise FlwrazureError(f"the SuperLink on {conn.host} {why}: "
                         f"{' | '.join(log.strip().splitlines()[-3:])}")


def operator_flwr() -> str | None:
    """The version of the flwr CLI on this machine's PATH (the one `flwr run` will use), None if there is none."""
    import os
    import re
    import shutil
    import subprocess

    exe = shutil.which("flwr")
    if exe is None:
        return None
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, env=env,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"(\d+\.\d+\.\d+)", out)
    return m.group(1) if m else None


def check_hosts(cloud: str) -> None:
    """Refuse at once, before anything is created or sent, when the VMs cannot be logged into from here."""
    from flwrazure.azure.target import require_hosts

    require_hosts(cloud)


def check(version: str, secure: bool, app: Path | None, index_url: str | None = None,
          extra_pip: list[str] | tuple[str, ...] = ()) -> None:
    """Refuse, before touching anything, what this Flower version cannot do, and an --index-url or --extra-pip
    that may not reach the VMs' shells, units and pip."""
    from flwrazure.spec import packages

    packages(index_url, extra_pip)
    if secure and not versions.supernode_cli(version):
        raise UsageError(f"Flower {version} authenticates SuperNodes with CSV key lists, which flwrazure does not "
                         "manage: pass --insecure, or use a cluster with flwr 1.23 or newer (e.g. 1.42.0).")
    if app is not None and not versions.config_toml(version) and not (app / "pyproject.toml").is_file():
        raise UsageError(f"--app {app}: no pyproject.toml there (Flower {version} reads the federation from the "
                         "app's pyproject.toml); give a Flower app directory.")
    # the connection is written last, after minutes of work: a file it cannot go into is said now
    if versions.config_toml(version):
        flwrconfig.check(flwrconfig.config_path())
    elif app is not None:
        flwrconfig.check(app / "pyproject.toml", legacy=True)


def check_client_data(root: Path | None, clients: int, digests: bool = True) -> tuple[Path | None, dict[int, dict]]:
    """--client-data, before anything is copied or created: DIR/1 … DIR/<clients> exist and every name in them may
    travel to a VM. Returns DIR (absolute) and each client's listing (relative path -> size, sha256; without
    `digests` only the names and kinds are checked: `up`, before it creates the VMs)."""
    if root is None:
        return None, {}
    from flwrazure.workstation import clientdata

    root = clientdata.check(root, clients)
    return root, {i: clientdata.listing(root / str(i), digests) for i in range(1, clients + 1)}


def run(cluster: str, insecure: bool, extra_pip: list[str], index_url: str | None, app: Path | None,
        runtime_deps: bool | None = None, show: bool = True, client_data: Path | None = None) -> dict:
    from rich.markup import escape

    from flwrazure.azure.target import connect
    from flwrazure.remote import bootstrap, daemons, flwradmin, ssh
    st = state.load(cluster)
    version, secure = st["flwr_version"], not insecure
    check(version, secure, app, index_url, extra_pip)
    data_root, data_lists = check_client_data(client_data, st["clients"])
    ssh.check_key(st["ssh_private_key"])  # a key that cannot log in is said now, not after 10 minutes of retries
    check_hosts(st["cloud"])
    target = connect(st["cloud"], st["subscription"])
    mine_f = in_background(operator_flwr, name="operator-flwr")  # `flwr --version` (1-2 s), while the VMs work
    plan = versions.port_plan(version)
    given_index, given_runtime_deps = index_url, runtime_deps  # as asked, recorded for scale and resume
    # the VMs' own pip and uv configuration names their package index (the public one on Azure, the region's
    # mirror on the local cloud): nothing to pass unless the user gives --index-url
    if runtime_deps is None:
        runtime_deps = True
    if runtime_deps and not extra_pip and versions.runtime_deps_support(version) == versions.NO_INSTALLER:
        ui.warn(f"Flower {version} installs no app dependencies at run time: pass --extra-pip PKG for each "
                "package your app imports.")
    rows = _addresses(target, st)
    server, clients = rows[0], rows[1:]
    layout = services.Layout(f"/home/{st['admin_user']}")
    cdir = state.cluster_dir(cluster)
    key, known = st["ssh_private_key"], cdir / "known_hosts"
    if secure:
        certs.ensure_ca(cdir / "tls", cluster)
        certs.ensure_server_cert(cdir / "tls", cluster, [server["public_ip"], server["private_ip"]])
    # the SuperNodes dial the server's public address, or its private one (in its certificate) for private clients
    superlink_ip = network.superlink_ip(server, bool(st.get("private_clients")))
    keys = {r["vm"]: certs.ensure_supernode_key(cdir / "supernodes" / f"{r['vm']}.key") for r in clients}
    installed: dict[str, bool] = {}
    kinds: dict[str, str] = {}
    changed: dict[str, bool] = {}
    data: dict[str, dict] = {}  # per client VM: what its data directory holds and what this run copied
    conns: dict = {}
    registered = dict(st.get("registered_supernodes") or {})
    # num-partitions each SuperNode was started with: kept when the cluster is scaled (no restart), see scale.py
    partitions = {vm: n for vm, n in (st.get("partitions") or {}).items() if vm in keys}
    ready, failed = threading.Event(), threading.Event()
    fallbacks: dict[str, str] = {}  # VM -> why its user data did not install Flower (then SSH did)
    count = threading.Lock()

    def prepare(row: dict, unit: tuple[str, str, list[str]] | None = None):
        """SSH, Flower installed; `unit` (name, title, command): a service whose unit is written meanwhile
        (while the user data runs), returned with stage()'s answer for install()."""
        ip, via = network.route(row, server)
        conn = ssh.wait(ip, row["vm"], st["admin_user"], key, known, via=via)
        conns[row["vm"]] = conn
        with count:
            if "ssh" not in progress.seconds:
                progress.done("ssh", f"first SSH login ({row['vm']})")
        kinds[row["vm"]] = daemons.supervisor(conn)
        staged = None if unit is None else daemons.stage(
            conn, unit[0], kinds[row["vm"]], services.unit(unit[1], unit[2], layout, st["admin_user"], index_url))
        # the first boot's user data installs Flower (plan.userdata): wait for it, fall back to SSH if it failed
        why = bootstrap.first_boot(conn, layout)
        if why is not None:
            fallbacks[row["vm"]] = why
            ui.warn(escape(f"VM {row['vm']}: {why}; installing Flower over SSH instead."))
        installed[row["vm"]] = bootstrap.ensure_flwr(conn, layout, version, extra_pip, index_url, row["vm"])
        with count:
            if len(installed) == len(rows):
                progress.done("installed", f"Flower {version} in place on {len(rows)} VMs" +
                              (f" ({len(fallbacks)} installed over SSH)" if fallbacks else ""))
        return conn if unit is None else (conn, staged)

    def service(conn, vm: str, name: str, title: str, command: list[str], staged: bool | None = None) -> None:
        changed[vm] = daemons.install(conn, name, kinds[vm], layout,
                                      services.unit(title, command, layout, st["admin_user"], index_url),
                                      services.loop_script(title, name, command, layout, index_url), staged)

    def superlink():
        """The server VM's chain; the client VMs install meanwhile and wait for `ready` only to start."""
        try:
            link = (SUPERLINK, "Flower SuperLink", services.superlink_command(version, layout, secure, runtime_deps))
            srv, staged = prepare(server, link)
            if secure:
                for name in ("ca.crt", "server.pem", "server.key"):
                    ssh.put_text(srv, (cdir / "tls" / name).read_text(), layout.path(name), "600")
            service(srv, server["vm"], *link, staged)
            # the admin's flwr files need no SuperLink: written while it boots, not after
            adm = flwradmin.setup(srv, layout, version, plan.control, secure)
            todo = {vm: pub for vm, (_, pub) in keys.items() if vm not in registered} if secure else {}
            # keys to register: one flwr process starts now, waits for the SuperLink's health itself and registers
            # them at once (its imports overlap the SuperLink's boot); without, or when it saw no health, as before
            began = time.monotonic()
            after, got = flwradmin.register_once_healthy(
                srv, adm, todo, _health_probe(plan, layout, secure),
                daemons.restarts_command(SUPERLINK, kinds[server["vm"]], layout), HEALTH_TIMEOUT)
            if after is None:
                _wait_superlink(srv, plan, layout, secure, kinds[server["vm"]])
            progress.done("superlink", f"SuperLink on {server['vm']} healthy ({kinds[server['vm']]})",
                          at=None if after is None else began + after)
            if todo:
                rest = {vm: pub for vm, pub in todo.items() if vm not in got}
                registered.update({**got, **(flwradmin.register(srv, adm, rest) if rest else {})})
                state.update(cluster, {"registered_supernodes": registered})
                progress.done("register", f"{len(todo)} SuperNode key(s) registered")
            ready.set()
            return srv, adm
        except BaseException:
            failed.set()
            raise

    def supernode(i: int, row: dict) -> None:
        conn = prepare(row)
        if secure:
            ssh.put_text(conn, (cdir / "tls" / "ca.crt").read_text(), layout.path("ca.crt"), "600")
            ssh.put_text(conn, keys[row["vm"]][0].read_text(), layout.path("supernode.key"), "600")
        data_path = None
        if data_root is not None:  # while the SuperLink may still be booting
            from flwrazure.plan.clientdata import DATA_DIR
            from flwrazure.remote import clientdata

            data_path = layout.path(DATA_DIR)
            data[row["vm"]] = clientdata.sync(conn, data_path, data_root / str(i), data_lists[i])
        total = int(partitions.get(row["vm"]) or len(clients))
        title, command = f"Flower SuperNode {i}", services.supernode_command(
            version, layout, superlink_ip, i - 1, total, secure, runtime_deps=runtime_deps,
            data_path=data_path)
        # the unit in place while the SuperLink boots: once its key is registered, only the start is left
        staged = daemons.stage(conn, SUPERNODE, kinds[row["vm"]],
                               services.unit(title, command, layout, st["admin_user"], index_url))
        if not ready.is_set():  # idle until the SuperLink is up: its first start's bytecode, written now
            ssh.output(conn, plan_bootstrap.warm_imports(layout.venv))
        while not ready.wait(0.1):
            if failed.is_set():
                return
        service(conn, row["vm"], SUPERNODE, title, command, staged)
        partitions[row["vm"]] = total

    progress = ui.Milestones(f"Starting Flower {version} on {len(rows)} VMs", show)
    try:
        with progress, workers.pool(min(32, len(rows))) as pool:
            head = pool.submit(superlink)
            jobs = [pool.submit(supernode, i, row) for i, row in enumerate(clients, start=1)]
            srv, adm = head.result()
            for job in jobs:
                job.result()
            if data:
                copied = sum(len(d["copied"]) for d in data.values())
                progress.done("data", f"client data in place on {len(data)} VM(s) ({copied} file(s) copied)")
            progress.done("supernodes", f"{len(clients)} SuperNode service(s) on, flwr installed on every VM")
            online = flwradmin.wait_online(srv, adm, len(clients))
            progress.done("online", f"{len(clients)} SuperNode(s) online" if online is not None else
                          f"(flwr {version} cannot list SuperNodes: not waiting for them to connect)")
    finally:
        for conn in conns.values():
            conn.close()
    address = f"{server['public_ip']}:{plan.control}"
    root = str((cdir / "tls" / "ca.crt").resolve()) if secure else None
    recorded: dict = {}
    legacy = not versions.config_toml(version) and app is not None
    if legacy:  # recorded before it is written: a teardown after an interrupted start still removes it
        recorded["federation_pyproject"] = str(app.resolve() / "pyproject.toml")
    recorded.update({"started": True, "secure": secure, "superlink_address": address, "supervisors": kinds,
                     "partitions": {r["vm"]: partitions[r["vm"]] for r in clients if r["vm"] in partitions},
                     "client_data": {vm: {k: d[k] for k in ("path", "files", "bytes")} for vm, d in data.items()},
                     "start_options": {"extra_pip": list(extra_pip), "index_url": given_index,
                                       "app": str(app) if app else None, "runtime_deps": given_runtime_deps,
                                       "client_data": str(data_root) if data_root else None}})
    state.update(cluster, recorded)  # first: Flower runs, whatever happens to the user's file next
    if versions.config_toml(version):
        config = flwrconfig.write_connection(cluster, address, root)
    elif legacy:
        config = flwrconfig.write_federation(app.resolve(), cluster, address, root)
    else:
        config = None
        ui.warn(f"Flower {version} reads federations from the app's pyproject.toml: re-run with --app DIR to write "
                f"[tool.flwr.federations.{cluster}] there (address {address}).")
    if not secure:
        ui.warn("--insecure: no TLS and no SuperNode authentication (the seed guide's setup). Not for production.")
    mine = mine_f.result()
    if mine is None or not versions.same_minor(mine, version):
        ui.warn(f"`flwr run` needs a flwr CLI of the cluster's {'.'.join(version.split('.')[:2])} release; "
                f"{'none is on your PATH' if mine is None else f'yours is {mine}'}: pip install flwr=={version}")
    return {"cluster": cluster, "secure": secure, "superlink": address,
            "flwr_config": str(config) if config else None, "operator_flwr": mine, "installed": installed,
            "services_changed": changed, "supervisors": kinds, "bootstrap_fallbacks": fallbacks,
            "supernodes_online": online, "client_data": data,
            "milestones": progress.seconds, "next": [f"flwr run {app or '<app-dir>'} {cluster}"]}


def rerun(cluster: str, show: bool = True) -> dict:
    """start again with the options it was last run with (scale and resume: services and flwr installs stay as
    they are; only what is missing is done)."""
    st = state.load(cluster)
    opts = st.get("start_options") or {}
    app = Path(opts["app"]) if opts.get("app") else None
    data = Path(opts["client_data"]) if opts.get("client_data") else None
    return run(cluster, not st.get("secure", True), list(opts.get("extra_pip") or []), opts.get("index_url"),
               app if app is None or app.is_dir() else None, opts.get("runtime_deps"), show, data)


def recorded_client_data(st: dict, clients: int) -> None:
    """For scale and resume, before they change anything: the --client-data DIR that start was last given must
    still have a directory for each of `clients` clients (start re-runs with it)."""
    from flwrazure.workstation import clientdata

    opts = st.get("start_options") or {}
    if st.get("started") and opts.get("client_data"):
        try:
            clientdata.check(Path(opts["client_data"]), clients)
        except UsageError as exc:
            raise UsageError(f"start runs again with the --client-data it was given: {exc} (or run `flwrazure "
                             f"start` with another --client-data, or none, first)") from None
