"""Issue 23, items 15 and 16: every command's --json output agrees with docs/json.md (its tables are the schema),
errors with --json are an error object on stdout, data goes to stdout and progress to stderr, also in a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import contract
from tests.helpers.cloud import flwrazure


def data(home, command: str, *args: str, code: int = 0) -> dict | list:
    """Run `flwrazure <args> --json`; its stdout must be one JSON document that agrees with the contract."""
    result = flwrazure(home, *args, "--json")
    assert result.returncode == code, (args, result.stdout, result.stderr)
    value = json.loads(result.stdout)
    assert contract.check(command, value) == [], (args, contract.check(command, value))
    return value


def test_every_command_json_matches_the_documented_contract(product_cloud, home):
    sub = product_cloud.sub
    created = data(home, "create-cluster", "create-cluster", "--cloud", "local", "--clients", "2")
    assert created["next"] == ["flwrazure open-ports --cluster flower --source 198.18.0.1"]
    assert "writes" not in created and "status_reads" not in created  # no internal counters
    opened = data(home, "open-ports", "open-ports", "--source", "203.0.113.7")
    assert opened["next"] == ["flwrazure start --cluster flower"]
    status = data(home, "status", "status")
    # one key, one type: a rule's port is an integer in status as in open-ports
    assert {r["name"]: r["port"] for r in status["rules"]} == {"flwrazure-ssh": 22, "flwrazure-fleet": 8000,
                                                                "flwrazure-control": 8000}
    assert status["port_plan"] == created["port_plan"]
    assert data(home, "list", "list")[0]["vm_count"] == 3
    data(home, "list", "list", "--refresh")
    grown = data(home, "scale", "scale", "--clients", "3")
    assert "writes" not in grown
    data(home, "scale", "scale", "--clients", "2", "--yes")
    paused = data(home, "pause", "pause")
    assert paused["next"] == ["flwrazure resume --cluster flower"]
    assert data(home, "status", "status")["next"] == ["flwrazure resume --cluster flower"]
    data(home, "resume", "resume")
    doctor = data(home, "doctor", "doctor", "--local-only", code=1)  # a failed check: its report, exit 1
    assert "flwrazure open-ports --cluster flower --source 198.18.0.1" in doctor["next"]
    data(home, "open-ports", "open-ports", "--close")
    gone = data(home, "teardown", "teardown", "--yes")
    group = f"/subscriptions/{sub}/resourceGroups/flower-rg"
    assert gone["deleted"][0] == group and f"{group}/providers/Microsoft.Compute/virtualMachines/flower-server" \
        in gone["deleted"]
    assert data(home, "teardown", "teardown", "--yes")["mode"] == "none"


def test_an_error_with_json_is_an_error_object_on_stdout(product_cloud, home):
    def error(*args: str, code: int) -> dict:
        result = flwrazure(home, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines()[-1].startswith("Error: ")  # the line for people, as before
        obj = json.loads(result.stdout)
        assert list(obj) == ["error"] and set(obj["error"]) == {"code", "message", "next"}, obj
        return obj["error"]

    unknown = error("status", "--json", code=2)
    assert unknown["code"] == "usage" and "no cluster named 'flower'" in unknown["message"]
    assert unknown["next"] == ["flwrazure create-cluster"]
    bad = error("create-cluster", "--cloud", "local", "--clients", "0", "-o", "json", code=2)
    assert bad == {"code": "usage", "message": "--clients 0: a cluster needs 1 to 100 client VMs.", "next": []}
    assert error("status", "--bogus", "--json", code=2)["code"] == "usage"  # click's own usage errors too
    product_cloud.admin("POST", "faults", {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines",
                                           "method": "PUT", "times": -1, "code": "OSProvisioningTimedOut"})
    refused = error("create-cluster", "--cloud", "local", "--clients", "1", "--json", code=1)
    assert refused["code"] == "azure.OSProvisioningTimedOut"
    # Azure's advice is to re-run: the same command line is the next step
    assert refused["next"] == ["flwrazure create-cluster --cloud local --clients 1 --json"]
    # (this test's cloud runs in the test's process, which `local status` does not count as a local cloud)
    assert error("local", "status", "--json", code=1)["code"] == "local.not_running"
    # without --json: no JSON on stdout
    plain = flwrazure(home, "status", "--cluster", "nope")
    assert plain.returncode == 2 and plain.stdout == ""


def test_in_a_pipe_stdout_is_data_and_long_work_says_each_milestone_on_stderr(product_cloud, home):
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    load = f"{sys.executable} -c 'import json, sys; d = json.load(sys.stdin); print(len(d[\"vms\"]))'"
    me = f"{sys.executable} -m flwrazure"
    piped = subprocess.run(f"{me} create-cluster --cloud local --clients 2 --json | {load}", shell=True, env=env,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert piped.returncode == 0 and piped.stdout == "3\n", piped.stderr
    # no terminal: no progress bar, one plain line per kind of resource as it completes
    milestones = [line for line in piped.stderr.splitlines() if line.startswith("✓ ")]
    assert [line.split(" 3/3")[0] for line in milestones if " 3/3" in line] == \
        ["✓ public IPs", "✓ network interfaces", "✓ virtual machines"], piped.stderr
    piped = subprocess.run(f"{me} status --json | {load}", shell=True, env=env, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert piped.returncode == 0 and piped.stdout == "3\n", piped.stderr
    # the human report is data too: stdout; the hint what to do next goes to stderr
    human = flwrazure(home, "status")
    assert "Flower 1.42.0" in human.stdout and "Estimated cost" in human.stdout and "Next:" not in human.stdout
    assert human.stderr.strip() == "Next: flwrazure start --cluster flower"
    paused = flwrazure(home, "pause")
    assert paused.stderr.startswith("Deallocating 3 VM(s) of cluster flower…")  # said before the wait
    assert "paused in" in paused.stdout
    doctor = flwrazure(home, "doctor", "--local-only")
    assert "FAIL  vms running" in doctor.stdout and "passed," in doctor.stdout
    gone = flwrazure(home, "teardown", "--yes")
    assert gone.stdout.startswith("Deleted: resource group flower-rg and the ")
    assert "Will be deleted" in gone.stderr and "Deleting resource group flower-rg" in gone.stderr
