"""The operator's per-client data directory (`start --client-data DIR`): checked and listed before anything is
copied or created."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from flwrazure.errors import UsageError
from flwrazure.plan import clientdata as plan

Listing = dict[str, tuple[int, str]]  # relative POSIX path -> (size, sha256)


def check(root: Path, clients: int) -> Path:
    """DIR exists and has DIR/1 … DIR/<clients> (one error naming every missing one); returns DIR, absolute."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"--client-data {root}: no such directory. Give a directory with one subdirectory per "
                         f"client VM: {root}/1 … {root}/{clients}.")
    present = {p.name for p in root.iterdir() if p.is_dir()}
    missing = plan.missing_clients(present, clients)
    if missing:
        raise UsageError(plan.missing_message(str(root), missing, clients))
    return root.resolve()


def listing(directory: Path, digests: bool = True) -> Listing:
    """Every file under one client's directory with its size and digest; a name that may not travel to a VM, or
    an entry that is not a regular file or directory, is refused (UsageError) before anything is sent. Without
    `digests` only the names and kinds are checked (`up`, before it creates the VMs)."""
    out: Listing = {}
    for top, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(dirs + names):
            path = Path(top) / name
            rel = path.relative_to(directory).as_posix()
            why = plan.bad_name(rel)
            if why:
                raise UsageError(f"--client-data: {rel!r} in {directory}: {why}. Rename it, or move it out of "
                                 f"{directory}.")
            try:
                mode = os.stat(path).st_mode  # a symlink counts as what it points to
            except OSError as exc:
                raise UsageError(f"--client-data: {path}: {exc.strerror} (a broken link?).") from None
            if stat.S_ISDIR(mode):
                if path.is_symlink():
                    raise UsageError(f"--client-data: {path} is a link to a directory; give the directory itself.")
                continue
            if not stat.S_ISREG(mode):
                raise UsageError(f"--client-data: {path} is not a regular file.")
            out[rel] = (os.stat(path).st_size, digest(path) if digests else "")
    return out


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
