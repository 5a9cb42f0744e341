"""The mission's main path on the local cloud, for real: create-cluster -> open-ports -> start -> `flwr run`
(a flwr CLI of the cluster's major.minor, in its own venv) -> teardown. Needs root and systemd-nspawn."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomlkit

from tests.helpers.cloud import flwrazure as _flwrazure
from tests.helpers.cloud import local_log_tail
from tests.helpers.flwr import CACHE, FLWR_ENV
from tests.helpers.hosts import port_state, run, wait_ssh

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")
APP = Path(__file__).resolve().parents[2] / "examples" / "numpy-app"


def flwr_tools(version: str) -> tuple[Path, Path]:
    """(wheelhouse, flwr CLI) for one Flower version, downloaded once from the package registry and cached."""
    base = CACHE / f"flwr-{version}"
    wheels, venv = base / "wheels", base / "venv"
    if not (base / "ready").exists():
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(wheels),
                        f"flwr=={version}", "numpy", "hatchling"], check=True, timeout=900)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(wheels),
                        f"flwr=={version}", "numpy"], check=True, timeout=900)
        (base / "ready").write_text("ok\n")
    return wheels, venv / "bin" / "flwr"


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
             before_start=None) -> tuple[Path, dict]:
    """local up -> create-cluster -> open-ports -> (before_start) -> start. `prefill` puts the version's wheels in
    the mirror's cache first; without it the mirror pulls them through from the package registry."""
    wheels, cli = flwr_tools(version)
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.iterdir() if prefill else ():
        os.link(wheel, house / wheel.name) if wheel.stat().st_dev == house.stat().st_dev else \
            (house / wheel.name).write_bytes(wheel.read_bytes())
    ok(flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT,
                 *local_args))
    ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2", "--flwr-version", version))
    ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
    if before_start:
        before_start()
    result = flwrazure(home, "start", "--extra-pip", "numpy", *start_args, "--json", timeout=900)
    if result.returncode != 0:  # the local cloud's log carries boot diagnostics of VMs that did not finish booting
        raise AssertionError(f"{result.stderr[-2000:]}\nlocal cloud log:\n{local_log_tail(home, 15)}")
    return cli, json.loads(result.stdout)


def run_app(cli: Path, home: Path, app: Path = APP) -> str:
    result = ok(flwr(cli, home, "run", str(app), "flower", "--stream", timeout=300))
    out = result.stdout + result.stderr
    assert out.count("round replies from partitions [0, 1]") >= 2, out[-3000:]  # both SuperNodes, every round
    assert "flwrazure-example: final weights" in out
    return out


def tear_down(home: Path) -> None:
    from tests.integration.test_hosts_lifecycle import EMPTY, leftovers

    try:
        ok(flwrazure(home, "teardown", "--yes", "--purge"))
    finally:
        flwrazure(home, "local", "down")
    assert leftovers(home / "local") == EMPTY


@pytest.mark.timeout(1200)
def test_flwr_142_secure_default(home):
    """On the default image with its first boot (provisioning lag, apt lock) and an empty wheel cache."""
    key = str(home / "clusters" / "flower" / "id_ed25519")
    seen = {}

    def bare() -> None:  # before start: the VMs lack what `python3 -m venv` needs, as on Azure
        for name, ip in _public_ips(home).items():
            wait_ssh(ip, timeout=120, key=key)
            seen[name] = run(ip, BARE, key=key).split()

    try:
        cli, started = bring_up(home, "1.42.0", prefill=False, before_start=bare)
        assert seen and all(v == ["ensurepip=1", "python3_venv=1"] for v in seen.values()), seen
        assert started["secure"] and started["superlink"].endswith(":8000")
        for ip in _public_ips(home).values():
            assert run(ip, BARE, key=key).split() == ["ensurepip=0", "python3_venv=0"]
        assert any((home / "local" / "wheelhouse").glob("flwr-1.42.0-*.whl"))  # pulled through, now cached
        wait_online(cli, home, 2)
        run_app(cli, home)
        again = json.loads(ok(flwrazure(home, "start", "--extra-pip", "numpy", "--json")).stdout)
        assert not any(again["installed"].values()) and not any(again["services_changed"].values())
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
    # a second cluster after `local down`/`up`, the package registry unreachable: everything comes from the cache
    try:
        offline = {"FLWRAZURE_MIRROR_UPSTREAM": "http://127.0.0.1:9/simple"}
        ok(_flwrazure(home, "local", "up", "--port", "0", "--hosts", "nspawn", "--boot-delay", "1", *FIRST_BOOT,
                      env={**FLWR_ENV, **offline}))
        up = json.loads(ok(flwrazure(home, "up", "--cloud", "local", "--clients", "1", "--flwr-version", "1.42.0",
                                     "--extra-pip", "numpy", "--ssh-source", "198.18.0.1", "--json",
                                     timeout=900)).stdout)
        assert up["supernodes_online"] == 1, up
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
        cli, started = bring_up(home, "1.25.0", "--app", str(app), local_args=("--no-systemd",))
        assert started["secure"] and started["superlink"].endswith(":9093") and started["supernodes_online"] == 2
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


def test_flwr_134_insecure_seed_ports(home):
    try:
        cli, started = bring_up(home, "1.34.0", "--insecure")
        assert not started["secure"] and started["superlink"].endswith(":9093")
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        assert {r["port"] for r in status["rules"]} == {"22", "9092", "9093"}
        assert started["supernodes_online"] == 2 and status["supernodes_online"] == 2
        run_app(cli, home)
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
