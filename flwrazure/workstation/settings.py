"""Where flwrazure keeps its local state. Everything lives under one folder so it is easy to find and wipe."""

from __future__ import annotations

import math
import os
from pathlib import Path

from flwrazure.errors import UsageError

# the FLWRAZURE_* settings that are numbers of seconds, and what each one sets
SECONDS = {"FLWRAZURE_POLL": "the pause between status reads",
           "FLWRAZURE_GROUP_DELETE_TIMEOUT": "how long teardown waits for a resource group deletion",
           "FLWRAZURE_SSH_AUTH_GRACE": "how long a VM may refuse the SSH key while it is provisioned"}


def home() -> Path:
    """$FLWRAZURE_HOME, default ~/.flwrazure (not created here: callers create what they write)."""
    value = os.environ.get("FLWRAZURE_HOME")
    return Path(value).expanduser() if value else Path.home() / ".flwrazure"


def local_cloud_dir() -> Path:
    return home() / "local"


def local_connection_file() -> Path:
    """Written by `flwrazure local use FILE`: this home's --cloud local is an identity of a local cloud that another
    home runs (its endpoint, CA and credentials), instead of a local cloud of its own."""
    return local_cloud_dir() / "connection.json"


def ensure_private_dir(path: Path) -> Path:
    """Create a folder readable only by its owner (it may hold keys and secrets)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def seconds(name: str, default: float) -> float:
    """The number of seconds in $name (unset or empty: default); anything else than a finite number >= 0 is one
    line naming the variable and what it takes."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{name}={raw!r} is not a number of seconds ({SECONDS[name]}): set it to a number >= 0 "
                         f"such as {name}={default:g}, or unset it.")
    return value


def check_environment() -> None:
    """Every FLWRAZURE_* number, before a command starts (so a bad one stops it before it changes anything)."""
    for name in SECONDS:
        seconds(name, 0)
