"""Sandbox hosts: time from VM PUT to SSH-ready, memory per VM, and how many VMs this machine holds (root only).
BENCH_VMS (default 10) VMs are created at once; memory is the RSS of each VM's processes and the machine's
used-memory delta."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flwrazure.localcloud.hosts import nspawn
from flwrazure.localcloud.server import LocalCloudServer
from tests.helpers import arm
from tests.helpers.cloud import clients_for
from tests.helpers.hosts import login_trace

N = int(os.environ.get("BENCH_VMS", "10"))


def used_mib() -> float:
    info = dict(line.split(":") for line in Path("/proc/meminfo").read_text().splitlines())
    kib = lambda k: int(info[k].split()[0])  # noqa: E731
    return (kib("MemTotal") - kib("MemAvailable")) / 1024


def rss_mib(netns: str) -> float:
    total = 0
    for pid in subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0)
    return total / 1024


def series(source: str, lag: float, apt: float) -> dict:
    # ARM throttling off: this bench measures boots, and its plain SDK clients poll every VM every 0.05 s (400
    # reads/s at 20 VMs, far past ARM's 25/s refill); the product paces itself and keeps it on (bench_create)
    server = LocalCloudServer(Path(tempfile.mkdtemp()) / "local", hosts="nspawn", boot_delay=2.0, image_source=source,
                              provision_lag=lag, first_boot_apt=apt, config={"throttling": False}).start()
    try:
        c = clients_for(server, polling=0.05)
        c.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
        vnet = c.network.virtual_networks.begin_create_or_update("rg", "v", arm.vnet("10.0.0.0/16", "10.0.0.0/20")).result()
        nsg = c.network.network_security_groups.begin_create_or_update("rg", "nsg", {"location": "eastus", "properties": {
            "securityRules": [{"name": "ssh", **arm.rule(100, "22", "198.18.0.1")}]}}).result()
        nics = {}
        for i in range(N):
            ip = c.network.public_ip_addresses.begin_create_or_update("rg", f"ip{i}", arm.pip()).result()
            nics[i] = (c.network.network_interfaces.begin_create_or_update(
                "rg", f"nic{i}", arm.nic(vnet.subnets[0].id, ip.id, nsg.id)).result(), ip.ip_address)
        before = used_mib()

        def one(i: int) -> tuple[float, float, dict]:
            start = time.monotonic()
            c.compute.virtual_machines.begin_create_or_update("rg", f"vm{i}", arm.vm(nics[i][0].id)).result()
            succeeded = time.monotonic() - start
            seen = login_trace(nics[i][1], timeout=300)
            return succeeded, time.monotonic() - start, seen["errors"]

        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=N) as pool:
            times = list(pool.map(one, range(N)))
        wall = time.monotonic() - t0
        time.sleep(5)  # let the booted systems settle
        rss = [rss_mib(e["netns"]) for e in server.app.driver.running.values()]
        errors: dict = {}
        for _, _, errs in times:
            for kind, n in errs.items():
                errors[kind] = errors.get(kind, 0) + n
        return {"times": times, "wall": wall, "rss": rss, "delta": (used_mib() - before) / N, "errors": errors}
    finally:
        server.stop()


def main() -> None:
    why = nspawn.available()
    if why:
        print(f"sandbox hosts: skipped ({why})")
        return
    print(f"sandbox hosts (systemd-nspawn), {N} VMs created at once, boot delay 2 s")
    for source, lag, apt, title in (("image", 8.0, 40.0, "default image (bare Debian, first boot: provisioning lag "
                                                         "8 s, apt lock 40 s)"),
                                    ("host", 0.0, 0.0, "host overlay (this machine's OS, provisioned before boot)")):
        r = series(source, lag, apt)
        times = r["times"]
        print(f" {title}:")
        print(f"  PUT -> Succeeded        median {statistics.median(t[0] for t in times):6.2f} s")
        print(f"  PUT -> SSH login        median {statistics.median(t[1] for t in times):6.2f} s   "
              f"max {max(t[1] for t in times):6.2f} s   (all {N} ready after {r['wall']:.1f} s)")
        print(f"  memory per idle VM      RSS of its processes {statistics.median(r['rss']):6.1f} MiB (median); "
              f"machine used-memory delta {r['delta']:6.1f} MiB per VM")
        refused = {k: v for k, v in r["errors"].items()}
        print(f"  on the way to login     {refused or 'no errors'}")


if __name__ == "__main__":
    main()
