"""What a bare cloud VM needs before Flower can be installed, as shell commands (pure).

A fresh Azure Ubuntu VM has python3 but not ensurepip (it ships in python3-venv), so venv support is probed by
what `python3 -m venv` really needs. On its first boot cloud-init may still be provisioning and apt-daily /
unattended-upgrades hold the dpkg and apt locks for minutes: the install waits for cloud-init, then retries while
the locks are held, up to a deadline, and reports who holds them when it gives up."""

from __future__ import annotations

import json
import re
import shlex

from flwrazure.plan import services

# `python3 -m venv --help` succeeds without ensurepip (venv ships with python3 on Debian and Ubuntu): probe both
VENV_PROBE = "python3 -c 'import ensurepip, venv'"
INSTALL_LOCK = ".install.lock"  # under the remote dir: the flock one_at_a_time holds around a pip install
LOCKED_EXIT = 75  # the apt script's exit code when the locks were still held at the deadline
CLOUD_INIT_EXIT = 76  # cloud-init still running at the deadline
_LOCKED = ("Could not get lock", "Unable to lock", "Unable to acquire the dpkg frontend lock",
           "Could not open lock file")


def wait_cloud_init(timeout: int) -> str:
    """Wait until cloud-init has finished (where there is one); exits CLOUD_INIT_EXIT at the deadline."""
    return (f"if command -v cloud-init >/dev/null 2>&1; then timeout {int(timeout)} cloud-init status --wait "
            f">/dev/null 2>&1; rc=$?; if [ $rc -eq 124 ]; then cloud-init status --long 2>&1 | "
            f"grep -m 4 -E '^(status|detail|errors):|^\\s+- '; "
            f"exit {CLOUD_INIT_EXIT}; fi; fi; true")


def apt_install(packages: list[str], timeout: int, interval: float = 3) -> str:
    """apt-get update + install, retried every `interval` s while another apt/dpkg process holds the locks (until
    `timeout` s)."""
    apt = "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=10 -q"
    pkgs = " ".join(shlex.quote(p) for p in packages)
    locked = "|".join(f"*{shlex.quote(m)}*" for m in _LOCKED)
    return (f"deadline=$(( $(date +%s) + {int(timeout)} )); "
            f"while :; do out=$( {{ {apt} update && {apt} install -y {pkgs}; }} 2>&1 ); rc=$?; "
            f"[ $rc -eq 0 ] && exit 0; "
            f'case "$out" in {locked}) ;; *) printf "%s\\n" "$out" | tail -n 3 >&2; exit $rc;; esac; '
            f'if [ $(date +%s) -ge $deadline ]; then printf "%s\\n" "$out" | grep -m1 -iE "lock" >&2; '
            f"exit {LOCKED_EXIT}; fi; sleep {interval:g}; done")


def lock_holder(message: str) -> str | None:
    """'process 1234 (unattended-upgr)' from apt's lock error, None when it does not say."""
    m = re.search(r"held by process (\d+)(?: \(([^)]*)\))?", message)
    if not m:
        return None
    return f"process {m.group(1)}" + (f" ({m.group(2)})" if m.group(2) else "")


def venv_command(venv: str) -> str:
    """Create the venv unless a usable one is there (a half-made one, from a failed earlier try, is replaced)."""
    q = shlex.quote(venv)
    return f"test -x {q}/bin/pip || {{ rm -rf {q} && python3 -m venv {q}; }}"


def one_at_a_time(command: str, lock: str, timeout: int) -> str:
    """`command` while holding an flock on `lock` (waiting up to `timeout` s for it). The lock is held by the
    command's own processes, so it outlives our SSH session: after Ctrl-C a pip install goes on on the VM, and a
    re-run's install waits for it to end instead of writing into the same venv at the same time."""
    busy = f"another install into this venv was still running after {int(timeout)} s"
    return (f"exec 9>>{shlex.quote(lock)} && {{ flock -w {int(timeout)} 9 || {{ echo {shlex.quote(busy)} >&2; "
            f"exit {LOCKED_EXIT}; }}; }} && {{ {command}; }}")


def marker_text(version: str, extra: list[str], index_url: str | None) -> str:
    """What the marker beside the venv says once exactly this is installed (the index only as a digest: the URL
    may carry a token). Written by the SSH bootstrap and by the VM's user data alike."""
    return json.dumps({"flwr": version, "extra": sorted(extra), "index": services.digest(index_url)},
                      sort_keys=True) + "\n"


SUPERNODE_SCRIPTS = ("flower-supernode", "flower-superexec", "flwr-clientapp")


def warm_imports(venv: str, scripts: tuple[str, ...] = SUPERNODE_SCRIPTS) -> str:
    """A shell command loading (not running) the venv's console scripts `scripts`, as the user the services run
    as: Python writes the bytecode of every module they import, which the first start of the service would
    otherwise compile on its way (3-4 CPU-seconds for a SuperNode and its SuperExec). Run on a client VM while the
    SuperLink boots, it takes that off the path to every SuperNode online. Names it does not have are skipped."""
    wanted = ", ".join(repr(s) for s in scripts)
    code = ("import importlib.metadata as m\n"
            f"for e in m.entry_points(group='console_scripts'):\n"
            f"    if e.name in ({wanted},):\n"
            "        try:\n"
            "            e.load()\n"
            "        except Exception:\n"
            "            pass\n")
    return f"FLWR_TELEMETRY_ENABLED=0 {shlex.quote(venv)}/bin/python -c {shlex.quote(code)} >/dev/null 2>&1"
