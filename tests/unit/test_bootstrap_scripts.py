"""The bare-image bootstrap scripts of plan/bootstrap.py, executed for real by /bin/sh (dash on Debian) and bash
against fake `sudo`, `apt-get` and `cloud-init` on a PATH that holds nothing else: apt's lock held a few times then
free, held past the deadline (the holder is reported), another apt failure (no retry), cloud-init absent, running,
finishing, never finishing. The fake `cloud-init` is the local cloud's own emulation (guest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from flwrazure.localcloud import guest
from flwrazure.plan import bootstrap as plan

SHELLS = [s for s in ("/bin/sh", "/bin/bash") if os.path.exists(s)]
TOOLS = ("date", "timeout", "tail", "sleep", "grep", "env", "cat", "python3", "rm", "sh")
# apt 2.x's own words when unattended-upgrades holds the dpkg frontend lock / the lists lock
LOCKED_INSTALL = ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (unattended-upgr)\n"
                  "N: Be aware that removing the lock file is not a solution and may break your system.\n"
                  "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process "
                  "using it?")
LOCKED_UPDATE = ("E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1234 (unattended-upgr)\n"
                 "N: Be aware that removing the lock file is not a solution and may break your system.\n"
                 "E: Unable to lock directory /var/lib/apt/lists/")
NOT_FOUND = "Reading package lists...\nBuilding dependency tree...\nE: Unable to locate package python3-venv"

FAKE_SUDO = """#!/bin/sh
echo "sudo $*" >> "$FAKE_DIR/calls"
[ "$1" = -n ] || { echo "sudo: a password is required" >&2; exit 1; }
shift
exec "$@"
"""
# each call takes one line of $FAKE_DIR/script: "locked", "missing" or "ok" (the last line repeats)
FAKE_APT = """#!/bin/sh
echo "apt-get DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> "$FAKE_DIR/calls"
n=$(cat "$FAKE_DIR/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$FAKE_DIR/count"
step=$(sed -n "${n}p" "$FAKE_DIR/script"); [ -n "$step" ] || step=$(tail -n 1 "$FAKE_DIR/script")
sub=update; case " $* " in *" install "*) sub=install;; esac
case $step in
  locked) if [ $sub = update ]; then cat "$FAKE_DIR/locked-update"; else cat "$FAKE_DIR/locked-install"; fi >&2
          exit 100;;
  missing) [ $sub = update ] && exit 0; cat "$FAKE_DIR/not-found" >&2; exit 100;;
  *) echo "Setting up $sub"; exit 0;;
esac
"""


@pytest.fixture
def fake(tmp_path):
    """A bin folder with the real tools the scripts use and the fakes; nothing else on PATH."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in (*TOOLS, "sed"):
        os.symlink(shutil.which(tool), bin_ / tool)
    for name, text in {"sudo": FAKE_SUDO, "apt-get": FAKE_APT}.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    (tmp_path / "locked-install").write_text(LOCKED_INSTALL + "\n")
    (tmp_path / "locked-update").write_text(LOCKED_UPDATE + "\n")
    (tmp_path / "not-found").write_text(NOT_FOUND + "\n")
    return tmp_path


def _run(shell: str, script: str, fake: Path, steps: list[str] | None = None) -> tuple[subprocess.CompletedProcess,
                                                                                      float]:
    if steps is not None:
        (fake / "script").write_text("\n".join(steps) + "\n")
    env = {"PATH": str(fake / "bin"), "FAKE_DIR": str(fake), "HOME": str(fake)}
    start = time.monotonic()
    proc = subprocess.run([shell, "-c", script], env=env, capture_output=True, text=True, timeout=30)
    return proc, time.monotonic() - start


def _calls(fake: Path) -> list[str]:
    path = fake / "calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("shell", SHELLS)
def test_apt_install_retries_while_locked_then_succeeds(fake, shell):
    # held during update, then twice during install, then free
    proc, took = _run(shell, plan.apt_install(["python3-venv"], timeout=4, interval=0.1), fake,
                      ["locked", "ok", "locked", "ok", "locked", "ok", "ok"])
    assert proc.returncode == 0, proc.stderr
    apt = [c for c in _calls(fake) if c.startswith("apt-get")]
    assert len(apt) == 7  # update (locked); update, install (locked); update, install (locked); update, install
    assert [c.split()[-1] for c in apt][-2:] == ["update", "python3-venv"]
    # non-interactive sudo and apt, with apt's own lock wait as well
    assert all(c.startswith("sudo -n ") for c in _calls(fake) if c.startswith("sudo"))
    assert all("DEBIAN_FRONTEND=noninteractive" in c and "DPkg::Lock::Timeout=" in c and " -q" in c for c in apt)
    assert "install -y python3-venv" in apt[-1]
    assert took < 3


@pytest.mark.parametrize("shell", SHELLS)
def test_apt_install_gives_up_at_the_deadline_and_names_the_holder(fake, shell):
    proc, took = _run(shell, plan.apt_install(["python3-venv"], timeout=2, interval=0.2), fake,
                      ["ok", "locked"] * 30)
    assert proc.returncode == plan.LOCKED_EXIT
    assert 1 <= took < 4  # the deadline counts whole seconds
    install = [c for c in _calls(fake) if c.startswith("apt-get") and "install" in c]
    assert len(install) >= 2  # it retried before giving up
    assert proc.stderr.strip() == ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 "
                                   "(unattended-upgr)")
    assert plan.lock_holder(proc.stderr) == "process 1234 (unattended-upgr)"


@pytest.mark.parametrize("shell", SHELLS)
def test_apt_install_other_failure_is_reported_at_once(fake, shell):
    proc, took = _run(shell, plan.apt_install(["python3-venv"], timeout=60, interval=5), fake, ["missing"])
    assert proc.returncode == 100  # apt's own exit code, not the lock one
    assert took < 3  # no retry, no sleep
    assert [c.split()[-1] for c in _calls(fake) if c.startswith("apt-get")] == ["update", "python3-venv"]
    assert proc.stderr.strip().splitlines()[-1] == "E: Unable to locate package python3-venv"


@pytest.mark.parametrize("shell", SHELLS)
def test_apt_install_lists_lock_at_the_deadline(fake, shell):
    proc, _ = _run(shell, plan.apt_install(["python3-venv", "python3-pip"], timeout=1, interval=0.2), fake,
                   ["locked"])
    assert proc.returncode == plan.LOCKED_EXIT
    assert plan.lock_holder(proc.stderr) == "process 1234 (unattended-upgr)"
    assert not [c for c in _calls(fake) if "install" in c]  # never got past `update`


def test_apt_install_default_interval_is_three_seconds():
    assert "sleep 3;" in plan.apt_install(["x"], 10)


def test_lock_holder_variants():
    assert plan.lock_holder(LOCKED_INSTALL) == "process 1234 (unattended-upgr)"
    assert plan.lock_holder("E: Could not get lock /var/lib/dpkg/lock. It is held by process 77") == "process 77"
    assert plan.lock_holder("E: Could not get lock /var/lib/dpkg/lock-frontend - open (13: Permission denied)") \
        is None
    assert plan.lock_holder("") is None


# -- cloud-init: the local cloud's emulated `cloud-init status`, reading a status file of this test --------------
def _install_cloud_init(fake: Path) -> Path:
    """The emulated cloud-init, reading its status.json/result.json from fake/data; returns that folder."""
    data = fake / "data"
    text = guest.files(_first_boot(), systemd=True)["/usr/bin/cloud-init"][0]
    assert f'"{guest.DATA}"' in text
    (fake / "bin" / "cloud-init").write_text(text.replace(f'"{guest.DATA}"', f'"{data}"'))
    (fake / "bin" / "cloud-init").chmod(0o755)
    return data


def _running(data: Path, stage: str = "init") -> None:
    data.mkdir(exist_ok=True)
    (data / "status.json").write_text(json.dumps({"v1": {"stage": stage, stage: {"errors": [], "start": 1.0}}}))


def _done(data: Path) -> None:
    _running(data)
    (data / "result.json").write_text(json.dumps({"v1": {"errors": []}}))


def _first_boot(apt_seconds: float = 5.0) -> guest.FirstBoot:
    return guest.FirstBoot(hostname="vm-0", user="azureuser", keys=("ssh-ed25519 AAAA a@b",), provision_lag=3.0,
                           apt_seconds=apt_seconds, private_ip="10.0.0.4", mirror="http://198.18.0.1:47480")


@pytest.mark.parametrize("shell", SHELLS)
def test_wait_cloud_init_without_cloud_init_passes(fake, shell):
    proc, took = _run(shell, plan.wait_cloud_init(5), fake)
    assert proc.returncode == 0, proc.stderr
    assert took < 2


@pytest.mark.parametrize("shell", SHELLS)
def test_wait_cloud_init_done(fake, shell):
    _done(_install_cloud_init(fake))
    proc, took = _run(shell, plan.wait_cloud_init(5), fake)
    assert proc.returncode == 0, proc.stderr
    assert took < 3


@pytest.mark.parametrize("shell", SHELLS)
def test_wait_cloud_init_waits_until_done(fake, shell):
    data = _install_cloud_init(fake)
    _running(data)
    timer = threading.Timer(1.0, lambda: _done(data))
    timer.start()
    try:
        proc, took = _run(shell, plan.wait_cloud_init(4), fake)
    finally:
        timer.cancel()
    assert proc.returncode == 0, proc.stderr
    assert 1.0 <= took < 4


@pytest.mark.parametrize("shell", SHELLS)
def test_wait_cloud_init_never_done(fake, shell):
    _running(_install_cloud_init(fake))
    proc, took = _run(shell, plan.wait_cloud_init(1), fake)
    assert proc.returncode == plan.CLOUD_INIT_EXIT
    assert 1 <= took < 4
    assert "status: running" in proc.stdout
    assert "detail: Running in stage: init" in proc.stdout


def test_wait_cloud_init_not_started_counts_as_running(fake):
    _install_cloud_init(fake)  # no status file yet: the agent has not started
    proc, _ = _run("/bin/sh", plan.wait_cloud_init(1), fake)
    assert proc.returncode == plan.CLOUD_INIT_EXIT
    assert "status: not started" in proc.stdout


def test_warm_imports_loads_the_supernode_scripts_modules_without_running_them(tmp_path):
    """The SuperNode's modules imported ahead of its first start (their bytecode written), by a real shell and
    Python: the console scripts' modules are imported, their functions not called; a script whose import fails and
    one the venv lacks are no error."""
    site, venv = tmp_path / "site", tmp_path / "venv"
    (site / "fake-1.0.dist-info").mkdir(parents=True)
    (site / "fake-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: fake\nVersion: 1.0\n")
    (site / "fake-1.0.dist-info" / "entry_points.txt").write_text(
        "[console_scripts]\nflower-supernode = fakenode:main\nflower-superexec = broken:main\nother = other:main\n")
    seen = tmp_path / "seen"
    (site / "fakenode.py").write_text(f"open({str(seen)!r}, 'a').write('imported ')\n"
                                      f"def main():\n    open({str(seen)!r}, 'a').write('ran')\n")
    (site / "broken.py").write_text("raise ImportError('no such thing')\n")
    (site / "other.py").write_text(f"open({str(seen)!r}, 'a').write('other ')\n")
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(shutil.which("python3"))
    done = subprocess.run(["sh", "-c", plan.warm_imports(str(venv))], env={"PYTHONPATH": str(site)}, timeout=60)
    assert done.returncode == 0 and seen.read_text() == "imported "
    assert list((site / "__pycache__").glob("fakenode.*.pyc"))
