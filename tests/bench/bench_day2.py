"""Day-2 timings on the local cloud with sandbox VMs (root only): `scale` +1 client on a live 2-client cluster
versus `up` of a 1-client cluster (scale builds one VM chain and bootstraps one VM like up, plus a look at the
existing VMs that changes nothing: target ratio <= 1.1), and `resume` of a paused 2-client cluster until every
SuperNode is online."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from flwrazure.localcloud.hosts import nspawn
from tests.bench.bench_start import CACHE, VERSION, fz


def main() -> None:
    if nspawn.available():
        print(f"day-2: skipped ({nspawn.available()})")
        return
    home = Path(tempfile.mkdtemp()) / "home"
    house = home / "local" / "wheelhouse"
    house.mkdir(parents=True)
    prefetch = []
    if (CACHE / "wheels").exists():
        for w in (CACHE / "wheels").iterdir():
            (house / w.name).write_bytes(w.read_bytes())
    else:
        prefetch = ["--prefetch", f"flwr=={VERSION}", "--prefetch", "numpy"]
    fz(home, "local", "up", "--port", "0", "--boot-delay", "2", *prefetch)
    common = ["--cloud", "local", "--flwr-version", VERSION, "--extra-pip", "numpy"]
    try:
        up1 = fz(home, "up", "--cluster", "u1", "--clients", "1", *common)
        fz(home, "teardown", "--cluster", "u1", "--yes", "--purge")
        fz(home, "up", "--cluster", "s2", "--clients", "2", *common)
        info: dict = {}
        scale = fz(home, "scale", "--cluster", "s2", "--clients", "3", "--json", out=info)
        assert info["supernodes_online"] == 3, info
        fz(home, "pause", "--cluster", "s2")
        info = {}
        resume = fz(home, "resume", "--cluster", "s2", "--json", out=info)
        assert info["supernodes_online"] == 3, info
        fz(home, "teardown", "--cluster", "s2", "--yes", "--purge")
    finally:
        fz(home, "local", "down")
    print(f"day-2 on the local cloud (flwr {VERSION}, secure):")
    print(f"  scale 2 -> 3 clients on a live cluster: {scale:6.1f} s   up of a 1-client cluster: {up1:6.1f} s   "
          f"ratio {scale / up1:.2f} (target <= 1.1)")
    print(f"  resume of a paused cluster (3 VMs) to every SuperNode online: {resume:6.1f} s "
          f"(VMs running after {info['vms_seconds']:.1f} s)")
    print(json.dumps({"scale_s": round(scale, 1), "up1_s": round(up1, 1), "resume_s": round(resume, 1)}))


if __name__ == "__main__":
    main()
