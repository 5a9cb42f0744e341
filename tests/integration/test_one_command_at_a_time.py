"""Two flwrazure commands on one cluster at once: the real CLI in subprocesses against the API-only local cloud.
A command that changes the cluster is refused while another process runs one (one line: who, which command);
readers are not; a record that cannot be read is one line naming the file, never a traceback."""

import json
import subprocess
import sys

import pytest

from flwrazure.workstation import state
from tests.helpers.cloud import flwrazure

BUSY = 75


def one_line(result, code: int, *needles: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code and "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def test_two_create_clusters_at_once_one_works_the_other_is_refused(product_cloud, home):
    import os

    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    argv = [sys.executable, "-m", "flwrazure", "create-cluster", "--cloud", "local", "--clients", "2"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for _ in range(2)]
    results = [subprocess.CompletedProcess(argv, p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all("Traceback" not in r.stderr for r in results), [r.stderr for r in results]
    codes = sorted(r.returncode for r in results)
    assert codes in ([0, 0], [0, BUSY]), [r.stderr for r in results]
    for r in results:
        if r.returncode == BUSY:
            one_line(r, BUSY, "another flwrazure command is working on cluster flower (pid",
                     "`flwrazure create-cluster`")
    record = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    assert record["status"] == "created" and record["clients"] == 2
    assert flwrazure(home, "status").returncode == 0


def test_changing_commands_are_refused_while_another_holds_the_cluster(product_cloud, home, monkeypatch):
    assert flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1").returncode == 0
    monkeypatch.setenv("FLWRAZURE_HOME", str(home))
    import os
    import time

    refused = [("teardown", "--yes"), ("open-ports", "--source", "203.0.113.7"), ("start",),
               ("create-cluster", "--cloud", "local", "--clients", "1"), ("scale", "--clients", "2"), ("pause",),
               ("resume",), ("doctor", "--renew-cert")]
    with state.exclusive("flower", "scale"):
        since = time.time()
        for args in refused:
            one_line(flwrazure(home, *args), BUSY, f"cluster flower (pid {os.getpid()}, `flwrazure scale`, since")
        assert product_cloud.writes(since) == []
        assert flwrazure(home, "status").returncode == 0  # a reader: never refused
    assert flwrazure(home, "teardown", "--yes").returncode == 0


@pytest.mark.parametrize("command, content", [
    (("status",), '{"cluster": "flower"} trailing'),  # what two writers sharing one temporary file left
    (("teardown", "--yes"), '{"cluster": "flower"} trailing'),
    (("start",), "[]"),
    (("open-ports", "--close"), '{"cluster": "flower", "clients": "2"}'),
])
def test_a_record_that_cannot_be_read_is_one_line_naming_the_file(home, content, command):
    record = home / "clusters" / "flower" / "state.json"
    record.parent.mkdir(parents=True)
    record.write_text(content)
    one_line(flwrazure(home, *command), 2, f"the record of cluster flower ({record}) cannot be used",
             f"rm {record}")
