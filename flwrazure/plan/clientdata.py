"""Per-client data (`start --client-data DIR`), the pure parts: the layout DIR must have, which names may travel
to a VM, the SuperNode's --node-config text with its data-path, and what to copy or delete given the local and
the remote listing.

DIR/<i>/ goes to client VM i (<cluster>-client-<i>) as `~/flwrazure/data`: that directory is a mirror of DIR/<i>,
so files removed from DIR/<i> are removed there too (an app that reads every file of its data-path must not see
stale ones); nothing outside it is touched."""

from __future__ import annotations

import re
from dataclasses import dataclass

DATA_DIR = "data"  # under services.REMOTE_DIR: /home/<admin>/flwrazure/data
PART_SUFFIX = ".flwrazure-part"  # a file being copied: renamed over its final name once complete
MAX_NAME = 255
MAX_PATH = 1024
_NAME_PUNCT = set("._+=@,- ")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]+")  # what may go into --node-config, a unit file and a shell unquoted


@dataclass(frozen=True)
class Plan:
    copy: tuple[str, ...]  # relative paths (POSIX), in order
    delete: tuple[str, ...]  # remote files (or links) not in DIR/<i>
    rmdirs: tuple[str, ...]  # remote directories no local file needs, deepest first
    mkdirs: tuple[str, ...]  # directories the copies need that are not there, parents first


def missing_clients(present: set[str], clients: int) -> list[int]:
    """The client numbers 1..clients without a directory DIR/<i> (`present`: names of DIR's subdirectories)."""
    return [i for i in range(1, clients + 1) if str(i) not in present]


def missing_message(root: str, missing: list[int], clients: int) -> str:
    shown = ", ".join(f"{root}/{i}" for i in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10
                                                              else "")
    return (f"--client-data {root}: no directory for client(s) {', '.join(map(str, missing[:10]))}"
            f"{' …' if len(missing) > 10 else ''} ({shown} missing). Expected one directory per client VM, "
            f"{root}/1 … {root}/{clients}, each holding that client's files (client i is <cluster>-client-<i>).")


def bad_name(rel: str) -> str | None:
    """Why this relative path (POSIX, from DIR/<i>) may not be copied to a VM, None when it may. Letters, digits,
    space and . _ + = @ , - only: no control characters (a newline would split a listing line), no quotes,
    backslashes or shell characters, no component that is empty, '.' or '..', or starts with '-'."""
    if len(rel) > MAX_PATH:
        return f"the path is longer than {MAX_PATH} characters"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return f"path component {part!r} is not allowed"
        if len(part) > MAX_NAME:
            return f"a name is longer than {MAX_NAME} characters"
        if part.startswith("-"):
            return "a name may not start with '-'"
        if part.endswith(PART_SUFFIX):
            return f"names ending in {PART_SUFFIX} are flwrazure's partial copies"
        for ch in part:
            if not (ch.isalnum() or ch in _NAME_PUNCT) or not ch.isprintable():
                return f"character {ch!r} is not allowed (letters, digits, space and ._+=@,- are)"
    return None


def node_config(partition: int, partitions: int, data_dir: str | None = None) -> str:
    """The SuperNode's --node-config value. Flower reads it as `key=value` pairs split on whitespace, each value
    parsed as TOML: a path is a string, so it goes in double quotes (a TOML basic string; the path is checked to
    hold no quote, backslash, space, '$' or '%', which the unit file's ExecStart would expand)."""
    text = f"partition-id={partition} num-partitions={partitions}"
    if data_dir is None:
        return text
    if not _SAFE_PATH.fullmatch(data_dir):
        raise ValueError(f"data path {data_dir!r}: only an absolute path of letters, digits and ._/- can be passed")
    return f'{text} data-path="{data_dir}"'


def plan(local: dict[str, tuple[int, str]], remote_files: dict[str, tuple[int, str]],
         remote_other: set[str], remote_dirs: set[str]) -> Plan:
    """What makes the remote directory equal to the local one. `local` and `remote_files` map relative paths to
    (size, sha256); `remote_other` are remote entries that are neither regular files nor directories (symlinks,
    …), always replaced or deleted; `remote_dirs` the remote subdirectories. A file is copied when it is missing
    there or its size or digest differs."""
    copy = tuple(sorted(rel for rel, facts in local.items() if remote_files.get(rel) != facts or rel in remote_other))
    delete = tuple(sorted((set(remote_files) | remote_other) - set(local)))
    needed = {"/".join(rel.split("/")[:n]) for rel in local for n in range(1, rel.count("/") + 1)}
    # a remote directory where a local file goes is in the way too (its contents are deleted above)
    rmdirs = tuple(sorted(remote_dirs - needed, key=lambda d: (-d.count("/"), d)))
    mkdirs = tuple(sorted(needed - remote_dirs, key=lambda d: (d.count("/"), d)))
    return Plan(copy, delete, rmdirs, mkdirs)


LISTING = r"""
import hashlib, json, os, stat, sys
root = sys.argv[1]
files, other, dirs = {}, [], []
for top, subdirs, names in os.walk(root):
    for name in subdirs + names:
        path = os.path.join(top, name)
        rel = os.path.relpath(path, root)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            dirs.append(rel)
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            files[rel] = [st.st_size, h.hexdigest()]
        else:
            other.append(rel)
print(json.dumps({"files": files, "other": other, "dirs": dirs}))
"""


def listing_command(directory: str) -> str:
    """One shell command: create the data directory (0700, files in it 0600 by umask) if needed, and print its
    listing as JSON (relative path -> [size, sha256]; other entries; subdirectories)."""
    import shlex

    if not _SAFE_PATH.fullmatch(directory):
        raise ValueError(f"data path {directory!r}: only an absolute path of letters, digits and ._/- is used")
    return (f"umask 077 && mkdir -p {directory} && chmod 700 {directory} && "
            f"python3 -c {shlex.quote(LISTING)} {directory}")


def total_bytes(local: dict[str, tuple[int, str]]) -> int:
    return sum(size for size, _ in local.values())
