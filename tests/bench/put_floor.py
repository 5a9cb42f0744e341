"""The CLI's own cost of one ARM write: public-IP PUTs sent through the product's request path (Target's pipeline:
credential, pacing, retries; azure-core -> requests -> urllib3 -> ssl) to a local cloud that answers at once, from
T threads at a time. Run by bench_create in a process of its own, so its CPU is the client's alone:

    python -m tests.bench.put_floor HOME THREADS N   ->  one JSON line {threads, cpu_ms, wall_ms} per PUT
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor


def main() -> None:
    home, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.environ["FLWRAZURE_HOME"] = home
    from flwrazure.azure import inventory
    from flwrazure.azure.target import connect

    target = connect("local")
    rg = f"floor-{uuid.uuid4().hex[:8]}"
    target.resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    prefix = f"/subscriptions/{target.subscription}/resourceGroups/{rg}/providers/Microsoft.Network/publicIPAddresses"
    body = {"location": "eastus", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}

    def put(i: int) -> None:
        inventory.put_raw(target.resources, f"{prefix}/ip{i}", body)

    with ThreadPoolExecutor(max_workers=threads) as pool:  # the connections the run uses are open: TLS handshakes
        list(pool.map(put, range(-threads, 0)))  # are a cost of their own (a create opens one per thread)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = usage.ru_utime + usage.ru_stime, time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(put, range(n)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, wall = usage.ru_utime + usage.ru_stime - cpu0, time.perf_counter() - wall0
    print(json.dumps({"threads": threads, "cpu_ms": 1000 * cpu / n, "wall_ms": 1000 * wall / n}))


if __name__ == "__main__":
    main()
