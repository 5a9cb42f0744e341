"""plan/silo_member.py: the silo side's pure parts (issue 24)."""

import shlex
import subprocess

import pytest

from flwrazure.errors import UsageError
from flwrazure.plan import silo_member as sm
from flwrazure.plan.bootstrap import INSTALL_LOCK, one_at_a_time
from flwrazure.plan.services import RESTART_MARK, Layout

LAYOUT = Layout("/home/azureuser")


@pytest.mark.parametrize("text, want", [("azureuser@203.0.113.7", ("azureuser", "203.0.113.7")),
                                        ("me@Box.Example.org", ("me", "box.example.org")),
                                        ("_svc@[2001:db8::1]", ("_svc", "2001:db8::1"))])
def test_host(text, want):
    assert sm.parse_host(text) == want


@pytest.mark.parametrize("text", ["203.0.113.7", "@1.2.3.4", "root@", "Me@h", "a b@h", "me@h;reboot", "me@1.2.3.400",
                                  "me@-h", "me@h..x", "$(id)@h", "me@h\n"])
def test_bad_host(text):
    with pytest.raises(UsageError):
        sm.parse_host(text)


@pytest.mark.parametrize("text", ["relative", "/srv/$(reboot)", "/srv/a b", "/srv/../etc", "/a/./b", "/x\n", "/"])
def test_bad_data_path(text):
    with pytest.raises(UsageError):
        sm.data_path(text)


def test_data_path_and_egress():
    assert sm.data_path("/srv/silo-data/") == "/srv/silo-data"
    assert sm.parse_egress("198.51.100.4, 198.51.100.5,198.51.100.4") == ("198.51.100.4", "198.51.100.5")
    with pytest.raises(UsageError, match="not an IP address"):
        sm.parse_egress("198.51.100.4,x")


def test_names_of_what_join_creates():
    v = sm.vm("flower", "hospital-a")
    assert (v.vm, v.role, v.nic, v.public_ip, v.os_disk) == (
        "flower-hospital-a-supernode", "silo", "flower-hospital-a-supernode-nic", "flower-hospital-a-supernode-ip",
        "flower-hospital-a-supernode-osdisk")
    assert sm.resource_group("flower", "hospital-a") == "flower-hospital-a-silo-rg"


def test_node_state_reads_only_the_current_run():
    refused = "Exit Code: 305\nFailed to initialize the connection to the SuperLink.\n"
    assert sm.node_state("inactive", "SuperNode ID: 5") == ("stopped", None)
    assert sm.node_state("failed", refused) == ("stopped", None)
    assert sm.node_state("active", refused) == ("connecting", None)
    assert sm.node_state("activating", refused) == ("connecting", None)  # systemd between two attempts
    assert sm.node_state("active", "Starting\nSuperNode ID: 1234\nINFO: pulled") == ("online", 1234)
    # the restart loop's log: only what came after its latest restart counts
    assert sm.node_state("active", f"SuperNode ID: 7\n{RESTART_MARK} x exited with 0\n{refused}") == \
        ("connecting", None)


def test_keygen_makes_a_private_key_once_and_prints_the_public_line(tmp_path):
    layout = Layout(str(tmp_path))
    line = subprocess.run(["sh", "-c", sm.keygen_command(layout, "flwrazure-silo-x")], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert line.startswith("ecdsa-sha2-nistp384 ") and line.endswith(" flwrazure-silo-x")
    key = tmp_path / "flwrazure" / sm.KEY
    assert oct(key.stat().st_mode & 0o777) == "0o600" and "OPENSSH PRIVATE KEY" in key.read_text()
    again = subprocess.run(["sh", "-c", sm.keygen_command(layout, "other")], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert again == line  # kept: the registered key stays the node's


def test_removal_takes_only_what_join_wrote(tmp_path):
    layout = Layout(str(tmp_path))
    base = tmp_path / "flwrazure"
    base.mkdir()
    for name in (sm.KEY, f"{sm.KEY}.pub", sm.CA, "flower.env", "installed.json", "flower-supernode.sh", "theirs.txt"):
        (base / name).write_text("x")
    (base / "data").mkdir()
    # the lock the venv's pip install runs under (bootstrap.ensure_flwr): the silo e2e found it left behind
    subprocess.run(["bash", "-c", one_at_a_time("true", Layout(str(tmp_path)).path(INSTALL_LOCK), 5)], check=True)
    (tmp_path / "flwr-venv").mkdir()
    (tmp_path / ".flwr").mkdir()
    command = sm.removal_command(layout, "loop", data_copied=True, remove_venv=False)
    subprocess.run(["sh", "-c", command.replace("crontab", "true")], check=True)
    assert sorted(p.name for p in base.iterdir()) == ["theirs.txt"] and (tmp_path / "flwr-venv").exists()
    assert (tmp_path / ".flwr").exists()
    (base / "theirs.txt").unlink()
    subprocess.run(["sh", "-c", sm.removal_command(layout, "loop", False, True, True).replace("crontab", "true")],
                   check=True)
    assert list(tmp_path.iterdir()) == []
    assert shlex.quote(str(tmp_path)) in command
