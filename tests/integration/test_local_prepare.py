"""`flwrazure local prepare` from a shell, with a fake apt-get of this test on a PATH that lacks some tools: as root
it runs `apt-get update` then `apt-get install` of exactly the missing packages (non-interactive) and checks they
are there; with everything there it calls no apt at all; without root it prints the command and exits 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flwrazure.localcloud.prepare import TOOLS

ROOT = os.geteuid() == 0
# tools outside the sbin folders (which prepare always searches): gone from a PATH of only the fake's folder
USR_BIN = {tool: shutil.which(tool) for tool in TOOLS}
pytestmark = pytest.mark.skipif(not all(USR_BIN.values()), reason="needs every tool local prepare checks")


def _fake_apt(bin_: Path, log: Path, provides: dict[str, str]) -> None:
    links = "\n".join(f'  /bin/ln -sf "{src}" "{bin_ / tool}"' for tool, src in provides.items())
    (bin_ / "apt-get").write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> "{log}"\n'
                                  f'if [ "$1" = install ]; then\n{links}\n  :\nfi\nexit 0\n')
    (bin_ / "apt-get").chmod(0o755)


def _prepare(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flwrazure", "local", "prepare", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PATH": path})


@pytest.mark.skipif(not ROOT, reason="the install path runs as root")
def test_root_installs_exactly_the_missing_packages(tmp_path):
    bin_, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_.mkdir()
    sbin = ("/usr/local/sbin", "/usr/sbin", "/sbin")
    gone = {tool: src for tool, src in USR_BIN.items() if not any(
        shutil.which(tool, path=d) for d in sbin)}  # e.g. ssh-keygen, systemd-nspawn, mmdebstrap, dpkg-deb
    assert "mmdebstrap" in gone and "systemd-nspawn" in gone
    _fake_apt(bin_, log, gone)
    proc = _prepare(str(bin_))
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "noninteractive update -q"
    assert calls[1].startswith("noninteractive install -y -q --no-install-recommends ")
    assert set(calls[1].split()[5:]) == {TOOLS[tool] for tool in gone}
    assert len(calls) == 2
    assert "Installed " in proc.stdout

    log.unlink()  # now everything is there: no apt call at all
    proc = _prepare(str(bin_))
    assert proc.returncode == 0 and proc.stdout.startswith("Nothing to do")
    assert not log.exists()


@pytest.mark.skipif(not ROOT, reason="runs as root")
def test_root_apt_failure_is_one_line_and_exit_1(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "apt-get").write_text('#!/bin/sh\necho "E: Unable to locate package mmdebstrap" >&2\nexit 100\n')
    (bin_ / "apt-get").chmod(0o755)
    proc = _prepare(str(bin_))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "apt-get update -q` failed (exit 100" in errors[0]
    assert "Traceback" not in proc.stderr


def test_everything_there_calls_no_apt(tmp_path):
    bin_, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_.mkdir()
    _fake_apt(bin_, log, {})
    proc = _prepare(f"{bin_}{os.pathsep}{os.environ['PATH']}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Nothing to do")
    assert not log.exists()


@pytest.mark.skipif(ROOT, reason="the non-root path")
def test_not_root_prints_the_command_and_exits_2(tmp_path):
    bin_, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_.mkdir()
    _fake_apt(bin_, log, {})
    proc = _prepare(str(bin_))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "apt-get install -y" in proc.stderr
    assert not log.exists()
    proc = _prepare(str(bin_), "--if-root")
    assert proc.returncode == 0 and "skipped" in proc.stderr
