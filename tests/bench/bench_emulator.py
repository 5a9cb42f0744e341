"""Request latency of the local cloud's ARM endpoint, through the real SDK and raw HTTPS, in one run."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import arm
from tests.helpers.cloud import start_cloud


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, samples: list[float]) -> str:
    p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
    return f"  {name:<46} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   (n={len(samples)})"


def main() -> None:
    cloud = start_cloud(Path(tempfile.mkdtemp()) / "local", polling=0.01)
    try:
        cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
        subnet = cloud.network.virtual_networks.begin_create_or_update("rg", "v", arm.vnet()).result().subnets[0].id
        nic = cloud.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(subnet)).result()
        cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id)).result()
        session_get = lambda: cloud.resources.resource_groups.get("rg")  # noqa: E731
        counter = iter(range(10**6))
        print("local cloud request latency (HTTPS on 127.0.0.1, real SDK, keep-alive)")
        print(row("GET resource group (SDK)", timed(session_get, 200)))
        print(row("GET VM with instanceView (SDK)",
                  timed(lambda: cloud.compute.virtual_machines.get("rg", "vm", expand="instanceView"), 200)))
        print(row("PUT public IP, LRO to Succeeded (SDK, poll 10 ms)",
                  timed(lambda: cloud.network.public_ip_addresses.begin_create_or_update(
                      "rg", f"ip{next(counter)}", arm.pip()).result(), 50)))
        print(row("GET resource group (raw requests, new TLS conn)", timed(lambda: cloud.raw(
            "GET", cloud.rg_path("rg")), 100)))
        log = cloud.admin("GET", "requests").json()["value"]
        server_ms = [r["ms"] for r in log if r["method"] == "GET"]
        print(row("server-side handling time of those GETs", server_ms))
    finally:
        cloud.server.stop()


if __name__ == "__main__":
    main()
