"""Where flwrazure keeps its local state. Everything lives under one folder so it is easy to find and wipe."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """$FLWRAZURE_HOME, default ~/.flwrazure (not created here: callers create what they write)."""
    value = os.environ.get("FLWRAZURE_HOME")
    return Path(value).expanduser() if value else Path.home() / ".flwrazure"


def local_cloud_dir() -> Path:
    return home() / "local"


def ensure_private_dir(path: Path) -> Path:
    """Create a folder readable only by its owner (it may hold keys and secrets)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
