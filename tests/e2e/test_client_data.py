"""start --client-data on sandbox VMs (flwr 1.42.0, --insecure): DIR/<i> lands on client VM i as ~/flwrazure/data
(0700, files 0600, the admin user's), the SuperNode's node config carries data-path, a re-run copies nothing, a
changed file is copied and a removed one removed there; status shows path and size. Needs root and nspawn."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.e2e.test_flower_e2e import bring_up, flwrazure, ok, tear_down

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")
DATA = "/home/azureuser/flwrazure/data"


def ssh(home: Path, vm: str, command: str) -> str:
    return ok(flwrazure(home, "ssh", vm, "--", command, timeout=60)).stdout


@pytest.mark.timeout(900)
def test_client_data_copied_once_private_and_in_the_node_config(home, tmp_path):
    data = tmp_path / "client-data"
    files = {"1/train.npz": b"\x93NUMPY" + bytes(range(256)) * 40, "1/old/notes.txt": b"gone soon\n",
             "2/train.npz": b"two", "2/part 2/b=1.csv": b"x,y\n1,2\n"}
    for rel, body in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(body)
    began = time.monotonic()
    try:
        _, first = bring_up(home, "1.42.0", "--insecure", "--client-data", str(data))
        up_s = time.monotonic() - began
        assert {vm: sorted(d["copied"]) for vm, d in first["client_data"].items()} == {
            "flower-client-1": ["old/notes.txt", "train.npz"], "flower-client-2": ["part 2/b=1.csv", "train.npz"]}
        # private: the directory 0700, every file 0600, all the admin user's
        modes = ssh(home, "client-2", f"cd {DATA} && stat -c '%a %U %n' . 'part 2' 'part 2/b=1.csv' train.npz")
        assert modes.split("\n")[:4] == ["700 azureuser .", "700 azureuser part 2", "600 azureuser part 2/b=1.csv",
                                          "600 azureuser train.npz"], modes
        got = ssh(home, "client-1", f"sha256sum {DATA}/train.npz").split()[0]
        assert got == hashlib.sha256(files["1/train.npz"]).hexdigest()
        # the SuperNode runs with data-path in its node config
        args = ssh(home, "client-1", "cat /proc/$(systemctl show -p MainPID --value flower-supernode)/cmdline "
                                     "| tr '\\0' '\\n'")
        assert f'partition-id=0 num-partitions=2 data-path="{DATA}"' in args.splitlines(), args
        status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
        shown = {v["vm"]: (v.get("data_path"), v.get("data_bytes")) for v in status["vms"]}
        assert shown["flower-client-1"] == (DATA, len(files["1/train.npz"]) + len(files["1/old/notes.txt"]))
        assert shown["flower-client-2"] == (DATA, 3 + 8) and shown["flower-server"] == (None, None)

        # a re-run copies nothing and restarts nothing
        again = json.loads(ok(flwrazure(home, "start", "--extra-pip", "numpy", "--insecure", "--client-data",
                                        str(data), "--json", timeout=300)).stdout)
        assert all(d["copied"] == [] and d["deleted"] == [] for d in again["client_data"].values()), again
        assert not any(again["services_changed"].values())

        # a changed file is copied, a removed one removed there; the recorded option is used again (resume's path)
        (data / "1" / "train.npz").write_bytes(b"changed")
        (data / "1" / "old" / "notes.txt").unlink()
        (data / "1" / "old").rmdir()
        third = json.loads(ok(flwrazure(home, "start", "--extra-pip", "numpy", "--insecure", "--client-data",
                                        str(data), "--json", timeout=300)).stdout)
        assert third["client_data"]["flower-client-1"]["copied"] == ["train.npz"]
        assert third["client_data"]["flower-client-1"]["deleted"] == ["old/notes.txt"]
        assert third["client_data"]["flower-client-2"]["copied"] == []
        listing = ssh(home, "client-1", f"cd {DATA} && find . | sort && cat train.npz && stat -c %a train.npz")
        assert listing.split() == [".", "./train.npz", "changed", "600"], listing
        print(f"\nbring-up with client data {up_s:.1f} s, re-run {time.monotonic() - began - up_s:.1f} s")
    finally:
        tear_down(home)
