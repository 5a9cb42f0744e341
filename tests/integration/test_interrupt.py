"""Ctrl-C during create-cluster (API-only local cloud): exit 130 within a bound, one line naming what exists in
which group, that it is billed, the command that finishes it and the one that removes it, no traceback; `status`
and `list` show the cluster as interrupted with that command; re-running it converges and clears the mark."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.cloud import _sigint_as_at_a_terminal, flwrazure

CREATE = ["create-cluster", "--cloud", "local", "--clients", "3"]
TYPED = "flwrazure create-cluster --cloud local --clients 3"


def _ctrl_c(home, cloud, args, when) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI as at a terminal, Ctrl-C it once `when()` holds; its result and how long it took to end."""
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            preexec_fn=_sigint_as_at_a_terminal)
    try:
        began = time.monotonic()
        while not when():
            assert proc.poll() is None, f"{args} ended before it was interrupted: {proc.communicate()}"
            assert time.monotonic() - began < 60
            time.sleep(0.02)
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(args, proc.returncode, out, err), time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _vm_puts(cloud, since) -> set[str]:
    return {w["path"].rsplit("/", 1)[-1] for w in cloud.writes(since)
            if w["method"] == "PUT" and "/virtualMachines/" in w["path"]}


def test_ctrl_c_mid_create_says_what_is_billed_and_status_shows_it(product_cloud, home):
    cloud = product_cloud
    cloud.admin("PATCH", "config", {"latency": 0.4})
    since = time.time()
    # the 12th write is a VM PUT (group, VNet, NSG, 4 IPs, 4 NICs come first): VMs exist, others may be in flight
    result, took = _ctrl_c(home, cloud, CREATE, lambda: len(cloud.writes(since)) >= 12)
    assert result.returncode == 130 and took < 3, (result.returncode, took, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len([x for x in lines if "Interrupted" in x]) == 1 and lines[-1].startswith("Interrupted: "), lines
    said = re.fullmatch(r"Interrupted: (\d) VMs? exists? in flower-rg and (?:are|is) billed; re-run `(.*)` to "
                        r"finish, or `flwrazure teardown --cluster flower` to remove it all\.", lines[-1])
    assert said and said.group(2) == TYPED, lines[-1]
    time.sleep(1)  # a PUT on its way when Ctrl-C came has arrived by now
    assert 1 <= len(_vm_puts(cloud, since)) <= int(said.group(1)) <= 4  # every VM that may exist is counted

    status = json.loads(flwrazure(home, "status", "--json").stdout)
    assert status["interrupted"] is True and status["next"] == [TYPED]
    shown = flwrazure(home, "status")
    assert shown.returncode == 0 and "Interrupted: creating the cluster's VMs did not finish." in \
        " ".join(shown.stdout.split())
    assert f"Next: {TYPED}" in " ".join(shown.stderr.split())  # the command that finishes it, where hints go
    assert json.loads(flwrazure(home, "list", "--json").stdout)[0]["state"] == "interrupted"

    cloud.admin("PATCH", "config", {"latency": 0.0})
    again = flwrazure(home, *CREATE, "--json")
    assert again.returncode == 0, again.stderr
    assert [v["state"] for v in json.loads(again.stdout)["vms"]] == ["running"] * 4
    status = json.loads(flwrazure(home, "status", "--json").stdout)
    assert status["interrupted"] is False and TYPED not in status["next"]
    record = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    assert record["status"] == "created" and "interrupted" not in record


@pytest.mark.parametrize("stage", ["preflight", "network"])
def test_ctrl_c_before_any_vm(product_cloud, home, stage):
    """Before anything was written: nothing created, nothing recorded. After the group and network: said so (no
    VM is billed yet), and status says how to finish."""
    cloud = product_cloud
    cloud.admin("PATCH", "config", {"latency": 0.4})
    since = time.time()
    if stage == "preflight":  # the VM size list is throttled: preflight waits 5 s for its retry
        cloud.admin("POST", "faults", {"kind": "http", "status": 429, "retry_after": 5, "method": "GET",
                                       "path": "/skus", "times": 1})
        when = lambda: any("/skus" in r["path"] for r in  # noqa: E731
                           cloud.admin("GET", f"requests?since={since}").json()["value"])
    else:
        when = lambda: len(cloud.writes(since)) >= 2  # noqa: E731
    result, took = _ctrl_c(home, cloud, CREATE, when)
    assert result.returncode == 130 and took < 3 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    if stage == "preflight":
        assert line == f"Interrupted: nothing was created; re-run `{TYPED}` to do it.", line
        time.sleep(1)
        assert cloud.writes(since) == [] and not (home / "clusters" / "flower").exists()
        assert flwrazure(home, "status").returncode == 2  # no such cluster
    else:
        assert re.fullmatch(r"Interrupted: (resource group flower-rg exists, with nothing billed in it yet|\d "
                            r"public IPs? \(no VM yet\) exists? in flower-rg and are billed); re-run `"
                            + re.escape(TYPED) + r"` to finish, or `flwrazure teardown --cluster flower` to "
                            r"remove it all\.", line), line
        time.sleep(1)
        assert _vm_puts(cloud, since) == set()
        assert json.loads(flwrazure(home, "status", "--json").stdout)["next"][0] == TYPED


def test_ctrl_c_at_teardowns_question_deletes_nothing(product_cloud, home):
    import pty

    cloud = product_cloud
    assert flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1").returncode == 0
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    terminal, tty = pty.openpty()  # at a terminal, teardown asks
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", "teardown"], env=env, stdin=tty,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_sigint_as_at_a_terminal)
    os.close(tty)
    try:
        seen, deadline = b"", time.monotonic() + 60
        while b"Delete the resources of cluster flower?" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen += os.read(proc.stderr.fileno(), 4096)
        since = time.time()
        time.sleep(0.5)  # as a person reads the question: SIGINT lands in its read, not just before it begins
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=30)[1].decode()
    finally:
        os.close(terminal)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "Interrupted: nothing was deleted.", err
    assert cloud.writes(since) == [] and (home / "clusters" / "flower" / "state.json").exists()
