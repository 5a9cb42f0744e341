"""`flwrazure up` for 2 clients at Azure's own timing (`local up --profile azure --time-scale 1`: a VM create takes
the recorded 75 s, first boots lag and hold apt's lock) on sandbox VMs, each phase against the bound no tool can
beat: the profile's VM create duration. Phases: VMs created, first SSH login, Flower installed on every VM,
SuperLink healthy, all SuperNodes online (seconds since `up` began). Root only.

    python -m tests.bench.bench_up_azure          # FLWRAZURE_BENCH_CLIENTS=2 by default"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from flwrazure.localcloud.arm import timing
from flwrazure.localcloud.hosts import nspawn
from tests.bench.bench_start import CACHE, VERSION, fz

VM_CREATE = timing.AZURE_DURATIONS[("microsoft.compute/virtualmachines", "PUT")]
PHASES = [("created", "VMs created"), ("ssh", "first SSH"), ("installed", "Flower installed"),
          ("superlink", "SuperLink healthy"), ("online", "all SuperNodes online")]


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


def run(clients: int, vm_cpu: float | None = None) -> dict[str, float]:
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
        fz(home, "up", "--cloud", "local", "--cluster", "az", "--clients", str(clients), "--flwr-version", VERSION,
           "--json", out=info)
        info.setdefault("seconds", round(time.perf_counter() - began, 1))
        fz(home, "teardown", "--cluster", "az", "--yes", "--purge")
    finally:
        fz(home, "local", "down")
        shutil.rmtree(home.parent, ignore_errors=True)
    return phases(info)


def main() -> None:
    if nspawn.available():
        print(f"up at Azure's timing: skipped ({nspawn.available()})")
        return
    clients = int(os.environ.get("FLWRAZURE_BENCH_CLIENTS", "2"))
    got = run(clients)
    print(f"flwrazure up, {clients} clients, --profile azure --time-scale 1 (VM create {VM_CREATE:g} s: the bound)")
    for key, label in PHASES + [("total", "up returned")]:
        if key in got:
            print(f"  {label:<22} {got[key]:6.1f} s   {got[key] / VM_CREATE:4.2f} x VM create")
    print(f"  target: all SuperNodes online within 1.5 x VM create ({1.5 * VM_CREATE:g} s); VMs that installed Flower "
          f"over SSH (user data failed or absent): {got.get('fallbacks', 0)}")
    print(json.dumps({"clients": clients, "vm_create": VM_CREATE, **got}))


if __name__ == "__main__":
    main()
