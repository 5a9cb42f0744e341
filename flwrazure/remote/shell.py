"""A shell on a VM (OpenSSH's client, with the cluster's key and only its pinned host keys) and commands run on
VMs with their output streamed line by line."""

from __future__ import annotations

import os
import shlex
import shutil
import threading
from pathlib import Path

from flwrazure.errors import FlwrazureError


def ssh_argv(ip: str, user: str, key_file: str, known_hosts: Path, via: str | None = None) -> list[str]:
    """OpenSSH with the cluster's key, the host keys flwrazure pinned (a changed key is refused), and no user or
    system ssh config (as the product's own connections). via: a jump host (the server VM, for a private client
    VM), reached by a ProxyCommand with the same options (ProxyJump would give the jump its own defaults: the
    user's known_hosts and keys)."""
    options = ["-F", "/dev/null", "-i", key_file, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", "StrictHostKeyChecking=yes", "-o", "HashKnownHosts=no", "-o", "ConnectTimeout=10"]
    hop = []
    if via:
        # ssh runs the ProxyCommand with /bin/sh after expanding %-tokens: quoted for the shell, % doubled
        jump = shlex.join(["ssh", *options, "-W", "%h:%p", f"{user}@{via}"]).replace("%", "%%")
        hop = ["-o", f"ProxyCommand={jump.replace('%%h:%%p', '%h:%p')}"]
    return ["ssh", *options, *hop, f"{user}@{ip}"]


def interactive(ip: str, name: str, user: str, key_file: str, known_hosts: Path, via: str | None = None) -> None:
    """Replace this process with an interactive ssh session (after pinning the host key on first contact)."""
    from flwrazure.remote import ssh

    exe = shutil.which("ssh")
    if exe is None:
        raise FlwrazureError("no `ssh` client on your PATH: install OpenSSH (e.g. apt install openssh-client), or run "
                             "a command instead: flwrazure ssh VM -- COMMAND")
    ssh.wait(ip, name, user, key_file, known_hosts, timeout=60, via=via).close()  # pins (or checks) host keys
    argv = ssh_argv(ip, user, key_file, known_hosts, via)
    os.execv(exe, argv)


class _Lines:
    """A file-like sink for Fabric's output streams that hands on complete lines."""

    def __init__(self, emit):
        self.emit, self.buf = emit, ""

    def write(self, data: str) -> None:
        self.buf += data
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.emit(line)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.buf:
            self.emit(self.buf)
            self.buf = ""


def run_streamed(conn, command: str, emit, timeout: float | None = None) -> int:
    """Run a command; each output line (stdout and stderr) goes to emit(line) as it arrives; returns the exit code."""
    lock = threading.Lock()

    def safe(line: str) -> None:
        with lock:
            emit(line)

    out, err = _Lines(safe), _Lines(safe)
    result = conn.run(command, hide=False, warn=True, in_stream=False, out_stream=out, err_stream=err,
                      timeout=timeout)
    out.close()
    err.close()
    return result.exited
