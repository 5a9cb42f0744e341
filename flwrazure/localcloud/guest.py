"""What the local cloud puts on a VM's disk before its first boot of a bare image (pure: path -> (text, mode)).

Azure hands a new VM its osProfile through a provisioning data source, and cloud-init (or the Linux agent) applies
it during the first boot: hostname, admin user, authorized_keys, sudoers. That agent runs beside sshd, so for a
while sshd answers but refuses the admin user. Meanwhile Ubuntu's apt-daily / unattended-upgrades hold the dpkg
and apt locks for minutes. Both happen on the first boot only. This module renders that behaviour: a seed file with
the osProfile, a provisioning agent, a `cloud-init status [--wait] [--long]` command that reports its progress,
and a first-boot apt job that holds the locks for a configurable time."""

from __future__ import annotations

import json
from dataclasses import dataclass

SEED = "/var/lib/cloud/seed/flwrazure/osprofile.json"
AGENT = "/usr/lib/flwrazure/provision"
APT_JOB = "/usr/lib/flwrazure/first-boot-apt"
FIRST_BOOT = "/usr/lib/flwrazure/first-boot"  # hosts without systemd: starts both jobs in the background
STATUS = "/run/cloud-init/status.json"
DONE = "/var/lib/cloud/instance/boot-finished"
APT_DONE = "/var/lib/flwrazure/first-boot-apt.done"
LOCKS = ("/var/lib/apt/lists/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock",
         "/var/cache/apt/archives/lock")
APT_HOLDER = "unattended-upgr"  # the name apt prints for the lock holder (15 characters of a process name)


@dataclass(frozen=True)
class FirstBoot:
    hostname: str
    user: str
    keys: tuple[str, ...]
    provision_lag: float  # seconds between boot and the admin user existing
    apt_seconds: float  # seconds the first-boot apt job holds the locks (0: none)
    private_ip: str
    mirror: str  # http://gateway:port, the region's package mirror (apt under /debian, pip under /simple)


_AGENT = '''#!/usr/bin/python3
"""flwrazure local cloud: the provisioning agent, applying the VM's osProfile on its first boot (as cloud-init does
on Azure). It runs beside sshd, so the admin user may not exist yet when SSH first answers."""
import json, os, pathlib, subprocess, sys, time

SEED, DONE, STATUS = pathlib.Path("@SEED@"), pathlib.Path("@DONE@"), pathlib.Path("@STATUS@")


def status(value, **extra):
    STATUS.parent.mkdir(parents=True, exist_ok=True)
    tmp = STATUS.with_name(".status.tmp")
    tmp.write_text(json.dumps({"status": value, "time": time.time(), **extra}))
    os.replace(tmp, STATUS)
    print(time.strftime("%H:%M:%S"), value, extra, flush=True)


if DONE.exists():
    status("done", detail="provisioned on an earlier boot")
    sys.exit(0)
seed = json.loads(SEED.read_text())
status("running", detail="waiting for the provisioning data")
time.sleep(float(seed["provision_lag"]))
status("running", detail="applying the osProfile: users, ssh keys, sudoers")
user = seed["user"]
if subprocess.run(["id", user], capture_output=True).returncode != 0:
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "adm,sudo", "--comment",
                    "Azure admin user", user], check=True)
    subprocess.run(["usermod", "--password", "*", user], check=True)  # keys only, not locked
home = pathlib.Path("/home") / user
ssh = home / ".ssh"
ssh.mkdir(mode=0o700, exist_ok=True)
keys = ssh / "authorized_keys"
keys.write_text("".join(k.strip() + "\\n" for k in seed["keys"]))
keys.chmod(0o600)
subprocess.run(["chown", "-R", f"{user}:{user}", str(ssh)], check=True)
sudoers = pathlib.Path("/etc/sudoers.d/90-cloud-init-users")
sudoers.write_text(f"# Created by cloud-init (flwrazure local cloud)\\n{user} ALL=(ALL) NOPASSWD:ALL\\n")
sudoers.chmod(0o440)
DONE.parent.mkdir(parents=True, exist_ok=True)
DONE.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\\n"))
status("done")
'''

_STATUS_CMD = '''#!/usr/bin/python3
"""cloud-init (flwrazure local cloud emulation): only `cloud-init status [--wait] [--long] [--format json]`."""
import json, pathlib, sys, time

STATUS = pathlib.Path("@STATUS@")
args = sys.argv[1:]
if not args or args[0] != "status":
    print("usage: cloud-init status [--wait] [--long] [--format json] (the local cloud emulates status only)",
          file=sys.stderr)
    sys.exit(2)


def read():
    try:
        return json.loads(STATUS.read_text())
    except (OSError, ValueError):
        return {"status": "not started", "detail": "the provisioning agent has not started yet"}


state = read()
if "--wait" in args:
    while state["status"] not in ("done", "error"):
        print(".", end="", flush=True)
        time.sleep(0.25)
        state = read()
    print()
if "--format" in args and "json" in args:
    print(json.dumps({"status": state["status"], "extended_status": state["status"],
                      "detail": state.get("detail", "")}))
else:
    print(f"status: {state['status']}")
    if "--long" in args:
        print(f"extended_status: {state['status']}\\nboot_status_code: enabled-by-generator\\n"
              f"detail: {state.get('detail', '')}")
sys.exit(1 if state["status"] == "error" else 0)
'''

_APT_JOB = '''#!/usr/bin/python3
"""flwrazure local cloud: first-boot apt activity (apt-daily + unattended-upgrades on a fresh Ubuntu VM), holding
apt's and dpkg's locks for a while; apt names this process as the holder."""
import fcntl, json, os, pathlib, time

done = pathlib.Path("@APT_DONE@")
if done.exists():
    raise SystemExit(0)
done.parent.mkdir(parents=True, exist_ok=True)
done.write_text("")
seconds = float(json.loads(pathlib.Path("@SEED@").read_text())["apt_seconds"])
pathlib.Path("/proc/self/comm").write_text("@HOLDER@")
held = []
for path in @LOCKS@:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    held.append(fd)
time.sleep(seconds)
'''


def _fill(text: str) -> str:
    for key, value in {"@SEED@": SEED, "@DONE@": DONE, "@STATUS@": STATUS, "@APT_DONE@": APT_DONE,
                       "@HOLDER@": APT_HOLDER, "@LOCKS@": repr(list(LOCKS))}.items():
        text = text.replace(key, value)
    return text


def package_indexes(mirror: str) -> dict[str, tuple[str, int]]:
    """pip's and uv's system configuration pointing at the region's mirror: what a VM on Azure gets by default
    (the public index) is what a local-cloud VM gets here, for every pip and every `uv` (Flower installs apps'
    dependencies at run time with `uv sync`, which reads uv's configuration, not pip's)."""
    host = mirror.split("//", 1)[1].split("/", 1)[0].split(":")[0]
    return {"/etc/pip.conf": (f"[global]\nindex-url = {mirror}/simple/\ntrusted-host = {host}\n", 0o644),
            "/etc/uv/uv.toml": (f'[[index]]\nurl = "{mirror}/simple/"\ndefault = true\n', 0o644)}


def files(fb: FirstBoot, systemd: bool) -> dict[str, tuple[str, int]]:
    """Every file the first boot needs, relative to the VM's root."""
    seed = {"hostname": fb.hostname, "user": fb.user, "keys": list(fb.keys), "provision_lag": fb.provision_lag,
            "apt_seconds": fb.apt_seconds}
    out = {
        SEED: (json.dumps(seed, indent=2) + "\n", 0o600),
        AGENT: (_fill(_AGENT), 0o755),
        "/usr/bin/cloud-init": (_fill(_STATUS_CMD), 0o755),
        APT_JOB: (_fill(_APT_JOB), 0o755),
        "/etc/hostname": (fb.hostname + "\n", 0o644),
        "/etc/hosts": (f"127.0.0.1 localhost\n127.0.1.1 {fb.hostname}\n{fb.private_ip} {fb.hostname}\n", 0o644),
        "/etc/ssh/sshd_config.d/50-cloud-init.conf": ("PasswordAuthentication no\n", 0o644),
        "/etc/apt/sources.list": (f"deb [trusted=yes] {fb.mirror}/debian ./\n", 0o644),
        **package_indexes(fb.mirror),
    }
    if systemd:
        out["/etc/systemd/system/cloud-init.service"] = (
            "[Unit]\nDescription=Cloud-init emulation of the flwrazure local cloud: apply the VM's osProfile\n"
            "After=local-fs.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={AGENT}\nStandardOutput=append:/var/log/cloud-init.log\n"
            "StandardError=append:/var/log/cloud-init.log\n\n[Install]\nWantedBy=multi-user.target\n", 0o644)
        if fb.apt_seconds > 0:
            out["/etc/systemd/system/apt-first-boot.service"] = (
                "[Unit]\nDescription=Daily apt activities on the first boot (flwrazure local cloud)\n"
                f"ConditionPathExists=!{APT_DONE}\n\n[Service]\nType=simple\nExecStart={APT_JOB}\n\n"
                "[Install]\nWantedBy=multi-user.target\n", 0o644)
    else:
        jobs = [f"{AGENT} >>/var/log/cloud-init.log 2>&1 &"]
        if fb.apt_seconds > 0:
            jobs.insert(0, f"{APT_JOB} >/var/log/first-boot-apt.log 2>&1 &")
        out[FIRST_BOOT] = ("#!/bin/sh\n# hosts without systemd: the first-boot jobs, started by the VM's init\n"
                           + "\n".join(jobs) + "\n", 0o755)
    return out


def enabled_units(fb: FirstBoot) -> list[str]:
    """Units to link into multi-user.target.wants (systemd hosts)."""
    return ["cloud-init.service"] + (["apt-first-boot.service"] if fb.apt_seconds > 0 else [])
