"""Day-2 operations on the local cloud with sandbox VMs, for real (issue 12): scale up and down on a live secure
federation, pause/resume (with and without systemd), logs --follow across a VM restart, ssh --all, doctor with
failures injected one at a time and --renew-cert, teardown to zero. Needs root and systemd-nspawn."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_flower_e2e import (
    APP,
    FLWR_ENV,
    _product_clients,
    bring_up,
    flwr,
    flwr_tools,
    flwrazure,
    nodes,
    ok,
    online,
    tear_down,
    wait_online,
)
from tests.helpers import contract
from tests.helpers.cloud import (
    Follower,
    _sigint_as_at_a_terminal,
    clients_for,
    local_log_tail,
    until,
    vm_journals,
)
from tests.helpers.hosts import port_state, run

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")


def status(home: Path) -> dict:
    """status --json of a live cluster (services, SuperNodes): as docs/json.md says."""
    result = json.loads(ok(flwrazure(home, "status", "--json", timeout=300)).stdout)
    assert contract.check("status", result) == [], contract.check("status", result)
    return result


def run_app(cli: Path, home: Path, partitions: list[int], rounds: int = 2, every_reply: bool = False) -> str:
    """A run that needs every SuperNode: each round's replies come from exactly these partitions; with
    `every_reply`, no node it was given failed to answer ("Node Unavailable": the SuperLink offered a node that
    was gone)."""
    result = ok(flwr(cli, home, "run", str(APP), "flower", "--stream", "--run-config",
                     f"min-nodes={len(partitions)} num-server-rounds={rounds}", timeout=300))
    out = result.stdout + result.stderr
    assert out.count(f"round replies from partitions {partitions}") >= 2, out[-3000:]
    if every_reply:  # FedAvg counts a node's error reply as a failure
        assert not re.search(r"results and [1-9]\d* failures", out) and "Node Unavailable" not in out, out[-3000:]
    assert "flwrazure-example: final weights" in out
    return out


def runs(cli: Path, home: Path) -> list[str]:
    out = ok(flwr(cli, home, "ls", "flower", "--format", "json", timeout=60)).stdout
    return sorted(str(r["run-id"]) for r in json.loads(out[out.index("{"):])["runs"])


def supernode_pid(ip: str, key: str) -> str:
    try:
        return run(ip, "pgrep -f '[b]in/flower-supernode'", key=key).split()[0]
    except Exception as exc:  # say what the VMs' journals saw (an SSH failure here was once not understood)
        home = Path(key).parents[2]
        raise AssertionError(f"ssh {ip}: {exc!r}\n{vm_journals(home)}\n{local_log_tail(home, 30)}") from exc


def fleet_sources(status_: dict) -> list[str]:
    rule = next(r for r in status_["rules"] if r["name"] == "flwrazure-fleet")
    return sorted(rule["sources"])


def doctor(home: Path, cli_dir: Path, *args: str) -> tuple[dict, int]:
    """doctor --json with `cli_dir` first on PATH (the flwr CLI the operator has)."""
    env = {**FLWR_ENV, "FLWR_HOME": str(home / "flwr"), "PATH": f"{cli_dir}:{os.environ['PATH']}"}
    from tests.helpers.cloud import flwrazure as raw

    result = raw(home, "doctor", "--json", *args, timeout=300, env=env)
    assert result.returncode in (0, 1) and result.stdout.strip(), result.stderr[-2000:]
    assert contract.check("doctor", json.loads(result.stdout)) == [], result.stdout
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}, result.returncode


def _public_ip(home: Path, name: str) -> str | None:
    from azure.identity import ClientSecretCredential
    from azure.mgmt.network import NetworkManagementClient

    info = json.loads(flwrazure(home, "local", "status", "--json").stdout)
    cred = ClientSecretCredential(info["tenant_id"], info["client_id"], info["client_secret"],
                                  authority=info["endpoint"], disable_instance_discovery=True,
                                  connection_verify=info["ca_bundle"])
    net = NetworkManagementClient(cred, info["subscription_id"], base_url=info["endpoint"],
                                  connection_verify=info["ca_bundle"])
    try:
        return net.public_ip_addresses.get("flower-rg", f"{name}-ip").ip_address
    except Exception:  # not created yet
        return None


def _scale_interrupted_during_bootstrap(home: Path, clients: int, key: str) -> None:
    """Start `scale` as at a terminal, Ctrl-C it while the new client VM's bootstrap (pip installing flwr) runs:
    it ends within seconds (start's pool does not wait for the install), exit 130, one line saying what exists
    and how to finish or remove it. The pip install goes on on the VM; the re-run waits for it."""
    env = {**os.environ, **FLWR_ENV, "FLWRAZURE_HOME": str(home), "FLWR_HOME": str(home / "flwr"),
           "FLWRAZURE_POLL": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", "scale", "--clients", str(clients)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_at_a_terminal)
    vm = f"flower-client-{clients}"
    start, ip, installing = time.monotonic(), None, False
    try:
        while time.monotonic() - start < 400 and proc.poll() is None and not installing:
            ip = ip or _public_ip(home, vm)
            if ip and port_state(ip, 22) == "open":
                try:
                    installing = bool(run(ip, "pgrep -f '[p]ip install' || true", key=key, timeout=20).strip())
                except Exception:  # sshd up, the user not provisioned yet
                    pass
            time.sleep(0.5)
        assert installing and proc.poll() is None, "scale did not reach the new VM's bootstrap"
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        took = time.monotonic() - asked
        assert proc.returncode == 130 and took < 5, (proc.returncode, took, err[-2000:])
        assert "Traceback" not in err and err.strip().splitlines()[-1] == (
            f"Interrupted: {clients + 1} VMs exist in flower-rg and are billed; re-run `flwrazure scale --clients "
            f"{clients}` to finish, or `flwrazure teardown --cluster flower` to remove it all."), err[-2000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def _eventually(check, timeout: float = 90):
    start = time.monotonic()
    while True:
        result = check()
        if result or time.monotonic() - start > timeout:
            return result
        time.sleep(3)


@pytest.mark.timeout(1500)
def test_day2_secure_142_scale_pause_resume_logs_ssh_doctor(home):
    try:
        cli, started = bring_up(home, "1.42.0", create_args=("--spot",))  # Spot clients (kept by scale)
        assert started["secure"]
        wait_online(cli, home, 2)
        key = str(home / "clusters" / "flower" / "id_ed25519")
        st0 = status(home)
        ip = {v["vm"]: v["public_ip"] for v in st0["vms"]}
        pids = {vm: supernode_pid(ip[vm], key) for vm in ("flower-client-1", "flower-client-2")}
        before = {n["node-id"]: n["online-at"] for n in nodes(cli, home)}
        run_app(cli, home, [0, 1])

        # -- scale 2 -> 3: Ctrl-C once during the new client's bootstrap, then re-run
        _scale_interrupted_during_bootstrap(home, 3, key)
        grown = json.loads(ok(flwrazure(home, "scale", "--clients", "3", "--json", timeout=900)).stdout)
        assert grown["to"] == 3 and grown["supernodes_online"] == 3
        assert {vm: supernode_pid(ip[vm], key) for vm in pids} == pids  # existing SuperNodes not restarted
        after = {n["node-id"]: n["online-at"] for n in nodes(cli, home) if n["status"] == "online"}
        assert len(after) == 3 and all(after[k] == v for k, v in before.items())  # nor re-registered
        assert grown["partitions"] == {"flower-client-1": 2, "flower-client-2": 2, "flower-client-3": 3}
        st3 = status(home)
        assert fleet_sources(st3) == sorted(v["public_ip"] for v in st3["vms"] if v["role"] == "client")
        run_app(cli, home, [0, 1, 2])  # three distinct SuperNodes answer

        # -- scale 3 -> 1: the leaving nodes are unregistered, their resources gone, the Fleet rule narrowed
        registered = json.loads((home / "clusters" / "flower" / "state.json").read_text())["registered_supernodes"]
        shrunk = json.loads(ok(flwrazure(home, "scale", "--clients", "1", "--json", "--yes", timeout=600)).stdout)
        # scale returned once the SuperLink no longer listed the leaving SuperNodes online
        assert shrunk["drain"]["how"] == "listed" and shrunk["drain"]["confirmed"], shrunk["drain"]
        for _ in range(3):  # started at once, each sees only the staying SuperNode (issue 23, item 23)
            began = time.monotonic()
            run_app(cli, home, [0], rounds=1, every_reply=True)  # one round: its messages go to every node offered
            print(f"run right after the shrink: {time.monotonic() - began:.1f} s")
        assert shrunk["left"] == ["flower-client-3", "flower-client-2"]
        assert sorted(shrunk["unregistered"]) == ["flower-client-2", "flower-client-3"]
        gone = {str(registered["flower-client-2"]), str(registered["flower-client-3"])}
        listed = {str(n["node-id"]): n["status"] for n in nodes(cli, home)}
        assert all(listed.get(n, "unregistered") == "unregistered" for n in gone), listed
        assert online(cli, home) == 1
        st1 = status(home)
        assert [v["vm"] for v in st1["vms"]] == ["flower-server", "flower-client-1"]
        assert fleet_sources(st1) == [ip["flower-client-1"]]
        vms = _product_clients(home)
        assert sorted(v.name for v in vms.list("flower-rg")) == ["flower-client-1", "flower-server"]

        # -- ssh --all
        every = ok(flwrazure(home, "ssh", "--all", "--", "hostname", timeout=120)).stdout.splitlines()
        assert sorted(every) == ["flower-client-1 | flower-client-1", "flower-server   | flower-server"]
        failing = flwrazure(home, "ssh", "--all", "--", "test", "-e", "/etc/flwrazure-nope")
        assert failing.returncode == 1 and "failed on 2 of 2 VM(s)" in failing.stderr

        # -- logs --follow: a line written after it started, and across a VM restart
        env = {**os.environ, **FLWR_ENV, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
        follow = Follower(env, "client-1")
        said = follow.said
        started = lambda: [x for x in said["out"] if "Started" in x and "Flower SuperNode 1 (flwrazure)" in x]  # noqa: E731
        try:
            assert until(lambda: any("following 1 VM(s)" in x for x in said["err"]), 60), said
            run(ip["flower-client-1"], "sudo -n systemctl restart flower-supernode", key=key)  # systemd logs it
            assert until(started, 60), said
            vms.begin_deallocate("flower-rg", "flower-client-1").result()
            vms.begin_start("flower-rg", "flower-client-1").result()
            wait_online(cli, home, 1, timeout=240)
            assert until(lambda: len(started()) >= 2 and any("(flwrazure: reconnected)" in x for x in said["out"]),
                         60), said
        finally:
            follow.stop()
        out, err = "".join(said["out"]), "".join(said["err"])
        assert follow.proc.returncode == 0, err
        lines = out.splitlines()
        assert all(line.startswith("flower-client-1 | ") for line in lines), lines[:5]
        # it started at the end of the log (--lines 0): every "Started" line was written while it followed, one by
        # the service restart, one by the VM's boot after the restart (seen only because it reconnected)
        starts = [line for line in lines if "Started" in line and "Flower SuperNode 1 (flwrazure)" in line]
        assert len(starts) >= 2, out[-3000:]
        assert any("(flwrazure: connection lost" in line for line in lines), out[-3000:]
        assert any("(flwrazure: reconnected)" in line for line in lines), out[-3000:]

        # -- doctor: healthy, then each failure injected one at a time
        cli_dir = cli.parent
        checks, code = doctor(home, cli_dir)
        assert code == 0 and all(c["ok"] is not False for c in checks.values()), checks
        run(ip["flower-client-1"], "sudo -n systemctl stop flower-supernode", key=key)
        checks, code = doctor(home, cli_dir)
        assert code == 1 and checks["services active"]["ok"] is False
        assert "flower-client-1: inactive" in checks["services active"]["detail"]
        assert "flwrazure start --cluster flower" in checks["services active"]["fix"]
        late = _eventually(lambda: (c := doctor(home, cli_dir)[0]["supernodes online"])["ok"] is False and c)
        assert late and "flower-client-1" in late["detail"], late  # once the SuperLink sees it gone
        ok(flwrazure(home, "start", "--extra-pip", "numpy", timeout=600))
        ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))  # the operator "moved"
        checks, code = doctor(home, cli_dir)
        assert checks["your address allowed (Control)"]["ok"] is False and \
            checks["your address allowed (Control)"]["fix"] == "flwrazure open-ports --cluster flower --source 198.18.0.1"
        assert checks["control port reachable"]["ok"] is False
        ok(flwrazure(home, "open-ports", "--close"))
        checks, code = doctor(home, cli_dir)
        assert checks["control rule present"]["ok"] is False
        ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
        _, old_cli = flwr_tools("1.34.0")
        checks, code = doctor(home, old_cli.parent)
        assert checks["flwr cli version"]["ok"] is False and checks["flwr cli version"]["fix"] == \
            "pip install flwr==1.42.0"
        checks, code = doctor(home, cli_dir)
        assert code == 0, checks
        # renewing the certificate on the live cluster: the SuperNode keeps working
        ok(flwrazure(home, "doctor", "--renew-cert", timeout=300))
        wait_online(cli, home, 1)
        earlier = runs(cli, home)

        # -- Spot: Azure evicts the client (deallocated, as its policy says), status tells it from a pause, resume
        # starts it again and its SuperNode rejoins (its service is enabled at boot)
        cloud = clients_for(None, info=json.loads(ok(flwrazure(home, "local", "status", "--json")).stdout))
        cloud.admin("PATCH", "config", {"time_scale": 0.01})  # Scheduled Events' 30 s notice in 0.3 s
        cloud.compute.virtual_machines.simulate_eviction("flower-rg", "flower-client-1")
        assert until(lambda: cloud.compute.virtual_machines.instance_view("flower-rg", "flower-client-1")
                     .statuses[-1].code == "PowerState/deallocated", 120)
        evicted = status(home)
        assert [v["state"] for v in evicted["vms"]] == ["running", "evicted"] and evicted["power"] == "evicted"
        back = json.loads(ok(flwrazure(home, "resume", "--json", timeout=600)).stdout)
        assert back["started"] == ["flower-client-1"] and back["supernodes_online"] == 1, back

        # -- pause: every VM deallocated, SSH unreachable; resume: all online, history kept, a new run works
        ok(flwrazure(home, "pause", timeout=300))
        paused = status(home)
        assert paused["power"] == "paused" and {v["state"] for v in paused["vms"]} == {"deallocated"}
        assert all(port_state(v["public_ip"], 22) != "open" for v in paused["vms"])
        resumed = json.loads(ok(flwrazure(home, "resume", "--json", timeout=600)).stdout)
        assert resumed["supernodes_online"] == 1 and contract.check("resume", resumed) == [], resumed
        assert runs(cli, home) == earlier and len(earlier) >= 3
        run_app(cli, home, [0])
    finally:
        tear_down(home)


@pytest.mark.timeout(900)
def test_pause_resume_without_systemd(home):
    """Hosts without systemd: the restart loops are not started at boot (no cron either); resume starts them."""
    try:
        cli, started = bring_up(home, "1.42.0", local_args=("--no-systemd",))
        assert set(started["supervisors"].values()) == {"loop"}
        wait_online(cli, home, 2)
        run_app(cli, home, [0, 1])
        earlier = runs(cli, home)
        paused = json.loads(ok(flwrazure(home, "pause", "--json", timeout=300)).stdout)
        assert len(paused["deallocated"]) == 3 and status(home)["power"] == "paused"
        began = time.monotonic()
        resumed = json.loads(ok(flwrazure(home, "resume", "--json", timeout=600)).stdout)
        assert resumed["supernodes_online"] == 2, resumed
        print(f"resume without systemd: {time.monotonic() - began:.1f} s to all SuperNodes online")
        assert [v["service"] for v in status(home)["vms"]] == ["active"] * 3
        assert runs(cli, home) == earlier
        run_app(cli, home, [0, 1])
    finally:
        tear_down(home)
