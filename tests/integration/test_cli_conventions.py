"""What a user expects of a cloud CLI, against the API-only local cloud (the real CLI in a subprocess): the cloud is
never guessed, `list`, az's option conventions, confirmations without a terminal, tables at 80 columns, and small
mistakes answered exactly."""

import json
import time

import pytest

from tests.helpers.cloud import flwrazure
from tests.integration.test_bad_input import assert_one_line_exit_2

NO_ENV_CLOUD = {"FLWRAZURE_CLOUD": ""}  # the default of --cloud must not come from the caller's environment
LONG = "abcdefghij-klmnopqrs"  # 20 characters: the longest cluster name


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def run(home, *args, env=None):
    return flwrazure(home, *args, env={**NO_ENV_CLOUD, **(env or {})})


def nothing_created(cloud, home, since):
    assert cloud.writes(since) == [] and list(cloud.resources.resource_groups.list()) == []
    assert not any((home / "clusters").glob("*/state.json"))


# -- 13: the cloud is never guessed


@pytest.mark.parametrize("command", ["create-cluster", "up"])
def test_without_cloud_a_running_local_cloud_is_not_guessed_either_way(product_cloud, home, command):
    since = time.time()
    refused = run(home, command, "--clients", "1")
    assert_one_line_exit_2(refused, "pass --cloud local to use it or --cloud azure")
    nothing_created(product_cloud, home, since)


def test_flwrazure_cloud_sets_the_default_and_a_bad_value_is_one_line(product_cloud, home):
    since = time.time()
    assert_one_line_exit_2(run(home, "create-cluster", env={"FLWRAZURE_CLOUD": "gcp"}), "FLWRAZURE_CLOUD='gcp'")
    nothing_created(product_cloud, home, since)
    created = json.loads(ok(run(home, "create-cluster", "--clients", "1", "--json",
                                env={"FLWRAZURE_CLOUD": "local"})).stdout)
    assert created["cloud"] == "local" and product_cloud.resources.resource_groups.check_existence("flower-rg")
    # a recorded cluster keeps its cloud: re-running create-cluster needs neither --cloud nor FLWRAZURE_CLOUD
    since = time.time()
    again = json.loads(ok(run(home, "create-cluster", "--clients", "1", "--json")).stdout)
    assert again["cloud"] == "local" and product_cloud.writes(since) == []


def test_commands_of_a_recorded_cluster_never_advise_a_cloud_option(product_cloud, home):
    ok(run(home, "create-cluster", "--cloud", "local", "--clients", "1"))
    product_cloud.server.stop()
    for args in (["status"], ["open-ports", "--close"], ["pause"], ["teardown", "--yes"], ["scale", "--clients", "2"]):
        result = run(home, *args)
        assert_one_line_exit_2(result, "The local cloud is not running: start it with `flwrazure local up`")
        assert "--cloud" not in result.stderr, (args, result.stderr)
    assert "--cloud azure" in run(home, "create-cluster", "--cloud", "local", "--clients", "1").stderr  # an option there


# -- 12: list


def test_list_shows_every_cluster_in_80_columns_and_as_json(product_cloud, home):
    empty = ok(run(home, "list"))
    assert empty.stdout == "" and empty.stderr.startswith("No clusters")  # stdout is data
    assert json.loads(ok(run(home, "list", "--json")).stdout) == []
    ok(run(home, "create-cluster", "--cloud", "local", "--cluster", LONG, "--clients", "3"))
    ok(run(home, "create-cluster", "--cloud", "local", "--cluster", "b", "--clients", "1", "-g", "other-rg"))
    ok(run(home, "pause", "--cluster", "b"))
    product_cloud.admin("POST", "faults", {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines",
                                           "method": "PUT", "times": -1, "code": "AllocationFailed"})
    assert run(home, "create-cluster", "--cloud", "local", "--cluster", "c", "--clients", "1").returncode == 1
    product_cloud.admin("DELETE", "faults")

    table = ok(run(home, "list", env={"COLUMNS": "80"})).stdout.splitlines()
    assert all(len(line) <= 80 for line in table), table
    rows = {line.split()[0]: line.split() for line in table[1:] if line.strip()}
    assert rows[LONG][:5] == [LONG, "local", f"{LONG}-rg", "created", "4"], table
    assert rows["b"][:5] == ["b", "local", "other-rg", "paused", "2"], table
    assert rows["c"][:5] == ["c", "local", "c-rg", "creating", "2"], table

    listed = json.loads(ok(run(home, "list", "-o", "json")).stdout)
    keys = {"cluster", "cloud", "resource_group", "location", "state", "live", "vm_count", "clients", "private_clients",
            "usd_per_hour", "usd_per_hour_running", "usd_per_hour_paused", "price_source", "error"}
    assert [r["cluster"] for r in listed] == [LONG, "b", "c"]  # by name
    assert all(set(r) == keys for r in listed)
    by = {r["cluster"]: r for r in listed}
    # the cost from the price list create-cluster cached: running, or what a paused cluster still costs
    assert by[LONG]["usd_per_hour"] == by[LONG]["usd_per_hour_running"] > 0
    assert 0 < by["b"]["usd_per_hour"] == by["b"]["usd_per_hour_paused"] < by["b"]["usd_per_hour_running"]
    assert not any(r["live"] for r in listed)

    # --refresh: as the cloud says, all clusters asked at once
    product_cloud.compute.virtual_machines.begin_deallocate(f"{LONG}-rg", f"{LONG}-client-1").result()
    product_cloud.resources.resource_groups.begin_delete("c-rg").result()
    live = {r["cluster"]: r for r in json.loads(ok(run(home, "list", "--refresh", "--json")).stdout)}
    assert {n: (r["state"], r["live"]) for n, r in live.items()} == {
        LONG: ("partly paused", True), "b": ("paused", True), "c": ("missing", True)}
    assert live["c"]["usd_per_hour"] == 0.0


# -- 14: az's conventions


def test_short_options_and_output_json_as_az_has_them(product_cloud, home):
    created = json.loads(ok(run(home, "create-cluster", "--cloud", "local", "--clients", "1", "-g", "my-rg",
                                "-l", "westeurope", "-o", "json")).stdout)
    assert (created["resource_group"], created["location"]) == ("my-rg", "westeurope")
    assert json.loads(ok(run(home, "status", "-o", "JSON")).stdout)["resource_group"] == "my-rg"
    assert "Inbound rules" in ok(run(home, "status", "-o", "table")).stdout
    assert_one_line_exit_2(run(home, "status", "-o", "yaml"), "'yaml' is not one of 'json', 'table'")
    ok(run(home, "status", "-v"))  # -v after the subcommand, as before it
    ok(run(home, "-v", "status"))
    ok(run(home, "teardown", "-y"))
    assert not product_cloud.resources.resource_groups.check_existence("my-rg")


def test_a_mistyped_command_gets_did_you_mean_and_bare_flwrazure_is_help(home):
    assert_one_line_exit_2(run(home, "stauts"), "Did you mean 'status'")
    assert_one_line_exit_2(run(home, "tear-down"), "Did you mean 'teardown'")
    bare = run(home)
    assert bare.returncode == 0 and bare.stderr == "" and "Commands:" in bare.stdout


def test_scale_asks_before_deleting_vms_and_refuses_without_a_terminal(product_cloud, home):
    ok(run(home, "create-cluster", "--cloud", "local", "--clients", "2"))
    since = time.time()
    refused = run(home, "scale", "--clients", "1")
    assert_one_line_exit_2(refused, "flower-client-2")
    assert "pass --yes" in refused.stderr and product_cloud.writes(since) == []
    refused = run(home, "teardown")  # shows what it would delete, then refuses in one line
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and last.startswith("Error: ") and "pass --yes" in last, refused.stderr
    assert "Traceback" not in refused.stderr and product_cloud.writes(since) == []
    shrunk = json.loads(ok(run(home, "scale", "--clients", "1", "-y", "--json")).stdout)
    assert shrunk["left"] == ["flower-client-2"]


# -- 17: tables at 80 columns


def test_status_at_80_columns_never_cuts_vm_names(product_cloud, home):
    ok(run(home, "create-cluster", "--cloud", "local", "--cluster", LONG, "--clients", "3"))
    for args in (["status", "--cluster", LONG], ["create-cluster", "--cloud", "local", "--cluster", LONG,
                                                 "--clients", "3"]):
        out = ok(run(home, *args, env={"COLUMNS": "80"})).stdout
        lines = out.splitlines()
        assert all(len(line) <= 80 for line in lines), out
        first = lines[:next(i for i, line in enumerate(lines) if line.startswith("└"))]  # the VM table
        vm_cells = [line.split("│")[1].strip() for line in first if line.startswith("│")]
        names = [c for c in vm_cells if c]
        # whole names (here without the cluster's prefix, said in the title), each on one line, all distinct
        assert names == ["server", "client-1", "client-2", "client-3"], out
        assert f"{LONG}-…" in out
    wide = ok(run(home, "status", "--cluster", LONG)).stdout  # wide enough: the full names
    assert f"{LONG}-client-3" in wide


# -- 18: small mistakes, exact answers


def test_a_public_key_given_as_ssh_key_names_the_private_one(product_cloud, home, tmp_path):
    import subprocess

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    since = time.time()
    result = run(home, "create-cluster", "--cloud", "local", "--ssh-key", f"{key}.pub")
    assert_one_line_exit_2(result, f"is a public key: pass the file without .pub: --ssh-key {key}.")
    nothing_created(product_cloud, home, since)


def test_vm_sizes_ignore_case_and_are_recorded_as_the_catalog_spells_them(product_cloud, home):
    created = json.loads(ok(run(home, "create-cluster", "--cloud", "local", "--clients", "1", "--vm-size",
                                "standard_d2s_v3", "--client-vm-size", "STANDARD_D4S_V3", "--json")).stdout)
    assert [v["size"] for v in created["vms"]] == ["Standard_D2s_v3", "Standard_D4s_v3"]
    for vm, size in (("flower-server", "Standard_D2s_v3"), ("flower-client-1", "Standard_D4s_v3")):
        assert product_cloud.compute.virtual_machines.get("flower-rg", vm).hardware_profile.vm_size == size
    record = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    assert (record["server_size"], record["client_size"]) == ("Standard_D2s_v3", "Standard_D4s_v3")
    assert created["cost"]["usd_per_hour"] is not None  # priced under the catalog's spelling


def test_open_ports_source_me_next_line_and_closing_twice(product_cloud, home):
    created = ok(run(home, "create-cluster", "--cloud", "local", "--clients", "1"))
    me = "198.18.0.1"  # what the local cloud's address-echo service answers
    assert f"Next: flwrazure open-ports --cluster flower --source {me}" in created.stderr
    opened = json.loads(ok(run(home, "open-ports", "--source", "me", "--json")).stdout)
    assert {r["name"]: r["sources"] for r in opened["rules"]}["flwrazure-control"] == [me]
    assert "removed" in ok(run(home, "open-ports", "--close")).stdout  # what changed: the result, stdout
    again = ok(run(home, "open-ports", "--close"))
    assert "already closed" in again.stdout and "already in place" not in again.stdout


def _at_a_terminal(home, *args, columns=80):
    """The CLI with its stdout on a pseudo-terminal `columns` wide (no COLUMNS: the width the terminal says)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update({"FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05", "FLWRAZURE_CLOUD": "", "TERM": "dumb"})
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", *args], stdout=slave, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the CLI closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return out.decode().replace("\r\n", "\n")


def test_status_at_an_80_column_terminal_shows_whole_vm_names(product_cloud, home):
    """At a real 80-column terminal rich cut every name to the same `abcdefghij-klmnop…`."""
    ok(run(home, "create-cluster", "--cloud", "local", "--cluster", LONG, "--clients", "3"))
    out = _at_a_terminal(home, "status", "--cluster", LONG)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    first = lines[:next(i for i, line in enumerate(lines) if line.startswith("└"))]
    assert [c for c in (line.split("│")[1].strip() for line in first if line.startswith("│")) if c] == \
        ["server", "client-1", "client-2", "client-3"], out
