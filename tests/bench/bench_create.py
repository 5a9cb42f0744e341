"""create-cluster on the local cloud with --latency L: wall time for N = 2, 10, 50 clients against the critical
path (public IP | VNet | NSG -> NIC -> VM = 3 long-running operations = 3L), ARM requests by kind, and the peak
read rate in any 1-second window (real ARM refills reads at 25/s per region). One run, printed as a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.helpers.cloud import publish, start_cloud

LATENCY = float(os.environ.get("BENCH_LATENCY", "3.0"))
SIZES = [int(n) for n in os.environ.get("BENCH_CLIENTS", "2,10,50").split(",")]


def peak_rate(times: list[float]) -> int:
    times.sort()
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run(home: Path, *args: str) -> float:
    env = {**os.environ, "FLWRAZURE_HOME": str(home)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flwrazure", *args], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    home = Path(tempfile.mkdtemp()) / "home"
    cloud = start_cloud(home / "local")
    publish(cloud, home)
    cloud.admin("PATCH", "config", {"latency": LATENCY, "catalog": {"quotas": {"cores": 1000, "family_default": 1000}}})
    bound = 3 * LATENCY
    print(f"create-cluster on the local cloud, latency {LATENCY:.1f} s per long-running operation; "
          f"critical-path bound {bound:.1f} s")
    print(f"  {'clients':>7} {'wall s':>7} {'ratio':>6} {'PUT':>5} {'GET':>5} {'other':>5} {'peak reads/s':>13}"
          f" {'teardown s':>10}")
    try:
        for n in SIZES:
            cloud.admin("DELETE", "requests")
            wall = run(home, "create-cluster", "--cloud", "local", "--cluster", f"b{n}", "--clients", str(n),
                       "--json")
            log = [r for r in cloud.admin("GET", "requests").json()["value"] if r["path"].startswith("/subscriptions")]
            kinds = Counter(r["method"] for r in log)
            reads = peak_rate([r["t"] for r in log if r["method"] == "GET"])
            down = run(home, "teardown", "--cluster", f"b{n}", "--yes", "--purge")
            other = sum(v for k, v in kinds.items() if k not in ("PUT", "GET"))
            print(f"  {n:>7} {wall:>7.2f} {wall / bound:>6.2f} {kinds['PUT']:>5} {kinds['GET']:>5} {other:>5}"
                  f" {reads:>13} {down:>10.2f}")
        print("  targets: ratio <= 1.2, peak reads/s <= 25")
    finally:
        cloud.server.stop()


if __name__ == "__main__":
    json.dumps({})
    main()
