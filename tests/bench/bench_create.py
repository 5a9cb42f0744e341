"""create-cluster and teardown under Azure's timing and throttling (issue 11): the local cloud runs the `azure`
latency profile (durations and Retry-After from the recordings, flwrazure/localcloud/arm/timing.py) with ARM's
token buckets and Compute's operation groups on, at time scale 0.05 for 2, 10, 50 and 100 clients and at 1.0 for
2 clients. Printed per run: wall time, the bound and the ratio, ARM writes and reads by kind, and the 429s the
product met (none may reach the user: the run fails otherwise).

`span` is the time from the command's first ARM request to its last (the wall time less Python's start-up and SDK
imports, about 1-2 s on these cores), so the ratio at small time scales shows the product's own waiting.

Bounds. create-cluster: the larger of the dependency chain from the profile — max(VNet, NSG, public IP) then the
NIC (Succeeded at once on Azure) then the VM — and the time ARM's write bucket needs for that many writes
((writes - 200) / 10 per s, scaled); the product reads states with batched lists, so no Retry-After stands between
it and that bound. `tight bound` for create-cluster: a VM's PUT needs its NIC and public IP first, so the last VM
PUT is the last of all the writes and cannot leave before the write bucket allows that many, nor finish sooner than
a VM's duration after it: max(chain, bucket time + VM duration) — 4.28 s for 100 clients at scale 0.05 (306 writes)
against the 4.0 s chain; the same as the chain up to 200 writes.
teardown (the group goes as a whole): the group deletion's duration (`bound`), and as its tight bound `RA bound`:
the first moment a client that honours Azure's Retry-After (15 s on the group DELETE and its polls, the SDK's
first poll at once) can learn that the deletion ended, ceil(78 / 15) * 15 = 90 s at scale 1 — no client
following Azure's protocol can finish sooner, so `RA ratio` is the product's own overhead.
One run, printed as a table; the machine's cores are shared with other work, which the wall times include.

First it prints what one ARM write costs the CLI itself (request_cost: tests/bench/put_floor.py in a process of its
own), the part of a create-cluster that the time scale does not shrink."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from flwrazure.localcloud.arm import throttle, timing
from tests.helpers.cloud import publish, shows_throttling, start_cloud

RUNS = [(int(n), float(f)) for n, f in (r.split("@") for r in os.environ.get(
    "BENCH_RUNS", "2@0.05,10@0.05,50@0.05,100@0.05,2@1.0").split(","))]
D = timing.AZURE_DURATIONS
VM_PUT = D[("microsoft.compute/virtualmachines", "PUT")]
CHAIN = max(D[("microsoft.network/virtualnetworks", "PUT")], D[("microsoft.network/networksecuritygroups", "PUT")],
            D[("microsoft.network/publicipaddresses", "PUT")]) + VM_PUT
GROUP_DELETE = D[("microsoft.resources/resourcegroups", "DELETE")]
GROUP_DELETE_RA = math.ceil(GROUP_DELETE / timing.AZURE_RETRY_AFTER["group_delete"]) * \
    timing.AZURE_RETRY_AFTER["group_delete"]
WRITE_BURST, WRITE_RATE = throttle.ARM_BUCKETS["writes"]
CPU: dict[str, float] = {}
TYPES = {"virtualnetworks": "vnet", "networksecuritygroups": "nsg", "publicipaddresses": "pip",
         "networkinterfaces": "nic", "virtualmachines": "vm", "securityrules": "rule", "subnets": "subnet"}


def kind_of(r: dict) -> str:
    path = r["path"].lower()
    if re.search(r"/(operations|operationresults)/[^/]+$", path):
        return "poll"
    m = re.search(r"/providers/microsoft\.\w+/(\w+)(/[^/]+)?(/\w+)?(/[^/]+)?$", path)
    if m:
        name = TYPES.get(m.group(3).strip("/") if m.group(3) else m.group(1), m.group(1))
        if r["method"] == "GET" and not m.group(2):
            return f"list {name}"
        return name
    if re.search(r"/resourcegroups/[^/]+$", path):
        return "group"
    if path.endswith("/resources"):
        return "list resources"
    return path.rsplit("/", 1)[-1]


def run(home: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "FLWRAZURE_HOME": str(home)}
    start, before = time.perf_counter(), os.times()
    done = subprocess.run([sys.executable, "-m", "flwrazure", *args], env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, os.times()
    # CPU-seconds of the CLI (its own process) and of the local cloud (this process: it serves in threads)
    CPU["client"] = after.children_user + after.children_system - before.children_user - before.children_system
    CPU["cloud"] = after.user + after.system - before.user - before.system
    said = done.stdout + done.stderr
    if done.returncode != 0 or shows_throttling(done.stderr, home):
        raise SystemExit(f"flwrazure {' '.join(args)} failed or showed throttling:\n{said[-3000:]}")
    return wall, done


def summary(log: list[dict]) -> tuple[str, str, int]:
    writes = Counter(kind_of(r) for r in log if r["method"] != "GET" and r["status"] != 429)
    reads = Counter(kind_of(r) for r in log if r["method"] == "GET" and r["status"] != 429)
    fmt = lambda c: " ".join(f"{k}:{v}" for k, v in sorted(c.items()))  # noqa: E731
    return fmt(writes), fmt(reads), sum(r["status"] == 429 for r in log)


def one(n: int, scale: float) -> list[str]:
    home = Path(tempfile.mkdtemp()) / "home"
    cloud = start_cloud(home / "local", config={"profile": "azure", "time_scale": scale})
    publish(cloud, home)
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"cores": 10000, "family_default": 10000,
                                                           "PublicIPAddresses": 1000}}})
    try:
        cloud.admin("DELETE", "requests")
        wall, _ = run(home, "create-cluster", "--cloud", "local", "--cluster", f"b{n}", "--clients", str(n), "--json")
        log = [r for r in cloud.admin("GET", "requests").json()["value"] if r["path"].startswith("/subscriptions")]
        n_writes = sum(1 for r in log if r["method"] != "GET" and r["status"] != 429)
        bucket = max(0, n_writes - WRITE_BURST) / WRITE_RATE  # seconds at scale 1, like CHAIN and VM_PUT
        bound, tight = max(CHAIN, bucket) * scale, max(CHAIN, VM_PUT + bucket) * scale
        writes, reads, met = summary(log)
        span = log[-1]["t"] - log[0]["t"]
        rows = [f"  {n:>4} {scale:>5} create   {wall:>7.2f} {span:>7.2f} {bound:>7.2f} {wall / bound:>5.2f} "
                f"{span / bound:>5.2f} {tight:>8.2f} {wall / tight:>8.2f} {CPU['client']:>5.1f}/{CPU['cloud']:<4.1f} {met:>4}  writes {writes} | "
                f"reads {reads}"]
        cloud.admin("DELETE", "requests")
        wall, _ = run(home, "teardown", "--cluster", f"b{n}", "--yes", "--purge")
        log = [r for r in cloud.admin("GET", "requests").json()["value"] if r["path"].startswith("/subscriptions")]
        bound, ra_bound = GROUP_DELETE * scale, GROUP_DELETE_RA * scale
        writes, reads, met = summary(log)
        span = log[-1]["t"] - log[0]["t"]
        rows.append(f"  {n:>4} {scale:>5} teardown {wall:>7.2f} {span:>7.2f} {bound:>7.2f} {wall / bound:>5.2f} "
                    f"{span / bound:>5.2f} {ra_bound:>8.2f} {wall / ra_bound:>8.2f} {CPU['client']:>5.1f}/{CPU['cloud']:<4.1f} "
                    f"{met:>4}  writes {writes} | "
                    f"reads {reads}")
        return rows
    finally:
        cloud.server.stop()


def request_cost(threads=(1, 8, 101), n: int = 303) -> None:
    """The CLI's CPU per ARM write through the product's request path (tests/bench/put_floor.py, a process of its
    own) against a local cloud of its own per row (azure profile, throttling off: every PUT is answered at once and
    nothing waits): what the PUT burst of a create-cluster costs the CLI. With ratio 1.2 at time scale 0.05 (4.8 s)
    and a VM taking 3.75 s, every write of a create must have left by 1.05 s after the command started."""
    print(f"CLI cost of one ARM write (public-IP PUTs through the product's pipeline, {n} per row, answered at once)")
    for t in threads:
        home = Path(tempfile.mkdtemp()) / "home"
        cloud = start_cloud(home / "local", config={"profile": "azure", "throttling": False})
        try:
            publish(cloud, home)
            cloud.admin("PATCH", "config", {"catalog": {"quotas": {"PublicIPAddresses": 100000}}})
            out = subprocess.run([sys.executable, "-m", "tests.bench.put_floor", str(home), str(t), str(n)],
                                 capture_output=True, text=True, check=True).stdout
        finally:
            cloud.server.stop()
        row = json.loads(out.splitlines()[-1])
        print(f"  {t:>4} threads: {row['cpu_ms']:5.2f} ms CPU, {row['wall_ms']:5.2f} ms wall per write; the 306 "
              f"writes of a 100-client create: {306 * row['cpu_ms'] / 1000:4.2f} s of one core")


def main() -> None:
    request_cost()
    print("create-cluster / teardown on the local cloud: azure profile, ARM + Compute throttling on "
          f"(chain {CHAIN:.0f} s, group delete {GROUP_DELETE:.0f} s, writes {WRITE_BURST}+{WRITE_RATE:.0f}/s at "
          "scale 1); API-only VMs")
    print(f"  {'N':>4} {'scale':>5} {'command':<8} {'wall s':>7} {'span s':>7} {'bound s':>7} {'ratio':>5} "
          f"{'span':>5} {'tight bd':>8} {'tight r':>8} {'cpu cli/cloud':>10} {'429s':>4}  ARM requests by kind (span: first to last ARM request, i.e. without the "
          "CLI's start-up)")
    load = os.getloadavg()[0]
    for n, scale in RUNS:
        for row in one(n, scale):
            print(row, flush=True)
    print(f"  target: ratio <= 1.2, no 429 shown to the user (429s: met by the product, all retried); load average "
          f"{load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores shared with other work")


if __name__ == "__main__":
    main()
