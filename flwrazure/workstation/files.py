"""Files on the workstation written whole or not at all, and locks between processes (fcntl.flock: released by
the kernel when the holder exits, however it exits)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """A rename is durable once its directory is on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Replace `path` by `text`: a temporary file of its own in the same directory (created 0600: readable by
    nobody else while it is written), synced, given `mode` (and `owner` when we are allowed to), renamed over
    `path`, and the directory synced. Writers running at once never share a temporary file; a reader sees the
    old file or the new one, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if owner is not None and hasattr(os, "fchown"):
                with contextlib.suppress(PermissionError):
                    os.fchown(f.fileno(), *owner)
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(path: Path, directory: bool = False):
    """Hold an exclusive flock on `path` (a lock file, created 0600; or with directory=True an existing
    directory) until the block ends; waits for another holder."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if directory else \
        os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
