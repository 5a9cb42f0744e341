"""What the local cloud writes on a VM's disk for its first boot (guest.py), with and without systemd and first-boot
apt, and the rendered programs executed for real with python3 against paths of this test: the emulated
`cloud-init status`, the first-boot apt job (holds apt's and dpkg's locks, named unattended-upgr, once) and the
provisioning agent's later-boot path."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomlkit

from flwrazure.localcloud import guest

MIRROR = "http://198.18.0.1:47480"
FB = guest.FirstBoot(hostname="vm-0", user="azureuser", keys=("ssh-ed25519 AAAA a@b", "ssh-rsa BBBB c@d\n"),
                     provision_lag=8.0, apt_seconds=40.0, private_ip="10.0.0.4", mirror=MIRROR)
NO_APT = guest.FirstBoot(**{**FB.__dict__, "apt_seconds": 0.0})
APT_UNIT = "/etc/systemd/system/apt-first-boot.service"
INIT_UNIT = "/etc/systemd/system/cloud-init.service"


def test_files_systemd_with_first_boot_apt():
    out = guest.files(FB, systemd=True)
    assert INIT_UNIT in out and APT_UNIT in out and guest.FIRST_BOOT not in out
    assert f"ExecStart={guest.AGENT}\n" in out[INIT_UNIT][0] and "WantedBy=multi-user.target" in out[INIT_UNIT][0]
    assert f"ExecStart={guest.APT_JOB}\n" in out[APT_UNIT][0]
    assert f"ConditionPathExists=!{guest.APT_DONE}\n" in out[APT_UNIT][0]  # the first boot only
    assert guest.enabled_units(FB) == ["cloud-init.service", "apt-first-boot.service"]


def test_files_systemd_without_first_boot_apt():
    out = guest.files(NO_APT, systemd=True)
    assert INIT_UNIT in out and APT_UNIT not in out and guest.FIRST_BOOT not in out
    assert guest.enabled_units(NO_APT) == ["cloud-init.service"]
    assert guest.APT_JOB in out  # the program is there, nothing starts it


@pytest.mark.parametrize("fb", [FB, NO_APT], ids=["apt", "no-apt"])
def test_files_without_systemd(fb, tmp_path):
    out = guest.files(fb, systemd=False)
    assert not [p for p in out if p.startswith("/etc/systemd/")]
    text, mode = out[guest.FIRST_BOOT]
    assert mode == 0o755 and text.startswith("#!/bin/sh\n")
    jobs = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert f"{guest.AGENT} >>/var/log/cloud-init.log 2>&1 &" in jobs
    assert (f"{guest.APT_JOB} >/var/log/first-boot-apt.log 2>&1 &" in jobs) == (fb.apt_seconds > 0)
    assert len(jobs) == (2 if fb.apt_seconds > 0 else 1)
    assert all(j.endswith("&") for j in jobs)  # in the background: the VM's init goes on to sshd
    (tmp_path / "first-boot").write_text(text)
    assert subprocess.run(["sh", "-n", str(tmp_path / "first-boot")]).returncode == 0


@pytest.mark.parametrize("systemd", [True, False])
def test_seed_identity_and_mirrors(systemd):
    out = guest.files(FB, systemd=systemd)
    seed, mode = out[guest.SEED]
    assert mode == 0o600  # holds the osProfile
    assert json.loads(seed) == {"hostname": "vm-0", "user": "azureuser",
                                "keys": ["ssh-ed25519 AAAA a@b", "ssh-rsa BBBB c@d\n"], "provision_lag": 8.0,
                                "apt_seconds": 40.0}
    assert out["/etc/hostname"] == ("vm-0\n", 0o644)
    assert "10.0.0.4 vm-0\n" in out["/etc/hosts"][0] and "127.0.0.1 localhost\n" in out["/etc/hosts"][0]
    assert out["/etc/apt/sources.list"] == (f"deb [trusted=yes] {MIRROR}/debian ./\n", 0o644)
    assert out["/etc/pip.conf"] == (f"[global]\nindex-url = {MIRROR}/simple/\ntrusted-host = 198.18.0.1\n", 0o644)
    # uv (Flower's run-time installer) reads its own system configuration, not pip's
    assert tomlkit.parse(out["/etc/uv/uv.toml"][0]).unwrap() == {"index": [{"url": f"{MIRROR}/simple/", "default": True}]}
    assert out["/etc/ssh/sshd_config.d/50-cloud-init.conf"][0] == "PasswordAuthentication no\n"
    for path in (guest.AGENT, guest.APT_JOB, "/usr/bin/cloud-init"):
        text, mode = out[path]
        assert mode == 0o755 and text.startswith("#!/usr/bin/python3\n")
        assert "@" not in text.replace("user@", "")  # every placeholder filled
        compile(text, path, "exec")


# -- the rendered programs, run with paths of this test ------------------------------------------------------
def _program(path: str, tmp: Path, fb: guest.FirstBoot = FB) -> tuple[Path, dict[str, Path]]:
    """The rendered program with every absolute path it uses moved under tmp."""
    text = guest.files(fb, systemd=True)[path][0]
    moved = {p: tmp / p.lstrip("/") for p in (guest.SEED, guest.DONE, guest.STATUS, guest.APT_DONE, *guest.LOCKS)}
    for old, new in moved.items():  # quoted, whole: /var/lib/dpkg/lock is a prefix of …/lock-frontend
        text = text.replace(f'"{old}"', f'"{new}"').replace(f"'{old}'", f"'{new}'")
    assert not [p for p in moved if f'"{p}"' in text or f"'{p}'" in text]
    program = tmp / Path(path).name
    program.write_text(text)
    return program, moved


def _cloud_init(program: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(program), *args], capture_output=True, text=True, timeout=10)


def test_cloud_init_status_reports_the_agent(tmp_path):
    program, moved = _program("/usr/bin/cloud-init", tmp_path)
    status = moved[guest.STATUS]
    proc = _cloud_init(program, "status")
    assert (proc.returncode, proc.stdout) == (0, "status: not started\n")
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"status": "running", "detail": "applying the osProfile"}))
    proc = _cloud_init(program, "status", "--long")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["status: running", "extended_status: running",
                                        "boot_status_code: enabled-by-generator", "detail: applying the osProfile"]
    proc = _cloud_init(program, "status", "--format", "json")
    assert json.loads(proc.stdout) == {"status": "running", "extended_status": "running",
                                       "detail": "applying the osProfile"}
    status.write_text(json.dumps({"status": "error", "detail": "useradd failed"}))
    assert _cloud_init(program, "status").returncode == 1  # as cloud-init: 1 on a critical error
    proc = _cloud_init(program, "init")
    assert proc.returncode == 2 and "usage: cloud-init status" in proc.stderr


def test_cloud_init_status_wait_returns_when_done(tmp_path):
    program, moved = _program("/usr/bin/cloud-init", tmp_path)
    status = moved[guest.STATUS]
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"status": "running"}))
    waiter = subprocess.Popen([sys.executable, str(program), "status", "--wait"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting
        status.write_text(json.dumps({"status": "done"}))
        out, _ = waiter.communicate(timeout=5)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0
    assert out.startswith(".") and out.rstrip().endswith("status: done")


def _locked(path: Path) -> bool:
    """Whether another process holds apt's kind of lock (fcntl, as apt and dpkg take them) on path."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def test_first_boot_apt_job_holds_the_locks_once(tmp_path):
    fb = guest.FirstBoot(**{**FB.__dict__, "apt_seconds": 1.5})
    program, moved = _program(guest.APT_JOB, tmp_path, fb)
    seed = moved[guest.SEED]
    seed.parent.mkdir(parents=True)
    seed.write_text(guest.files(fb, systemd=True)[guest.SEED][0])
    job = subprocess.Popen([sys.executable, str(program)])
    try:
        locks = [moved[p] for p in guest.LOCKS]
        deadline = time.monotonic() + 5
        while not all(p.exists() and _locked(p) for p in locks) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_locked(p) for p in locks)
        # apt names the holder by its process name: unattended-upgr, as on a fresh Ubuntu VM
        assert Path(f"/proc/{job.pid}/comm").read_text().strip() == guest.APT_HOLDER == "unattended-upgr"
        assert job.wait(timeout=5) == 0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert not any(_locked(p) for p in locks)
    assert moved[guest.APT_DONE].exists()
    start = time.monotonic()  # a later boot: nothing held, at once
    assert subprocess.run([sys.executable, str(program)], timeout=10).returncode == 0
    assert time.monotonic() - start < 1.0


def test_agent_on_a_later_boot_only_reports_done(tmp_path):
    program, moved = _program(guest.AGENT, tmp_path)
    moved[guest.DONE].parent.mkdir(parents=True)
    moved[guest.DONE].write_text("2026-01-01T00:00:00\n")  # provisioned on the first boot
    proc = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(moved[guest.STATUS].read_text())["status"] == "done"
    assert not moved[guest.SEED].exists()  # it never needed the seed
