"""Copy one client's data directory to its VM over SFTP, only what changed: one SSH command lists the remote
directory (sizes and sha256), plan.clientdata decides, then deletions, directories and copies. Every file is
written to a partial name made 0600 before its first byte, inside the 0700 directory, and renamed over the
final name once complete (an interrupted copy never leaves a truncated file under the real name)."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

from flwrazure.errors import FlwrazureError
from flwrazure.plan import clientdata as plan
from flwrazure.remote.ssh import run

CHUNK = 1 << 20


def remote_listing(conn, directory: str) -> tuple[dict[str, tuple[int, str]], set[str], set[str]]:
    out = run(conn, plan.listing_command(directory), timeout=1800)
    try:
        data = json.loads(out.strip().splitlines()[-1])
        files = {rel: (int(size), str(sha)) for rel, (size, sha) in data["files"].items()}
        return files, set(data["other"]), set(data["dirs"])
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise FlwrazureError(f"{conn.host}: could not read the listing of {directory} ({exc}): {out[-200:]!r}") from None


def sync(conn, directory: str, source: Path, local: dict[str, tuple[int, str]]) -> dict:
    """Make `directory` on the VM equal to `source` (whose files and digests are `local`). Returns what was done."""
    files, other, dirs = remote_listing(conn, directory)
    todo = plan.plan(local, files, other, dirs)
    if todo.copy or todo.delete or todo.rmdirs or todo.mkdirs:
        sftp = conn.sftp()  # Fabric keeps one SFTP session per connection
        for rel in todo.delete:
            sftp.remove(posixpath.join(directory, rel))
        for rel in todo.rmdirs:
            sftp.rmdir(posixpath.join(directory, rel))
        for rel in todo.mkdirs:
            sftp.mkdir(posixpath.join(directory, rel), 0o700)
        for rel in todo.copy:
            _put(sftp, source / rel, posixpath.join(directory, rel))
    return {"path": directory, "files": len(local), "bytes": plan.total_bytes(local), "copied": list(todo.copy),
            "deleted": list(todo.delete)}


def _put(sftp, local: Path, remote: str) -> None:
    partial = posixpath.join(posixpath.dirname(remote), "." + posixpath.basename(remote) + plan.PART_SUFFIX)
    with open(local, "rb") as src, sftp.open(partial, "wb") as dst:
        dst.chmod(0o600)  # created under umask (0644 at worst, empty, in a 0700 directory): private before data
        dst.set_pipelined(True)
        for block in iter(lambda: src.read(CHUNK), b""):
            dst.write(block)
    sftp.posix_rename(partial, remote)
