"""The mission's main path on the local cloud, for real: create-cluster -> open-ports -> start -> `flwr run`
(a flwr CLI of the cluster's major.minor, in its own venv) -> teardown. Needs root and systemd-nspawn."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomlkit

from tests.helpers import contract
from tests.helpers.cloud import flwrazure as _flwrazure
from tests.helpers.cloud import local_log_tail
from tests.helpers.flwr import CACHE, FLWR_ENV
from tests.helpers.hosts import listening, port_state, port_state_from, run, wait_ssh

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")
APP = Path(__file__).resolve().parents[2] / "examples" / "numpy-app"
SKLEARN_APP = Path(__file__).resolve().parents[2] / "examples" / "sklearn-app"


def flwr_tools(version: str) -> tuple[Path, Path]:
    """(wheelhouse, flwr CLI) for one Flower version, downloaded once from the package registry and cached. The
    CLI's venv also has scikit-learn, to cut the clients' data for examples/sklearn-app as a user would."""
    base = CACHE / f"flwr-{version}"
    wheels, venv = base / "wheels", base / "venv"
    if not (base / "ready-2").exists():
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(wheels),
                        f"flwr=={version}", "numpy", "hatchling", "scikit-learn"], check=True, timeout=900)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(wheels),
                        f"flwr=={version}", "numpy", "scikit-learn"], check=True, timeout=900)
        (base / "ready-2").write_text("ok\n")
    return wheels, venv / "bin" / "flwr"


def client_data(cli: Path, where: Path, clients: int = 2) -> Path:
    """Each client's own part of the digits, laid out as `start --client-data` takes it (DIR/<i>/train.npz)."""
    subprocess.run([str(cli.parent / "python"), "-m", "sklearn_app.prepare", str(where), "--clients", str(clients)],
                   cwd=SKLEARN_APP, check=True, capture_output=True, timeout=120)
    return where


def flwrazure(home: Path, *args: str, timeout: float = 120):
    """The product CLI with this test's FLWR_HOME, so the flwr connection it writes is the one flwr reads."""
    return _flwrazure(home, *args, timeout=timeout, env={**FLWR_ENV, "FLWR_HOME": str(home / "flwr")})


def ok(result):
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    return result


def flwr(cli: Path, home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, **FLWR_ENV, "FLWR_HOME": str(home / "flwr")}
    return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=str(home))


def nodes(cli: Path, home: Path, *conn: str) -> list[dict]:
    """The SuperLink's SuperNodes; `conn` is the connection ("flower") or, before flwr 1.26, (app dir, "flower")."""
    out = flwr(cli, home, "supernode", "list", *(conn or ("flower",)), "--format", "json", timeout=60).stdout
    return json.loads(out[out.index("{"):]).get("nodes", [])


def online(cli: Path, home: Path, *conn: str) -> int:
    return sum(1 for n in nodes(cli, home, *conn) if n.get("status") == "online")


def wait_online(cli: Path, home: Path, want: int, *conn: str, timeout: float = 120) -> None:
    start = time.monotonic()
    while online(cli, home, *conn) < want:
        assert time.monotonic() - start < timeout, "SuperNodes did not come online"
        time.sleep(3)


# the default image's first boot, shortened (make bench runs the realistic values)
FIRST_BOOT = ("--first-boot-apt", "12", "--provision-lag", "3")
BARE = ("python3 -c 'import ensurepip' 2>/dev/null; echo ensurepip=$?; "
        "dpkg -s python3-venv >/dev/null 2>&1; echo python3_venv=$?")


def bring_up(home: Path, version: str, *start_args: str, local_args: tuple[str, ...] = (), prefill: bool = True,
             before_start=None, create_env: dict | None = None, create_args: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """local up -> create-cluster -> open-ports -> (before_start) -> start. `prefill` puts the version's wheels in
    the mirror's cache first; without it the mirror pulls them through from the package registry. Start's
    messages are in the result as "stderr"."""
    wheels, cli = flwr_tools(version)
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.iterdir() if prefill else ():
        os.link(wheel, house / wheel.name) if wheel.stat().st_dev == house.stat().st_dev else \
            (house / wheel.name).write_bytes(wheel.read_bytes())
    ok(flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT,
                 *local_args))
    ok(_flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2", "--flwr-version", version,
                  *create_args, timeout=300, env={**FLWR_ENV, "FLWR_HOME": str(home / "flwr"), **(create_env or {})}))
    ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
    if before_start:
        before_start()
    result = flwrazure(home, "start", *start_args, "--json", timeout=900)
    if result.returncode != 0:  # the local cloud's log carries boot diagnostics of VMs that did not finish booting
        raise AssertionError(f"{result.stderr[-2000:]}\nlocal cloud log:\n{local_log_tail(home, 15)}")
    assert contract.check("start", json.loads(result.stdout)) == [], result.stdout  # docs/json.md
    return cli, {**json.loads(result.stdout), "stderr": result.stderr}


def run_app(cli: Path, home: Path, app: Path = APP) -> str:
    result = ok(flwr(cli, home, "run", str(app), "flower", "--stream", timeout=300))
    out = result.stdout + result.stderr
    assert out.count("round replies from partitions [0, 1]") >= 2, out[-3000:]  # both SuperNodes, every round
    assert "flwrazure-example: final weights" in out
    return out


def accuracies(out: str) -> list[float]:
    return [float(x) for x in re.findall(r"flwrazure-example: round \d+ accuracy ([0-9.]+)", out)]


def run_sklearn(cli: Path, home: Path) -> str:
    """examples/sklearn-app for real: it completes, every round trained both clients on the data copied to them
    (data-path), and the model learnt (accuracy after the last round above the first)."""
    result = ok(flwr(cli, home, "run", str(SKLEARN_APP), "flower", "--stream", timeout=600))
    out = result.stdout + result.stderr
    acc = accuracies(out)
    assert len(acc) == 3 and acc[-1] > acc[0], out[-3000:]
    assert out.count("from 2 clients (2 read their data-path)") == 3, out[-3000:]
    assert "flwrazure-example: final accuracy" in out, out[-3000:]
    return out


def installed_at_run_time(home: Path, run_output: str) -> dict[str, str]:
    """Where Flower says what it installed for a run (uv sync of the app's dependencies): the ServerApp's line
    comes with the run's stream, each ClientApp's is in its SuperNode's journal."""
    key = str(home / "clusters" / "flower" / "id_ed25519")
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    found = {"server": next((line for line in run_output.splitlines() if "Installed: [" in line), "")}
    for vm in status["vms"][1:]:
        log = run(vm["public_ip"], "journalctl -u flower-supernode --no-pager -o cat | grep -F 'Installed: [' "
                  "| tail -n 1", key=key, timeout=60)
        found[vm["vm"]] = log.strip()
    return found


def tear_down(home: Path) -> None:
    from tests.integration.test_hosts_lifecycle import EMPTY, leftovers

    try:
        ok(flwrazure(home, "teardown", "--yes", "--purge"))
    finally:
        flwrazure(home, "local", "down")
    assert leftovers(home / "local") == EMPTY


@pytest.mark.timeout(1500)
def test_flwr_142_secure_default(home, tmp_path):
    """The newest Flower on the default image with its first boot (provisioning lag, apt lock) and an empty wheel
    cache, a real app (scikit-learn, declared by the app and installed by Flower at run time on the SuperLink and
    both SuperNodes: no --extra-pip) on each client's own data."""
    key = str(home / "clusters" / "flower" / "id_ed25519")
    seen = {}

    def bare() -> None:  # before start: the VMs lack what `python3 -m venv` needs, as on Azure
        for name, ip in _public_ips(home).items():
            wait_ssh(ip, timeout=120, key=key)
            seen[name] = run(ip, BARE, key=key).split()

    data = client_data(flwr_tools("1.42.0")[1], tmp_path / "data")
    try:
        cli, started = bring_up(home, "1.42.0", "--client-data", str(data), prefill=False, before_start=bare)
        assert seen and all(v == ["ensurepip=1", "python3_venv=1"] for v in seen.values()), seen
        assert started["secure"] and started["superlink"].endswith(":8000")
        # Flower came with each VM's first boot (cloud-init user data), without apt: nothing fell back to SSH
        assert started["bootstrap_fallbacks"] == {} and not any(started["installed"].values()), started
        for ip in _public_ips(home).values():
            assert run(ip, BARE, key=key).split() == ["ensurepip=1", "python3_venv=1"]
            shown = json.loads(run(ip, "cloud-init status --format json", key=key))
            assert (shown["status"], shown["errors"]) == ("done", [])
        assert any((home / "local" / "wheelhouse").glob("flwr-1.42.0-*.whl"))  # pulled through, now cached
        wait_online(cli, home, 2)
        out = run_sklearn(cli, home)
        installed = installed_at_run_time(home, out)  # server and both clients: scikit-learn came at run time
        assert sorted(installed) == ["flower-client-1", "flower-client-2", "server"], installed
        assert all("scikit-learn" in line for line in installed.values()), installed
        assert any((home / "local" / "wheelhouse").glob("scikit_learn-*.whl"))  # uv pulled it through the mirror
        again = json.loads(ok(flwrazure(home, "start", "--client-data", str(data), "--json")).stdout)
        assert not any(again["installed"].values()) and not any(again["services_changed"].values())
        assert all(d["copied"] == [] and d["deleted"] == [] for d in again["client_data"].values()), again
        # each client's data: private (0700 directory, 0600 files, the admin user's), in its SuperNode's node
        # config; a file added to DIR/<i> is copied by the next start, one removed there is removed on the VM
        home_data = "/home/azureuser/flwrazure/data"
        client2 = _public_ips(home)["flower-client-2"]
        modes = run(client2, f"cd {home_data} && stat -c '%a %U %n' . train.npz", key=key)
        assert modes.split("\n")[:2] == ["700 azureuser .", "600 azureuser train.npz"], modes
        args = run(client2, "cat /proc/$(systemctl show -p MainPID --value flower-supernode)/cmdline | tr '\\0' '\\n'",
                   key=key)
        assert f'partition-id=1 num-partitions=2 data-path="{home_data}"' in args.splitlines(), args
        (data / "2" / "notes.txt").write_text("added\n")
        added = json.loads(ok(flwrazure(home, "start", "--client-data", str(data), "--json")).stdout)
        assert [added["client_data"][vm]["copied"] for vm in ("flower-client-1", "flower-client-2")] == \
            [[], ["notes.txt"]], added["client_data"]
        assert not any(added["services_changed"].values())
        (data / "2" / "notes.txt").unlink()
        removed = json.loads(ok(flwrazure(home, "start", "--client-data", str(data), "--json")).stdout)
        assert removed["client_data"]["flower-client-2"]["deleted"] == ["notes.txt"]
        shown = {v["vm"]: (v.get("data_path"), v.get("data_bytes"))
                 for v in json.loads(ok(flwrazure(home, "status", "--json")).stdout)["vms"]}
        assert shown["flower-client-2"] == (home_data, (data / "2" / "train.npz").stat().st_size), shown
        assert shown["flower-server"] == (None, None)
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        server, client1 = status["vms"][0], status["vms"][1]
        assert [v["service"] for v in status["vms"]] == ["active"] * 3 and status["supernodes_online"] == 2
        assert [v.get("supernode") for v in status["vms"]] == [None, "online", "online"]  # which ones, by VM
        # a SuperNode whose key was never registered is refused: it never joins the federation
        rogue = run(client1["public_ip"], "cd /tmp && ssh-keygen -q -t ecdsa -b 384 -N '' -f rogue && "
                    f"timeout 25 ~/flwr-venv/bin/flower-supernode --superlink {server['public_ip']}:8000 --port 9095 "
                    f"--root-certificates ~/flwrazure/ca.crt --auth-supernode-private-key rogue "
                    "> rogue.log 2>&1; echo exit=$?; grep -icE 'denied|refus|not registered|unauth|412|2004|error' "
                    "rogue.log; tail -2 rogue.log", key=key, timeout=120)
        listed = json.loads((out := flwr(cli, home, "supernode", "list", "flower", "--format", "json").stdout)
                            [out.index("{"):])["nodes"]
        assert len(listed) == 2 and online(cli, home) == 2, (listed, rogue)
        assert int(rogue.splitlines()[1]) >= 1, rogue  # the rogue's log says why it was turned away
        # a source outside the allowed ones cannot reach the SuperLink's port
        ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
        assert port_state(server["public_ip"], 8000) == "timeout"
        ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
        assert port_state(server["public_ip"], 8000) == "open"
        # deallocate + start of a client VM: its service comes back (systemd) and the node rejoins
        product = _product_clients(home)
        product.begin_deallocate("flower-rg", "flower-client-1").result()
        product.begin_start("flower-rg", "flower-client-1").result()
        wait_online(cli, home, 2, timeout=180)
    finally:
        tear_down(home)
    # a second cluster after `local down`/`up`, the package registry unreachable: everything comes from the cache,
    # the app's run-time installs too
    try:
        offline = {"FLWRAZURE_MIRROR_UPSTREAM": "http://127.0.0.1:9/simple"}
        ok(_flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT,
                      env={**FLWR_ENV, **offline}))
        up = json.loads(ok(flwrazure(home, "up", "--cloud", "local", "--clients", "1", "--flwr-version", "1.42.0",
                                     "--ssh-source", "198.18.0.1", "--json", timeout=900)).stdout)
        assert up["supernodes_online"] == 1 and contract.check("up", up) == [], up
        out = ok(flwr(cli, home, "run", str(SKLEARN_APP), "flower", "--stream", "--run-config", "min-nodes=1",
                      timeout=600)).stdout
        assert len(accuracies(out)) == 3, out[-3000:]
    finally:
        tear_down(home)


def _public_ips(home: Path) -> dict[str, str]:
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    return {v["vm"]: v["public_ip"] for v in status["vms"]}


def test_flwr_125_app_federation_on_hosts_without_systemd(home, tmp_path):
    """Flower before 1.26 (the connection lives in the app's pyproject; `flwr supernode` takes the app dir), secure,
    on hosts without systemd: flwrazure's restart loop keeps the processes up and brings a killed SuperNode back."""
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    original = (app / "pyproject.toml").read_text()
    try:
        # the user data asks apt for a package that does not exist: cloud-init ends in error, start says so per VM
        # and installs over SSH (issue 25)
        cli, started = bring_up(home, "1.25.0", "--app", str(app), local_args=("--no-systemd",),
                                create_env={"FLWRAZURE_USER_DATA_APT": "flwrazure-no-such-package"})
        assert started["secure"] and started["superlink"].endswith(":9093") and started["supernodes_online"] == 2
        assert sorted(started["bootstrap_fallbacks"]) == ["flower-client-1", "flower-client-2", "flower-server"]
        for why in started["bootstrap_fallbacks"].values():
            assert why.startswith("its user data failed (cloud-init status: error in "
                                  "package_update_upgrade_install: ('package_update_upgrade_install', "), why
            assert "flwrazure-no-such-package" in why, why
        said = " ".join(started["stderr"].split())  # as printed, wrapped at the terminal's width
        assert said.count("installing Flower over SSH instead") == 3, said
        assert said.count("Failed to install packages: ['flwrazure-no-such-package']") == 3, said
        key = str(home / "clusters" / "flower" / "id_ed25519")
        server_ip = json.loads(ok(flwrazure(home, "status", "--json")).stdout)["vms"][0]["public_ip"]
        long = run(server_ip, "cloud-init status --long; echo exit=$?; "
                   "grep -c 'Unable to locate package flwrazure-no-such-package' /var/log/cloud-init-output.log",
                   key=key)
        assert long.startswith("status: error\nextended_status: error - done\n"), long
        assert "\nexit=1\n" in long and int(long.splitlines()[-1]) >= 1, long
        assert set(started["supervisors"].values()) == {"loop"}
        fed = tomlkit.parse((app / "pyproject.toml").read_text())["tool"]["flwr"]["federations"]["flower"]
        assert fed["address"] == started["superlink"] and Path(fed["root-certificates"]).is_file()
        run_app(cli, home, app)
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        assert [v["service"] for v in status["vms"]] == ["active"] * 3 and status["supernodes_online"] == 2
        key = str(home / "clusters" / "flower" / "id_ed25519")
        client1 = status["vms"][1]["public_ip"]
        before = {n["node-id"]: n["online-at"] for n in nodes(cli, home, str(app), "flower")}
        old = run(client1, "pgrep -f '[b]in/flower-supernode'", key=key).split()
        run(client1, "pkill -9 -f '[b]in/flower-supernode'", key=key)
        start = time.monotonic()
        while True:  # the loop restarts it; the SuperLink lets it back in once the dead session has expired
            now = {n["node-id"]: (n["status"], n["online-at"]) for n in nodes(cli, home, str(app), "flower")}
            if sum(1 for k, (st, at) in now.items() if st == "online" and at != before.get(k)) == 1 \
                    and online(cli, home, str(app), "flower") == 2:
                break
            assert time.monotonic() - start < 240, (before, now)
            time.sleep(5)
        assert run(client1, "pgrep -f '[b]in/flower-supernode'", key=key).split() != old
    finally:
        tear_down(home)
    assert (app / "pyproject.toml").read_text().rstrip() == original.rstrip()  # teardown removed the federation


@pytest.mark.timeout(1200)
def test_flwr_131_up_insecure_real_app_internal_apis_closed(home, tmp_path):
    """Flower 1.31 (the seed guide's ports; only `--allow-runtime-dependency-installation` exists, on both
    processes) with `up --insecure` as the seed guide runs it: the real app with each client's own data, its
    dependency installed at run time everywhere; inside the VNet a client reaches only the Fleet port, and every
    other Flower API listens on loopback."""
    version = "1.31.0"
    wheels, cli = flwr_tools(version)
    data = client_data(cli, tmp_path / "data")
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.iterdir():  # the version's wheels cached in the mirror already (as in bring_up)
        shutil.copyfile(wheel, house / wheel.name)
    try:
        ok(flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT))
        up = json.loads(ok(flwrazure(home, "up", "--cloud", "local", "--clients", "2", "--flwr-version", version,
                                     "--insecure", "--client-data", str(data), "--ssh-source", "198.18.0.1",
                                     "--json", timeout=900)).stdout)
        assert up["supernodes_online"] == 2, up
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        assert {int(r["port"]) for r in status["rules"] if r.get("access", "Allow") == "Allow"} == {22, 9092, 9093}
        installed = installed_at_run_time(home, run_sklearn(cli, home))
        assert all("scikit-learn" in line for line in installed.values()) and len(installed) == 3, installed
        key = str(home / "clusters" / "flower" / "id_ed25519")
        server, client1 = status["vms"][0], status["vms"][1]
        # from a client VM, inside the VNet: Fleet answers; Control (NSG deny) and ServerAppIo (loopback) do not
        probe = {port: port_state_from(client1["public_ip"], server["private_ip"], port, key=key)
                 for port in (9091, 9092, 9093)}
        assert probe[9092] == "open" and probe[9093] == "timeout" and probe[9091] != "open", probe
        # nothing but sshd and the SuperLink's Fleet/Control ports listens beyond loopback, on any VM
        for vm in status["vms"]:
            public = {(a, p) for a, p in listening(vm["public_ip"], key=key) if a not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")}
            allowed = {22, 9092, 9093} if vm is server else {22}
            assert {p for _, p in public} <= allowed, (vm["vm"], public)
    finally:
        tear_down(home)


def _product_clients(home: Path):
    from azure.identity import ClientSecretCredential
    from azure.mgmt.compute import ComputeManagementClient

    info = json.loads(flwrazure(home, "local", "status", "--json").stdout)
    cred = ClientSecretCredential(info["tenant_id"], info["client_id"], info["client_secret"], authority=info["endpoint"],
                                  disable_instance_discovery=True, connection_verify=info["ca_bundle"])
    return ComputeManagementClient(cred, info["subscription_id"], base_url=info["endpoint"],
                                   connection_verify=info["ca_bundle"], polling_interval=0.1).virtual_machines
