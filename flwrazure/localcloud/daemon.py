"""Starting, finding and stopping the local cloud as a background process (`flwrazure local up/status/down`).

The running server writes server.json (pid, endpoint, credentials) once it listens; that file is how every
other command finds it. A stale file (the process died) is treated as "not running"."""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from flwrazure.errors import FlwrazureError, UsageError

DEFAULT_PORT = 47443


def server_file(state_dir: Path) -> Path:
    return state_dir / "server.json"


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"flwrazure.localcloud" in cmdline


def healthy(info: dict, timeout: float = 2.0) -> bool:
    try:
        ctx = ssl.create_default_context(cafile=info["ca_bundle"])
        with urllib.request.urlopen(f"{info['endpoint']}/_localcloud/health", context=ctx, timeout=timeout) as r:
            return r.status == 200
    except (OSError, ValueError):
        return False


def sign_in_error(info: dict, timeout: float = 5.0) -> str | None:
    """Why the credentials in `info` get no token from the local cloud at its endpoint (Entra's AADSTS message),
    or None when they do."""
    import urllib.error
    import urllib.parse

    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": info["client_id"],
                                   "client_secret": info["client_secret"],
                                   "scope": "https://management.azure.com/.default"}).encode()
    url = f"{info['endpoint']}/{urllib.parse.quote(info['tenant_id'])}/oauth2/v2.0/token"
    try:
        ctx = ssl.create_default_context(cafile=info["ca_bundle"])
        with urllib.request.urlopen(url, data=form, context=ctx, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        try:
            return json.loads(exc.read()).get("error_description", str(exc)).split(". ")[0]
        except ValueError:
            return str(exc)


def running(state_dir: Path) -> dict | None:
    """The server's info when it is up and answering, else None."""
    path = server_file(state_dir)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(info.get("pid", 0))) or not healthy(info):
        return None
    return info


def up(state_dir: Path, port: int, options: list[str], wait: float = 30.0) -> tuple[dict, bool]:
    """Start the server unless it runs already; returns (info, started_now)."""
    info = running(state_dir)
    if info:
        return info, False
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    server_file(state_dir).unlink(missing_ok=True)
    log = open(state_dir / "server.log", "ab")
    cmd = [sys.executable, "-m", "flwrazure.localcloud", "serve", "--state", str(state_dir), "--port", str(port),
           *options]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise FlwrazureError(f"The local cloud did not start: {tail[0] if tail else 'exit ' + str(proc.returncode)}"
                                 f" (log: {state_dir / 'server.log'}).")
        info = running(state_dir)
        if info:
            return info, True
        time.sleep(0.1)
    proc.terminate()
    raise FlwrazureError(f"The local cloud did not answer within {wait:.0f} s (log: {state_dir / 'server.log'}).")


def down(state_dir: Path, wait: float = 20.0) -> bool:
    """Stop the server if it runs; True when one was stopped."""
    path = server_file(state_dir)
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    if not _alive(pid):
        path.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    path.unlink(missing_ok=True)
    return True


def reset(state_dir: Path) -> None:
    """Forget every resource (credentials and CA stay, so configured clients keep working)."""
    if running(state_dir):
        raise UsageError("The local cloud is running: stop it first with `flwrazure local down`.")
    from flwrazure.localcloud.arm import store

    store.remove(store.in_dir(state_dir))
    shutil.rmtree(state_dir / "hosts", ignore_errors=True)
