"""Real OpenSSH keys (ssh-keygen) and a real ssh-agent for tests; the agent is ended by its PID."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def keygen(path: Path, kind: str = "ed25519", bits: int | None = None, passphrase: str = "") -> Path:
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", f"test-{kind}", "-f", str(path)]
    if bits:
        cmd[4:4] = ["-b", str(bits)]
    subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return path


class Agent:
    """`ssh-agent -D` on a socket of our own; env() is what a shell would have after `eval $(ssh-agent)`."""

    def __init__(self, directory: Path):
        self.sock = directory / "agent.sock"
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.sock)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.02)

    def env(self) -> dict:
        return {"SSH_AUTH_SOCK": str(self.sock)}

    def add(self, key: Path, passphrase: str = "") -> None:
        askpass = key.parent / f"{key.name}.askpass"
        askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n")
        askpass.chmod(0o700)
        env = {**os.environ, **self.env(), "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
               "DISPLAY": ":0"}
        subprocess.run(["ssh-add", str(key)], check=True, capture_output=True, env=env, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
