"""`flwrazure start` for 1 vs 4 client VMs (all VMs are bootstrapped at once, so the ratio should stay near 1),
and `flwrazure up` from nothing to every SuperNode online; local cloud with sandbox VMs (root only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flwrazure.localcloud.hosts import nspawn
from tests.helpers.cloud import local_log_tail

VERSION = "1.42.0"
CACHE = Path(os.environ.get("FLWRAZURE_TEST_CACHE", Path.home() / ".cache" / "flwrazure-tests")) / f"flwr-{VERSION}"


def busy_seconds() -> float:
    """CPU-seconds this whole machine (every sandbox VM included) has been busy, from /proc/stat."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def fz(home: Path, *args: str, out: dict | None = None) -> float:
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWR_HOME": str(home / "flwr")}
    start, cpu = time.perf_counter(), busy_seconds()
    proc = subprocess.run([sys.executable, "-m", "flwrazure", *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:  # say why: the bench's failure is a finding
        raise SystemExit(f"flwrazure {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}\n"
                         f"local cloud log (last lines):\n{local_log_tail(home, 20)}")
    if out is not None:
        out.update(json.loads(proc.stdout), cpu=busy_seconds() - cpu)
    return time.perf_counter() - start


def series(vm_cpu: float | None) -> tuple[list, float]:
    """start for 1 and 4 clients (first run, re-run) and `up` for 2, on a fresh local cloud."""
    home = Path(tempfile.mkdtemp()) / "home"
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True)
    cap = ["--vm-cpu", str(vm_cpu)] if vm_cpu else []
    if (CACHE / "wheels").exists():
        for w in (CACHE / "wheels").iterdir():
            (house / w.name).write_bytes(w.read_bytes())
        fz(home, "local", "up", "--port", "0", "--boot-delay", "2", *cap)
    else:
        fz(home, "local", "up", "--port", "0", "--boot-delay", "2", "--prefetch", f"flwr=={VERSION}",
           "--prefetch", "numpy", *cap)
    rows = []
    try:
        for n in (1, 4):
            name = f"s{n}"
            fz(home, "create-cluster", "--cloud", "local", "--cluster", name, "--clients", str(n), "--flwr-version",
               VERSION)
            fz(home, "open-ports", "--cluster", name, "--source", "198.18.0.1")
            info: dict = {}
            first = fz(home, "start", "--cluster", name, "--extra-pip", "numpy", "--json", out=info)
            again = fz(home, "start", "--cluster", name, "--extra-pip", "numpy")
            fz(home, "teardown", "--cluster", name, "--yes", "--purge")
            rows.append((n, first, again, info))
        up = fz(home, "up", "--cloud", "local", "--cluster", "u2", "--clients", "2", "--flwr-version", VERSION,
                "--extra-pip", "numpy")
        fz(home, "teardown", "--cluster", "u2", "--yes", "--purge")
    finally:
        fz(home, "local", "down")
    return rows, up


def main() -> None:
    if nspawn.available():
        print(f"start/up: skipped ({nspawn.available()})")
        return
    from flwrazure.localcloud.hosts import cgroups

    cores = os.cpu_count() or 1
    modes = [(None, f"VMs share this machine's {cores} cores")]
    if not cgroups.available("cpu"):
        share = round(cores / 5, 2)
        modes.append((share, f"each VM capped at {share} core (--vm-cpu): a VM's speed no longer depends on how many "
                             "run, as on Azure"))
    print(f"flwrazure start on the local cloud (flwr {VERSION}, secure, venv + pip install from the VMs' mirror)")
    for vm_cpu, title in modes:
        rows, up = series(vm_cpu)
        print(f" {title}:")
        for n, first, again, info in rows:
            marks = "  ".join(f"{k} {v:.1f}" for k, v in sorted(info["milestones"].items(), key=lambda kv: kv[1]))
            print(f"  {n} client VM(s): first start {first:6.1f} s   re-run {again:5.1f} s   machine CPU "
                  f"{info['cpu']:5.1f} s (floor on {cores} cores: {info['cpu'] / cores:4.1f} s)   at s: {marks}")
        print(f"  ratio 4 vs 1 clients: {rows[1][1] / rows[0][1]:.2f}   (target <= 1.5)")
        print(f"  flwrazure up, 2 clients, from nothing to all SuperNodes online: {up:.1f} s")


if __name__ == "__main__":
    main()
