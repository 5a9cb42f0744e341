"""examples/sklearn-app, run for real on loopback (no VMs, no lock): a SuperLink and two SuperNodes of one flwr
release in a venv with scikit-learn, `flwr run` of the app; SuperNode 1 reads its data-path (prepared by the app's
own `python -m sklearn_app.prepare`, the --node-config text made by flwrazure's plan), SuperNode 2 its partition
of the bundled digits. The global model's accuracy must rise from round 1 to the last round."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flwrazure.plan import clientdata, versions

APP = Path(__file__).resolve().parents[2] / "examples" / "sklearn-app"
CACHE = Path(os.environ.get("FLWRAZURE_TEST_CACHE", Path.home() / ".cache" / "flwrazure-tests"))
ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


def sklearn_venv(version: str) -> Path:
    """A venv with flwr==version, scikit-learn and numpy from the package registry, made once and cached."""
    base = CACHE / f"sklearn-flwr-{version}"
    if not (base / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(base / "venv")], check=True)
        subprocess.run([str(base / "venv" / "bin" / "pip"), "install", "-q", f"flwr=={version}", "scikit-learn",
                        "numpy"], check=True, timeout=900)
        (base / "ready").write_text("ok\n")
    return base / "venv" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 90) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (the SuperLink starts flower-superexec in a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stop(procs: list[subprocess.Popen]) -> None:
    pids = [p for proc in procs for p in [proc.pid, *descendants(proc.pid)]]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# one release by default (a run takes a minute); e.g. FLWRAZURE_SKLEARN_APP_VERSIONS="1.42.0 1.31.0" for more
@pytest.mark.timeout(900)  # the first run makes the venv (pip: minutes)
@pytest.mark.parametrize("version", os.environ.get("FLWRAZURE_SKLEARN_APP_VERSIONS", "1.42.0").split())
def test_sklearn_app_accuracy_rises_with_data_path_and_partition(tmp_path, version):
    began = time.monotonic()
    bin_ = sklearn_venv(version)
    env = {**os.environ, **ENV, "FLWR_HOME": str(tmp_path / "flwr"), "PATH": f"{bin_}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(bin_ / "python"), "-m", "sklearn_app.prepare", str(tmp_path / "data"), "--clients", "2"],
                   cwd=APP, env=env, check=True, capture_output=True, timeout=120)
    plan = versions.port_plan(version)
    fleet = control = free_port()
    if plan.generation == "http":
        link = ["--port", str(fleet), "--disable-runtime-dependency-installation"]
    else:
        fleet, control = free_port(), free_port()
        link = ["--serverappio-api-address", f"127.0.0.1:{free_port()}", "--fleet-api-address",
                f"127.0.0.1:{fleet}", "--control-api-address", f"127.0.0.1:{control}"]
    (tmp_path / "flwr").mkdir()
    (tmp_path / "flwr" / "config.toml").write_text(
        f'[superlink]\ndefault = "t"\n[superlink.t]\naddress = "127.0.0.1:{control}"\ninsecure = true\n')
    logs = tmp_path / "logs"
    logs.mkdir()

    def spawn(name: str, args: list[str]) -> subprocess.Popen:
        with open(logs / f"{name}.log", "wb") as out:
            return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    local = "--port" if plan.generation == "http" else "--clientappio-api-address"
    procs = [spawn("superlink", [str(bin_ / "flower-superlink"), "--insecure", *link])]
    try:
        for i, data in ((1, str(tmp_path / "data" / "1")), (2, None)):
            port = free_port()
            procs.append(spawn(f"supernode-{i}", [
                str(bin_ / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{fleet}", local,
                str(port) if plan.generation == "http" else f"127.0.0.1:{port}",
                "--node-config", clientdata.node_config(i - 1, 2, data)]))
        wait_port(control)
        ready = time.monotonic()
        run = subprocess.run([str(bin_ / "flwr"), "run", str(APP), "t", "--stream", "--run-config",
                              "num-server-rounds=2"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    finally:
        stop(procs)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    acc = {int(r): float(a) for r, a in re.findall(r"flwrazure-example: round (\d+) accuracy ([0-9.]+)", out)}
    assert sorted(acc) == [1, 2], out[-3000:]  # 2 rounds here to save time: the default is 3
    assert acc[2] >= acc[1] + 0.01 and acc[2] > 0.9, acc
    assert out.count("trained on 1257 examples from 2 clients (1 read their data-path)") == 2, out[-3000:]
    assert f"flwrazure-example: final accuracy {acc[2]:.4f}" in out
    print(f"\nflwr {version}: accuracy per round {acc}; {time.monotonic() - began:.1f} s in all, "
          f"SuperLink up after {ready - began:.1f} s")
