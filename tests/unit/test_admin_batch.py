"""plan.admin's batch script: many flwr CLI calls in one Python process on the server VM (registration of every
SuperNode key, the wait for them to come online), run here by a real Python against a stand-in `flwr` console
script (an installed distribution's entry point, as the venv's flwr is) that answers as the CLI does: its JSON on
sys.__stdout__, past its own redirection of sys.stdout. The real releases run it in
tests/integration/test_flower_versions.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flwrazure.plan import admin
from flwrazure.remote.flwradmin import _json, count_online, parse_registrations

FAKE = r'''import json, os, sys
from pathlib import Path
STATE = Path(os.environ["FAKE_STATE"])


def app(args, prog_name=None, standalone_mode=True):
    sys.stdout = open(os.devnull, "w")  # as flwr's --format json: its own chatter goes nowhere
    if os.environ.get("FAKE_RAW"):  # a CLI that writes past Python's stdout objects
        os.write(1, b'{"nodes": []}\n')
        return
    if args[:2] == ["supernode", "register"]:
        key = Path(args[2]).read_text().strip()
        if key == "bad":
            print(json.dumps({"success": False, "error-message": "invalid key"}), file=sys.__stdout__)
            raise SystemExit(1)
        print(json.dumps({"success": True, "node-id": 100 + sum(map(ord, key))}), file=sys.__stdout__)
    elif args[:2] == ["supernode", "list"]:
        polls = int(STATE.read_text()) + 1 if STATE.exists() else 1
        STATE.write_text(str(polls))
        nodes = [{"node-id": i, "status": "online" if i < polls else "registered"} for i in range(3)]
        print(json.dumps({"success": True, "nodes": nodes}, indent=2), file=sys.__stdout__)
'''


@pytest.fixture
def flwr(tmp_path):
    """A folder on sys.path with a distribution whose console script `flwr` is the stand-in."""
    site = tmp_path / "site"
    (site / "fakeflwr-1.0.dist-info").mkdir(parents=True)
    (site / "fakeflwr.py").write_text(FAKE)
    (site / "fakeflwr-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeflwr\nVersion: 1.0\n")
    (site / "fakeflwr-1.0.dist-info" / "entry_points.txt").write_text("[console_scripts]\nflwr = fakeflwr:app\n")
    script = tmp_path / "admin" / admin.BATCH
    script.parent.mkdir()
    script.write_text(admin.BATCH_SCRIPT)
    return site, script


def _sh(flwr, command: str, **env) -> subprocess.CompletedProcess:
    site, _ = flwr
    full = {"PYTHONPATH": str(site), "FAKE_STATE": str(site / "polls"), **env}
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60, env=full)


def test_registers_every_key_in_one_process_with_one_section_each(flwr, tmp_path):
    _, script = flwr
    for vm, key in (("az-client-1", "k1"), ("az-client-2", "k2")):
        (tmp_path / f"{vm}.pub").write_text(key)
    out = _sh(flwr, admin.batch_each(sys.executable, str(script), ["az-client-1", "az-client-2"],
                                     ["supernode", "register", f"{tmp_path}/@.pub", "admin", "--format", "json"]))
    got = parse_registrations(out.stdout)
    assert set(got) == {"az-client-1", "az-client-2"} and all(v.isdigit() for v in got.values()), out


def test_a_refused_key_is_its_own_section_and_the_others_still_register(flwr, tmp_path):
    _, script = flwr
    (tmp_path / "a.pub").write_text("bad")
    (tmp_path / "b.pub").write_text("k2")
    out = _sh(flwr, admin.batch_each(sys.executable, str(script), ["a", "b"],
                                     ["supernode", "register", f"{tmp_path}/@.pub", "--format", "json"])).stdout
    sections = dict(chunk.split("\n", 1) for chunk in out.split("@@")[1:])
    assert "invalid key" in sections["a"] and '"node-id"' in sections["b"]


def test_online_polls_in_one_process_until_enough_are_online(flwr):
    _, script = flwr
    out = _sh(flwr, admin.batch_online(sys.executable, str(script), 2, 30, ["supernode", "list", "--format", "json"]))
    assert out.returncode == 0 and count_online(_json(out.stdout)["nodes"]) == 2, out
    assert (flwr[0] / "polls").read_text() == "2"  # the second answer lists two online


def test_online_gives_up_at_its_deadline_with_the_last_answer(flwr):
    _, script = flwr
    out = _sh(flwr, admin.batch_online(sys.executable, str(script), 5, 0.6, ["supernode", "list"]))
    assert out.returncode == 0 and count_online(_json(out.stdout)["nodes"]) < 5


def test_online_says_when_it_cannot_read_the_cli(flwr):
    _, script = flwr
    out = _sh(flwr, admin.batch_online(sys.executable, str(script), 1, 30, ["supernode", "list"]), FAKE_RAW="1")
    assert out.returncode == admin.NOT_CAPTURED


@pytest.mark.parametrize("bad", ["a b", "x@y", "it's", ""])
def test_batch_refuses_names_that_are_not_plain(bad):
    with pytest.raises(ValueError):
        admin.batch_each("python3", "/s.py", ["ok", bad], ["supernode", "register"])


def _register(tmp_path, **kw) -> str:
    (tmp_path / "c1.pub").write_text("k1")
    return admin.batch_each(sys.executable, str(tmp_path / "admin" / admin.BATCH), ["c1"],
                            ["supernode", "register", f"{tmp_path}/@.pub", "--format", "json"], **kw)


def test_registers_once_the_probe_says_healthy_and_says_how_long_it_waited(flwr, tmp_path):
    probes = tmp_path / "probes"  # the third probe answers 200
    probe = f"n=$(cat {probes} 2>/dev/null || echo 0); echo $((n+1)) > {probes}; [ $n -ge 2 ] && echo 200"
    out = _sh(flwr, _register(tmp_path, until=probe, unless="echo 0")).stdout
    first, _, rest = out.partition("\n")
    assert first.startswith("@@healthy ") and float(first.split()[1]) >= 2 * admin.POLL, out
    assert probes.read_text().strip() == "3" and parse_registrations(rest)["c1"].isdigit(), out


@pytest.mark.parametrize("unless, wait", [("echo 2", 60), ("echo 0", 0.3)], ids=["crash-loop", "timeout"])
def test_no_registration_when_the_superlink_never_gets_healthy(flwr, tmp_path, unless, wait):
    out = _sh(flwr, _register(tmp_path, until="echo 503", unless=unless, wait=wait))
    assert out.returncode == 0 and out.stdout.strip() == "@@unhealthy", out
