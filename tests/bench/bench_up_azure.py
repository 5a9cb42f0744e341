"""`flwrazure up` at Azure's own timing (`local up --profile azure --time-scale 1`: a VM create takes the recorded
75 s, first boots lag and hold apt's lock) on sandbox VMs capped at their size's vCPUs (`local up --vm-cpu`), each
phase against the bound no tool can beat: the profile's VM create duration. Phases (seconds since `up` began):
VMs created, first SSH login, Flower installed on every VM, SuperLink healthy, all SuperNodes online. Each row has
a local cloud of its own (no teardown: `local down` ends it). Root only.

All VMs share this machine's cores (an Azure VM's vCPUs are its own): the bench prints how busy the machine was
from the VMs' creation to the end of `up` (cores busy on average, and the share of seconds with every core busy),
so a row that is CPU-bound here says so.

    python -m tests.bench.bench_up_azure          # every row; FLWRAZURE_BENCH_CLIENTS=2 (or 2,10) picks rows"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from flwrazure.localcloud.arm import catalog, timing
from flwrazure.localcloud.hosts import nspawn
from flwrazure.spec import ClusterSpec
from tests.bench.bench_start import CACHE, VERSION, busy_seconds, fz

VM_CREATE = timing.AZURE_DURATIONS[("microsoft.compute/virtualmachines", "PUT")]
PHASES = [("created", "VMs created"), ("ssh", "first SSH"), ("installed", "Flower installed"),
          ("superlink", "SuperLink healthy"), ("online", "all SuperNodes online")]

# One line per row: (clients, `up` options beyond the defaults, bound as a multiple of VM_CREATE). Rows for other
# layouts take one line each, e.g. (2, ("--private-clients",), 1.5) or (2, ("--spot",), 1.5).
ROWS: list[tuple[int, tuple[str, ...], float]] = [
    (2, (), 1.5),
    (10, (), 1.6),
    (2, ("--private-clients",), 1.5),
    (2, ("--spot",), 1.5),
]


def vcpus(size: str = ClusterSpec.client_size) -> int:
    """The size's vCPUs in the local cloud's catalog (the default VMs: Standard_D2s_v3, 2)."""
    return int(catalog.VM_SIZES[size][1])


def phases(result: dict) -> dict[str, float]:
    """Seconds since `up` began for each phase, from up's --json (create's duration, start's milestones)."""
    marks = result.get("milestones") or {}
    total = float(result["seconds"])
    created = result.get("created_seconds")
    if created is None:  # an up without it: start ran right after create-cluster, until its last milestone
        created = total - float(marks.get("online", 0.0))
    out = {"created": float(created)}
    for key in ("ssh", "installed", "superlink", "online"):
        if key in marks:
            out[key] = round(float(created) + float(marks[key]), 1)
    out["total"] = total
    out["fallbacks"] = len(result.get("bootstrap_fallbacks") or {})  # VMs whose user data did not install Flower
    return out


class CpuWatch:
    """This machine's busy cores, sampled every second while a command runs (every sandbox VM included)."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []  # (seconds since the watch began, cores busy that second)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        last, at = busy_seconds(), time.monotonic()
        began = at
        while not self._stop.wait(1.0):
            now, t = busy_seconds(), time.monotonic()
            self.samples.append((t - began, (now - last) / (t - at)))
            last, at = now, t

    def __enter__(self) -> CpuWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, after: float = 0.0) -> dict[str, float]:
        """Cores busy on average and the share of seconds with every core busy, from `after` s on (the VMs
        created: what start does on them)."""
        cores = os.cpu_count() or 1
        window = [busy for t, busy in self.samples if t > after]
        if not window:
            return {"cores": cores, "busy": 0.0, "saturated": 0.0}
        return {"cores": cores, "busy": round(sum(window) / len(window), 2),
                "saturated": round(sum(1 for b in window if b >= 0.95 * cores) / len(window), 2)}


def run(clients: int, options: tuple[str, ...] = (), vm_cpu: float | None = None) -> dict[str, float]:
    home = Path(tempfile.mkdtemp()) / "home"
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True)
    if (CACHE / "wheels").exists():
        for w in (CACHE / "wheels").iterdir():
            shutil.copy(w, house / w.name)
    cap = ["--vm-cpu", str(vm_cpu)] if vm_cpu else []
    fz(home, "local", "up", "--port", "0", "--profile", "azure", "--time-scale", "1", *cap)
    try:
        info: dict = {}
        began = time.perf_counter()
        with CpuWatch() as cpu:
            fz(home, "up", "--cloud", "local", "--cluster", "az", "--clients", str(clients), "--flwr-version",
               VERSION, *options, "--json", out=info)
        info.setdefault("seconds", round(time.perf_counter() - began, 1))
    finally:  # the local cloud goes with every VM: a teardown (a group delete: 78 s at this timing) adds nothing
        fz(home, "local", "down")
        shutil.rmtree(home.parent, ignore_errors=True)
    got = phases(info)
    return {**got, **cpu.summary(after=got["created"])}


def table(rows: list[tuple[int, tuple[str, ...], float, dict]]) -> list[str]:
    """Each phase as seconds and ratio to VM_CREATE, the bound and whether all SuperNodes were online within it."""
    head = f"  {'N':>3} {'options':<18}" + "".join(f" {label:>22}" for _, label in PHASES)
    lines = [head + f" {'bound':>6} {'met':>4} {'cores busy¹':>11} {'all busy¹':>9} {'SSH installs':>12}"]
    for clients, options, bound, got in rows:
        cells = "".join(f" {got[k]:>13.1f} s ({got[k] / VM_CREATE:4.2f})" if k in got else f" {'-':>22}"
                        for k, _ in PHASES)
        met = "yes" if got.get("online", float("inf")) <= bound * VM_CREATE else "no"
        lines.append(f"  {clients:>3} {' '.join(options) or 'default':<18}{cells} {bound:>5.1f}x {met:>4} "
                     f"{got['busy']:>5.2f} of {got['cores']:<3} {got['saturated']:>8.0%} {got['fallbacks']:>12}")
    return lines


def main() -> None:
    if nspawn.available():
        print(f"up at Azure's timing: skipped ({nspawn.available()})")
        return
    wanted = {int(n) for n in os.environ.get("FLWRAZURE_BENCH_CLIENTS", "").split(",") if n.strip()}
    # FLWRAZURE_BENCH_LAYOUTS=default,--spot: only those rows (a row's options, or "default" for none)
    layouts = {n.strip() for n in os.environ.get("FLWRAZURE_BENCH_LAYOUTS", "").split(",") if n.strip()}
    cap = vcpus()
    print(f"flwrazure up, --profile azure --time-scale 1, VMs capped at their size's {cap} vCPUs (--vm-cpu {cap}); "
          f"phase: seconds since up began (ratio to the {VM_CREATE:g} s VM create, the bound's unit)", flush=True)
    done = []
    for clients, options, bound in ROWS:
        if wanted and clients not in wanted:
            continue
        if layouts and (" ".join(options) or "default") not in layouts:
            continue
        got = run(clients, options, cap)
        done.append((clients, options, bound, got))
        print(json.dumps({"clients": clients, "options": list(options), "vm_create": VM_CREATE, "bound": bound,
                          **got}), flush=True)
    for line in table(done):
        print(line)
    print(f"  target: all SuperNodes online within the bound x VM create. ¹ this machine's cores from VMs created to "
          f"the end (average; share of seconds with all busy), every VM sharing them: on Azure each VM has its own "
          f"{cap}. SSH installs: VMs whose user data did not install Flower")


if __name__ == "__main__":
    main()
