"""Real Flower releases for tests: one venv per version, made once and kept under $FLWRAZURE_TEST_CACHE
(default ~/.cache/flwrazure-tests) beside the other tests' downloads."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("FLWRAZURE_TEST_CACHE", Path.home() / ".cache" / "flwrazure-tests"))
FLWR_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
WARM_UP = ("from importlib.metadata import entry_points\n"
           "for ep in entry_points(group='console_scripts'):\n"
           "    if ep.name in ('flower-superlink', 'flower-supernode', 'flower-superexec', 'flwr'):\n"
           "        ep.load()\n")


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


_UV_LOCK = threading.Lock()


@functools.cache
def _find_uv() -> str | None:
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    return find_uv_bin()


def _uv() -> str | None:
    with _UV_LOCK:  # find_uv_bin reads sysconfig, whose first use is not thread-safe
        return _find_uv()


def flwr_venv(version: str) -> Path:
    """A venv with flwr==version and its dependencies. uv, from the test extra, installs it from one download
    cache shared by every version (17 releases from an empty cache: under a minute); without uv, pip does it
    (several times slower). The daemons' entry points are imported once, so that one process writes the bytecode
    they need (rather than compiling everything, or four processes compiling the same modules at their first
    start)."""
    venv = CACHE / "flwr-venvs" / version
    if (venv / "ready").exists():
        return venv
    with _locked(CACHE / "flwr-venvs" / f".{version}.lock"):
        if (venv / "ready").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        uv, python = _uv(), venv / "bin" / "python"
        if uv:
            env = {**os.environ, "UV_CACHE_DIR": str(CACHE / "uv")}
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
            subprocess.run([uv, "pip", "install", "-q", "--python", str(python), f"flwr=={version}"], check=True,
                           env=env, timeout=900, stdin=subprocess.DEVNULL)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", f"flwr=={version}"], check=True, timeout=900,
                           stdin=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([str(python), "-c", WARM_UP], check=True, env={**env, **FLWR_ENV}, timeout=300,
                       stdin=subprocess.DEVNULL)
        (venv / "ready").write_text("ok\n")
    return venv
