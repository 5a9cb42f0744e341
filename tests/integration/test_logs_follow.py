"""`logs --follow` against a sandbox VM (needs root and systemd-nspawn; skipped elsewhere): Ctrl-C ends it at once,
also while the VM it polls has stopped answering. It used to wait for the poll in flight: a command on the dead
connection is bounded at 15 s, a connection attempt at up to a minute. In CI a follower that did not stop lived on
after its test and kept polling an address the next tests' VMs were given."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.helpers.cloud import Follower, clients_for, flwrazure, publish, until
from tests.helpers.hosts import run, wait_ssh

nspawn = pytest.importorskip("flwrazure.localcloud.hosts.nspawn")
pytestmark = [pytest.mark.vms,
              pytest.mark.skipif(nspawn.available() is not None, reason=f"no sandbox hosts: {nspawn.available()}")]
LOG = "/home/azureuser/flwrazure/flower-supernode.log"  # the restart loop's log, which `logs` reads on such hosts


def test_ctrl_c_ends_follow_at_once_while_the_vm_is_gone(tmp_path):
    from flwrazure.localcloud.server import LocalCloudServer

    home = tmp_path / "home"
    server = LocalCloudServer(home / "local", hosts="nspawn", boot_delay=1).start()
    follow = None
    try:
        cloud = clients_for(server)
        publish(cloud, home)
        made = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--json", timeout=300)
        assert made.returncode == 0, made.stderr
        ip = next(v["public_ip"] for v in json.loads(made.stdout)["vms"] if v["vm"] == "flower-client-1")
        key = str(home / "clusters" / "flower" / "id_ed25519")
        wait_ssh(ip, timeout=120, key=key)
        # as `start` would have: the first boot's user data (which makes ~/flwrazure as root, then hands it over)
        # has finished before anything of Flower's is written there
        run(ip, f"cloud-init status --wait >/dev/null 2>&1; mkdir -p {LOG.rsplit('/', 1)[0]} && echo first >> {LOG}",
            key=key, timeout=300)
        record = home / "clusters" / "flower" / "state.json"  # as `start` leaves it on hosts without systemd
        st = json.loads(record.read_text())
        record.write_text(json.dumps({**st, "started": True, "supervisors": {
            "flower-server": "loop", "flower-client-1": "loop"}}))

        env = {**os.environ, "FLWRAZURE_HOME": str(home)}
        follow = Follower(env, "client-1")
        said = follow.said
        assert until(lambda: any("following 1 VM(s)" in x for x in said["err"]), 60), said
        run(ip, f"echo second-line >> {LOG}", key=key)
        assert until(lambda: any("second-line" in x for x in said["out"]), 30), said

        # the VM stops answering under the follower (its SSH sessions frozen, the connection still up): the next
        # poll waits on a command nobody answers
        run(ip, "nohup sh -c 'sleep 1; sudo -n pkill -STOP -f \"sshd: azureuser\"' >/dev/null 2>&1 &", key=key)
        time.sleep(4)
        took = follow.stop()
        assert follow.proc.returncode == 0 and took < 3, (follow.proc.returncode, round(took, 1), said)
    finally:
        if follow is not None:
            follow.stop()
        server.stop()
