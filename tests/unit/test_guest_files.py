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
                                "apt_seconds": 40.0}  # no user data: nothing of it in the seed
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
    moved = {p: tmp / p.lstrip("/") for p in (guest.SEED, guest.DONE, guest.DATA, guest.READY, guest.OUTPUT,
                                              guest.SCRIPTS, guest.APT_DONE, *guest.LOCKS)}
    for old, new in moved.items():  # quoted, whole: /var/lib/dpkg/lock is a prefix of …/lock-frontend
        text = text.replace(f'"{old}"', f'"{new}"').replace(f"'{old}'", f"'{new}'")
    assert not [p for p in moved if f'"{p}"' in text or f"'{p}'" in text]
    program = tmp / Path(path).name
    program.write_text(text)
    return program, moved


def _cloud_init(program: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(program), *args], capture_output=True, text=True, timeout=10)


def _stages(**errors) -> dict:
    """status.json's v1 as the agent writes it, every stage finished, `errors` by stage."""
    v1 = {"datasource": "DataSourceAzure [seed=/dev/sr0]", "stage": None}
    for i, name in enumerate(("init-local", "init", "modules-config", "modules-final")):
        v1[name] = {"errors": errors.get(name.replace("-", "_"), []), "recoverable_errors": {},
                    "start": 1765000000.0 + i, "finished": 1765000000.5 + i}
    return v1


def test_cloud_init_status_shapes(tmp_path):
    """Keys, values and exit codes of cloud-init's `status` (cloud-init's cmd/status.py): not started, running,
    done, error naming the module, and the recoverable-errors (degraded) exit code 2."""
    program, moved = _program("/usr/bin/cloud-init", tmp_path)
    data = moved[guest.DATA]
    proc = _cloud_init(program, "status")
    assert (proc.returncode, proc.stdout) == (0, "status: not started\n")
    data.mkdir(parents=True)
    running = _stages()
    running["stage"], running["modules-final"]["finished"] = "modules-final", None
    (data / "status.json").write_text(json.dumps({"v1": running}))
    shown = json.loads(_cloud_init(program, "status", "--format", "json").stdout)
    assert (shown["status"], shown["extended_status"], shown["stage"]) == ("running", "running", "modules-final")
    assert {"boot_status_code", "datasource", "detail", "errors", "extended_status", "last_update",
            "recoverable_errors", "status", "stage", "init-local", "init", "modules-config",
            "modules-final"} == set(shown)
    assert shown["datasource"] == "azure" and shown["detail"] == "DataSourceAzure [seed=/dev/sr0]"
    (data / "status.json").write_text(json.dumps({"v1": _stages()}))
    (data / "result.json").write_text(json.dumps({"v1": {"datasource": "DataSourceAzure", "errors": []}}))
    proc = _cloud_init(program, "status", "--long")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["status: done", "extended_status: done", "boot_status_code: enabled-by-generator"]
    assert lines[3].startswith("last_update: ") and lines[4:] == [
        "detail: DataSourceAzure [seed=/dev/sr0]", "errors: []", "recoverable_errors: {}"]
    error = "('package_update_upgrade_install', RuntimeError(\"Failed to install packages: ['nope']\"))"
    (data / "status.json").write_text(json.dumps({"v1": _stages(modules_final=[error])}))
    proc = _cloud_init(program, "status", "--format", "json")
    shown = json.loads(proc.stdout)
    assert proc.returncode == 1  # cloud-init: 1 on an error
    assert (shown["status"], shown["extended_status"], shown["errors"]) == ("error", "error - done", [error])
    assert shown["modules-final"]["errors"] == [error]
    proc = _cloud_init(program, "status", "--long")
    assert proc.returncode == 1 and f"errors:\n\t- {error}\n" in proc.stdout
    warned = _stages()
    warned["init"]["recoverable_errors"] = {"WARNING": ["Unhandled non-multipart userdata"]}
    (data / "status.json").write_text(json.dumps({"v1": warned}))
    proc = _cloud_init(program, "status", "--format", "json")
    assert proc.returncode == 2 and json.loads(proc.stdout)["extended_status"] == "degraded done"
    proc = _cloud_init(program, "init")
    assert proc.returncode == 2 and "usage: cloud-init status" in proc.stderr


def test_cloud_init_status_wait_returns_when_done(tmp_path):
    program, moved = _program("/usr/bin/cloud-init", tmp_path)
    data = moved[guest.DATA]
    data.mkdir(parents=True)
    (data / "status.json").write_text(json.dumps({"v1": _stages()}))
    waiter = subprocess.Popen([sys.executable, str(program), "status", "--wait"], stdout=subprocess.PIPE, text=True)
    json_waiter = subprocess.Popen([sys.executable, str(program), "status", "--wait", "--format", "json"],
                                   stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert waiter.poll() is None and json_waiter.poll() is None  # still waiting
        (data / "result.json").write_text(json.dumps({"v1": {"datasource": "DataSourceAzure", "errors": []}}))
        out, _ = waiter.communicate(timeout=5)
        shown, _ = json_waiter.communicate(timeout=5)
    finally:
        for proc in (waiter, json_waiter):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert waiter.returncode == 0
    assert out.startswith(".") and out.rstrip().endswith("status: done")
    assert json.loads(shown)["status"] == "done"  # no progress dots in JSON


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
    moved[guest.SEED].parent.mkdir(parents=True)
    moved[guest.SEED].write_text(guest.files(FB, systemd=True)[guest.SEED][0])
    moved[guest.OUTPUT].parent.mkdir(parents=True)
    proc = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    status = json.loads((moved[guest.DATA] / "status.json").read_text())["v1"]
    assert status["stage"] is None and all(status[s]["finished"] for s in ("init", "modules-final"))
    assert json.loads((moved[guest.DATA] / "result.json").read_text())["v1"]["errors"] == []
    assert not moved[guest.READY].exists()  # nothing provisioned again
