"""Startup cost of `flwrazure --help` / `--version` against importing the Azure SDK, measured in one run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 15


def median_seconds(cmd: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    py = sys.executable
    bare = median_seconds([py, "-c", "pass"])
    rows = [
        ("python -c pass (interpreter floor)", bare),
        ("flwrazure --help", median_seconds([py, "-m", "flwrazure", "--help"])),
        ("flwrazure --version", median_seconds([py, "-m", "flwrazure", "--version"])),
        ("flwrazure local --help", median_seconds([py, "-m", "flwrazure", "local", "--help"])),
        ("import azure SDK clients + identity", median_seconds([py, "-c",
            "import azure.identity, azure.mgmt.compute, azure.mgmt.network, azure.mgmt.resource.resources"])),
    ]
    help_s = rows[1][1]
    print(f"startup (median of {RUNS} runs)")
    for name, seconds in rows:
        print(f"  {name:<40} {seconds * 1000:8.1f} ms")
    print(f"  --help / SDK import ratio: {help_s / rows[-1][1]:.2f}   target --help < 150 ms: "
          f"{'met' if help_s < 0.150 else 'MISSED'}")


if __name__ == "__main__":
    main()
