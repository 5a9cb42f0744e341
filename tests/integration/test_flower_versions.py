"""Every supported Flower release (the newest patch of each minor) runs the command lines `start` writes into the
VMs' units: flower-superlink and flower-supernode started with exactly services.superlink_command and
supernode_command's argument lists, the unit's environment and working directory, secure (the cluster CA and
server certificate of workstation/certs, a SuperNode key) and --insecure, runtime dependency installation on and
off. Each pair runs in a network and PID namespace of its own (unshare), so all releases run side by side without
port clashes and every process of a pair (SuperExecs included) dies with the namespace.

Checked per pair: neither process exits (argparse's exit 2, "unrecognized arguments", or any early exit), no
traceback; only the Fleet and Control ports listen on 0.0.0.0/[::] and every other listening port is on
127.0.0.1; each process's own SuperExec is connected to the loopback address the plan binds. Needs root, unshare,
nsenter, ip and ss; the releases are installed once into venvs under $FLWRAZURE_TEST_CACHE (tests/helpers/flwr)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from flwrazure.commands.start import _health_probe
from flwrazure.plan import admin, services, versions
from flwrazure.remote import flwradmin
from flwrazure.workstation import certs
from tests.helpers.flwr import flwr_venv

TOOLS = {name: shutil.which(name) for name in ("unshare", "nsenter", "ip", "ss", "bash")}
pytestmark = [pytest.mark.skipif(os.geteuid() != 0 or not all(TOOLS.values()),
                                 reason="needs root, unshare, nsenter, ip and ss (network namespaces)"),
              pytest.mark.timeout(1500)]

# the newest patch of every supported minor (`pip index versions flwr`, 2026-12-07)
RELEASES = ("1.21.0", "1.22.0", "1.23.0", "1.24.0", "1.25.0", "1.26.1", "1.27.0", "1.28.0", "1.29.0", "1.30.0",
            "1.31.0", "1.32.1", "1.33.0", "1.34.0", "1.40.0", "1.41.0", "1.42.0")
# a loopback address the namespace does not have (its lo keeps 127.0.0.1/32 only): no route, nothing leaves the
# namespace, and a SuperNode pointed there keeps retrying
UNREACHABLE = "127.0.0.2"
READY_TIMEOUT = 180.0  # a cold first start (bytecode not written yet) on 2 busy cores
HOLD = 3.0  # after everything is up: a process that exits late still shows
WORKERS = 4


@dataclass(frozen=True)
class Case:
    version: str
    secure: bool
    runtime_deps: bool

    def __str__(self) -> str:
        return f"{self.version}-{'secure' if self.secure else 'insecure'}-deps-{'on' if self.runtime_deps else 'off'}"


def _cases() -> list[Case]:
    """Two pairs per release, every flag both ways: secure with dependencies on, insecure with them off (before
    1.23, which flwrazure starts only --insecure, the two differ in nothing and one pair is run)."""
    first = [Case(v, versions.supernode_cli(v), True) for v in RELEASES]
    second = [Case(v, False, False) for v in RELEASES if versions.supernode_cli(v)]
    return first + second  # a release's second pair starts once its first has written the bytecode


CASES = _cases()


def _commands(case: Case, layout: services.Layout) -> tuple[list[str], list[str]]:
    # secure: an unregistered key would be refused and the SuperNode exit: it is pointed where nothing answers
    link_ip = UNREACHABLE if case.secure else "127.0.0.1"
    return (services.superlink_command(case.version, layout, case.secure, case.runtime_deps),
            services.supernode_command(case.version, layout, link_ip, 0, 1, case.secure,
                                       runtime_deps=case.runtime_deps))


@dataclass
class Outcome:
    commands: tuple[list[str], list[str]]
    listening: str  # `ss -ltnpH` in the namespace after HOLD
    established: str
    superexec_peers: set[int]  # loopback ports a SuperExec was seen connected to (keep-alive may close them)
    exits: dict[str, str]  # "superlink"/"supernode" -> exit code, for those that exited
    logs: dict[str, str]
    ready_after: float | None  # seconds until every planned port listened (at any address) and both SuperExecs
    # were connected
    left_behind: list[int]  # processes of the namespace still alive after it was killed
    cpu: float  # CPU seconds its processes had used when it was killed
    admin: dict = None  # secure 1.23+: what the batch script (plan.admin) answered: "registered", "listed"

    def why(self) -> str:
        logs = "\n".join(f"--- {name} (exit {self.exits.get(name, 'none')}): {shlex.join(cmd)}\n{text[-2000:]}"
                         for (name, text), cmd in zip(self.logs.items(), self.commands, strict=True))
        return f"\n{logs}\n--- ss -ltnp\n{self.listening}--- ss -tnp established\n{self.established}"


def _ss(pid: int, *args: str) -> str:
    return subprocess.run([TOOLS["nsenter"], "-t", str(pid), "-n", TOOLS["ss"], *args], capture_output=True,
                          text=True, timeout=30).stdout


def _listeners(text: str) -> dict[int, str]:
    """port -> "any" | "loopback" | the address, of every listening TCP socket."""
    out = {}
    for line in text.splitlines():
        host, _, port = line.split()[3].rpartition(":")
        out[int(port)] = ("any" if host in ("*", "0.0.0.0", "[::]") else
                          "loopback" if host in ("127.0.0.1", "[::ffff:127.0.0.1]") else host)
    return out


def _superexec_peers(text: str) -> set[int]:
    """The loopback ports that a SuperExec process has a connection to."""
    return {int(m.group(1)) for line in text.splitlines() if '"flower-superexe"' in line
            for m in [re.match(r"\S+\s+\S+\s+\S+\s+(?:\[::ffff:)?127\.0\.0\.1\]?:(\d+)\s", line)] if m}


def _expected(version: str) -> tuple[dict[int, str], set[int]]:
    """(port -> bind of the ports that must listen, the ports SuperExecs must be connected to)."""
    plan = versions.port_plan(version)
    want = {port: "any" for port in plan.inbound()}
    want[plan.supernode_local] = "loopback"
    local = plan.superlink_local or plan.fleet  # HTTP: its SuperExec uses the one port, at 127.0.0.1
    if plan.superlink_local:
        want[plan.superlink_local] = "loopback"
    return want, {local, plan.supernode_local}


def _in_netns(pid: int, netns: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == netns
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def _netns_members(netns: str) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and _in_netns(int(e.name), netns)]


def run_pair(case: Case, venv: Path, home: Path) -> Outcome:
    layout = services.Layout(str(home))
    base = Path(layout.base)
    base.mkdir(parents=True)
    os.symlink(venv, layout.venv)
    if case.secure:
        certs.ensure_server_cert(base, "matrix", [])  # ca.crt, server.pem, server.key where the plan wants them
        certs.ensure_supernode_key(Path(layout.path("supernode.key")))
    link, node = _commands(case, layout)
    ip = TOOLS["ip"]
    script = "\n".join([f"{ip} link set lo up", f"{ip} addr del 127.0.0.1/8 dev lo", f"{ip} addr add 127.0.0.1/32 dev lo",
                        f"cd {shlex.quote(layout.base)}",
                        *[f"( {shlex.join(cmd)} > {name}.log 2>&1; echo $? > {name}.rc ) &"
                          for name, cmd in (("superlink", link), ("supernode", node))], "wait"])
    env = {**services.environment(layout, None), "HOME": str(home)}  # as the unit; systemd sets HOME
    want, superexecs = _expected(case.version)
    proc = subprocess.Popen([TOOLS["unshare"], "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                             TOOLS["bash"], "-c", script], env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    netns, end = os.readlink("/proc/self/ns/net"), time.monotonic() + 10
    while netns == os.readlink("/proc/self/ns/net"):  # until unshare has entered its own
        if time.monotonic() > end or proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            raise AssertionError(f"unshare did not start: exit {proc.returncode}")
        netns = os.readlink(f"/proc/{proc.pid}/ns/net")
        time.sleep(0.01)
    exits, peers, answers = {}, set(), None
    start, ready = time.monotonic(), None
    try:
        while time.monotonic() - start < READY_TIMEOUT:
            exits = {n: (base / f"{n}.rc").read_text().strip() for n in ("superlink", "supernode")
                     if (base / f"{n}.rc").exists()}
            if exits:
                break
            peers |= _superexec_peers(_ss(proc.pid, "-tnpH", "state", "established"))
            if set(want) <= set(_listeners(_ss(proc.pid, "-ltnH"))) and superexecs <= peers:
                ready = time.monotonic() - start
                answers = _admin_batch(case, layout, proc.pid) if case.secure else None
                time.sleep(HOLD)
                break
            time.sleep(0.5)
        listening = _ss(proc.pid, "-ltnpH")
        established = _ss(proc.pid, "-tnpH", "state", "established")
        peers |= _superexec_peers(established)
        exits = {n: (base / f"{n}.rc").read_text().strip() for n in ("superlink", "supernode")
                 if (base / f"{n}.rc").exists()}
    finally:
        members = _netns_members(netns)
        cpu = sum(_cpu_seconds(pid) for pid in members)
        with contextlib.suppress(ProcessLookupError):  # unshare and (--kill-child) the namespace's every process
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left, end = members, time.monotonic() + 15
        while left and time.monotonic() < end:
            time.sleep(0.1)
            left = [p for p in members if _in_netns(p, netns)]
    logs = {n: (base / f"{n}.log").read_text(errors="replace") if (base / f"{n}.log").exists() else ""
            for n in ("superlink", "supernode")}
    return Outcome((link, node), listening, established, peers, exits, logs, ready, left, cpu, answers)


def _admin_batch(case: Case, layout: services.Layout, pid: int) -> dict:
    """start's flwr admin calls through the batch script (plan.admin.BATCH_SCRIPT), as flwradmin sends them: two
    keys registered by one process, then the SuperLink's nodes listed by its polling mode."""
    directory = Path(layout.path("admin"))
    (directory / "keys").mkdir(parents=True)
    files = {**admin.files(case.version, versions.port_plan(case.version).control, layout.path("ca.crt")),
             admin.BATCH: admin.BATCH_SCRIPT}
    for name, text in files.items():
        (directory / name).write_text(text)
    keys = {f"vm{i}": certs.ensure_supernode_key(directory / f"vm{i}.key")[1] for i in (1, 2)}
    keys["again"] = keys["vm1"]  # a key registered before: "registered", as flwradmin reads it
    for vm, line in keys.items():
        (directory / "keys" / f"{vm}.pub").write_text(line + "\n")
    env = f"FLWR_HOME={shlex.quote(str(directory))} FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1"
    adm = flwradmin.Admin("", admin.target(case.version, str(directory)), str(directory), case.version,
                          f"{env} {shlex.quote(layout.venv)}/bin/python")

    def sh(command: str) -> subprocess.CompletedProcess:
        return subprocess.run([TOOLS["nsenter"], "-t", str(pid), "-n", TOOLS["bash"], "-c", command],
                              capture_output=True, text=True, timeout=120)

    probe = _health_probe(versions.port_plan(case.version), layout, True)  # start's, as start sends it
    out = sh(admin.batch_each(adm.python, adm.script, list(keys), adm.args("supernode", "register",
                                                                          f"{directory}/keys/@.pub"),
                              until=probe, unless="echo 0", wait=60))
    listed = sh(admin.batch_online(adm.python, adm.script, 0, 10, adm.args("supernode", "list")))
    return {"healthy": out.stdout.startswith("@@healthy "),
            "registered": flwradmin.parse_registrations(out.stdout.partition("\n")[2]),
            "listed": listed.returncode, "nodes": flwradmin._json(listed.stdout).get("nodes"),
            "output": out.stdout + out.stderr + listed.stdout[-500:] + listed.stderr[-500:]}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict[Case, Outcome]:
    began = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        venvs = dict(zip(RELEASES, pool.map(flwr_venv, RELEASES), strict=True))
    installed = time.monotonic()
    root = tmp_path_factory.mktemp("flower-versions")
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = dict(zip(CASES, pool.map(lambda c: run_pair(c, venvs[c.version], root / str(c)), CASES), strict=True))
    print(f"\nflower-versions: {len(RELEASES)} venvs in {installed - began:.1f} s, {len(CASES)} pairs in "
          f"{time.monotonic() - installed:.1f} s using {sum(o.cpu for o in outcomes.values()):.0f} CPU s; "
          "ready after (s): "
          + ", ".join(f"{c}={o.ready_after:.0f}" for c, o in outcomes.items() if o.ready_after is not None))
    return outcomes


@pytest.mark.parametrize("case", CASES, ids=str)
def test_release_runs_the_planned_commands_with_internal_apis_on_loopback(matrix, case):
    out = matrix[case]
    assert not out.left_behind, f"processes of the namespace outlived it: {out.left_behind}"
    assert not out.exits, f"exited early{out.why()}"
    for name, text in out.logs.items():
        assert "unrecognized arguments" not in text and "Traceback" not in text, f"{name}: {out.why()}"
    assert out.ready_after is not None, f"not up within {READY_TIMEOUT:.0f} s{out.why()}"
    want, superexecs = _expected(case.version)
    seen = _listeners(out.listening)
    public = {port for port, bind in seen.items() if bind != "loopback"}
    assert public == set(versions.port_plan(case.version).inbound()) and \
        all(seen[p] == "any" for p in public), f"only Fleet/Control on 0.0.0.0{out.why()}"
    assert all(seen.get(p) == b for p, b in want.items()), f"planned listeners {want}{out.why()}"
    assert superexecs <= out.superexec_peers, f"SuperExecs connected to {superexecs}{out.why()}"
    if case.secure:  # start's registration and online wait run the CLI in one process (plan.admin.BATCH_SCRIPT)
        got = out.admin
        ids = {got["registered"]["vm1"], got["registered"]["vm2"]}
        assert got["healthy"] and all(i.isdigit() for i in ids) and got["registered"]["again"] == "registered", \
            got["output"]
        assert got["listed"] == 0 and ids <= {str(n.get("node-id")) for n in got["nodes"]}, got["output"]
