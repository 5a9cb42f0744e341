"""The cluster's local record: commands running side by side in one process (`up` and `scale` run open-ports beside
start) each set only their own keys, so neither undoes the other's; processes writing at once lose nothing and
leave valid JSON; a record that cannot be used is one clear error; commands that change a cluster run one at a
time across processes, nested holds inside one process do not block."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flwrazure.errors import UsageError
from flwrazure.workstation import state

REPO = Path(__file__).resolve().parents[2]
RECORD = {"cluster": "c", "cloud": "local", "subscription": "sub", "resource_group": "c-rg", "location": "eastus",
          "clients": 2, "flwr_version": "1.42.0", "admin_user": "azureuser", "ssh_private_key": "/k"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWRAZURE_HOME", str(tmp_path))
    return tmp_path


def python(code: str, home: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def test_update_keeps_what_another_command_wrote_meanwhile(home):
    state.save("c", {**RECORD, "control_sources": None})
    loaded_by_start = state.load("c")  # start reads the record first, then works for minutes
    state.update("c", {"control_sources": ["203.0.113.9"]})  # open-ports, beside it
    state.update("c", {"started": True, "registered_supernodes": {"c-client-1": "k"}})
    assert loaded_by_start["control_sources"] is None
    assert state.load("c") == {**RECORD, "control_sources": ["203.0.113.9"], "started": True,
                               "registered_supernodes": {"c-client-1": "k"}}


def test_concurrent_updates_lose_no_key(home):
    state.save("c", RECORD)
    threads = [threading.Thread(target=lambda i=i: [state.update("c", {f"k{i}-{j}": j}) for j in range(20)])
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(state.load("c")) == len(RECORD) + 8 * 20


def test_processes_updating_at_once_lose_no_key_and_leave_valid_json(home):
    """Three processes, each with two threads, updating the same record: every key arrives, the file is valid
    JSON, no temporary file is left, the record is 0600."""
    state.save("c", RECORD)
    code = ("import sys, threading\nfrom flwrazure.workstation import state\n"
            "def work(t):\n    for j in range(25):\n        state.update('c', {f'{sys.argv[1]}-{t}-{j}': j})\n"
            "ts = [threading.Thread(target=work, args=(t,)) for t in range(2)]\n"
            "[t.start() for t in ts]\n[t.join() for t in ts]\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{i}"], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "FLWRAZURE_HOME": str(home), "PYTHONPATH": str(REPO)})
             for i in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 3, errors
    data = json.loads(state.path("c").read_text())
    assert {f"p{i}-{t}-{j}" for i in range(3) for t in range(2) for j in range(25)} <= set(data)
    assert sorted(p.name for p in state.cluster_dir("c").iterdir()) == ["state.json", "state.lock"]
    assert state.path("c").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content, why", [
    (json.dumps(RECORD) + "}garbage", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "JSON list, not an object"),
    (json.dumps({**RECORD, "clients": "two"}), 'clients is "two", not a number'),
    (json.dumps({**RECORD, "clients": True}), "clients is true, not a number"),
    (json.dumps({k: v for k, v in RECORD.items() if k != "cloud"}), "lacks cloud"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_a_record_that_cannot_be_used_is_one_line_naming_the_file(home, content, why):
    state.cluster_dir("c").mkdir(parents=True)
    (state.path("c").write_bytes if isinstance(content, bytes) else state.path("c").write_text)(content)
    with pytest.raises(UsageError) as err:
        state.load("c")
    message = str(err.value)
    assert why in message and str(state.path("c")) in message and "\n" not in message, message
    assert "Restore it" in message and f"rm {state.path('c')}" in message


def test_a_second_process_is_refused_while_a_command_holds_the_cluster(home):
    state.save("c", RECORD)
    probe = ("from flwrazure.workstation import state\ntry:\n    with state.exclusive('c', 'status'):\n"
             "        print('got it')\nexcept state.ClusterBusy as e:\n    print(e)\n")
    with state.exclusive("c", "scale"):
        said = python(probe, home).communicate(timeout=30)[0]
        assert f"another flwrazure command is working on cluster c (pid {os.getpid()}, `flwrazure scale`" in said
    assert python(probe, home).communicate(timeout=30)[0] == "got it\n"


def test_nested_holds_in_one_process_share_the_lock_from_any_thread(home):
    """`up` holds the cluster and runs create-cluster, open-ports (in a thread) and start inside: none of them
    waits for the hold of its own process, and the cluster stays held until the outermost hold ends."""
    state.save("c", RECORD)
    probe = "from flwrazure.workstation import state\nwith state.exclusive('c', 'x'):\n    pass\n"
    entered = []
    with state.exclusive("c", "up"):
        with state.exclusive("c", "create-cluster"):
            entered.append("nested")
        t = threading.Thread(target=lambda: entered.append(_hold_briefly("c", "open-ports")))
        t.start()
        t.join(timeout=10)
        assert entered == ["nested", "held"]
        refused = python(probe, home)
        assert refused.wait(timeout=30) == 1 and "pid" in refused.stderr.read()
    ok = python(probe, home)
    assert ok.wait(timeout=30) == 0, ok.stderr.read()


def _hold_briefly(cluster: str, command: str) -> str:
    with state.exclusive(cluster, command):
        return "held"


def test_the_hold_ends_when_its_process_is_killed(home):
    state.save("c", RECORD)
    holder = python("import time\nfrom flwrazure.workstation import state\nwith state.exclusive('c', 'start'):\n"
                    "    print('held', flush=True)\n    time.sleep(60)\n", home)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(state.ClusterBusy, match=rf"pid {holder.pid}, `flwrazure start`"):
        with state.exclusive("c", "teardown"):
            pass
    holder.kill()
    holder.wait()
    with state.exclusive("c", "teardown"):
        pass


def test_a_refused_create_leaves_no_directory_behind(home):
    """create-cluster takes the cluster's directory to hold it; when it ends without a record (refused by the
    cloud's checks), the directory goes again."""
    with state.exclusive("new", "create-cluster", create=True):
        assert state.cluster_dir("new").is_dir()
    assert not state.cluster_dir("new").exists()
    with state.exclusive("kept", "create-cluster", create=True):
        state.save("kept", {**RECORD, "cluster": "kept"})
    assert state.exists("kept")


def test_a_command_on_a_cluster_that_does_not_exist_creates_nothing(home):
    with state.exclusive("ghost", "start"):
        pass
    assert not (home / "clusters").exists()
