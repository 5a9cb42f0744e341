"""A cluster's local record ($FLWRAZURE_HOME/clusters/<name>/state.json), so later commands need no flags and an
interrupted command knows what it was doing.

Two locks per cluster, both flock on a file in the cluster's directory (released by the kernel when the process
ends, however it ends):
- state.lock, around every write of the record (update's read-modify-write included), across processes and, with
  a thread lock, across threads: no write is lost, none is torn;
- command.lock, held by the commands that change the cluster for as long as they run (`exclusive`): a second such
  command on the same cluster, from another process, is refused with who holds it. Within one process it is
  shared (`up` runs create-cluster, open-ports and start, partly in threads)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from pathlib import Path

from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.workstation import files, settings

RECORD_LOCK, COMMAND_LOCK = "state.lock", "command.lock"


class ClusterBusy(FlwrazureError):
    """Another process runs a command that changes this cluster: nothing was done, try again when it ended."""

    exit_code = 75  # EX_TEMPFAIL: the same command may succeed later


def cluster_dir(cluster: str) -> Path:
    return settings.home() / "clusters" / cluster


def path(cluster: str) -> Path:
    return cluster_dir(cluster) / "state.json"


def exists(cluster: str) -> bool:
    return path(cluster).exists()


# key -> (accepted types, what it should be); the keys every command reads come first and must be there
_REQUIRED = {"cluster": (str,), "cloud": (str,), "subscription": (str, type(None)), "resource_group": (str,),
             "location": (str,), "clients": (int,), "flwr_version": (str,), "admin_user": (str,),
             "ssh_private_key": (str,)}
_OPTIONAL = {"ssh_sources": (list,), "control_sources": (list, type(None)), "registered_supernodes": (dict,),
             "partitions": (dict,), "port_plan": (dict,), "start_options": (dict,), "supervisors": (dict,),
             "started": (bool,), "paused": (str,), "secure": (bool,), "federation_pyproject": (str,),
             "cluster_id": (str, type(None)), "silos": (dict,)}


def _problem(data) -> str | None:
    """What is wrong with a record's content (None: nothing)."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        return f"it lacks {', '.join(missing)}"
    for key, types in {**_REQUIRED, **_OPTIONAL}.items():
        value = data.get(key)
        if key in data and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
            return f"{key} is {json.dumps(value)[:40]}, not a {' or '.join(_JSON_TYPE[t] for t in types)}"
    return None


_JSON_TYPE = {str: "string", int: "number", list: "list", dict: "object", bool: "true/false", type(None): "null"}


def _unreadable(cluster: str, why: str) -> UsageError:
    p = path(cluster)
    return UsageError(f"the record of cluster {cluster} ({p}) cannot be used: {why}. Restore it from a backup or "
                      f"fix it; or remove it (rm {p}): flwrazure then forgets the cluster, and its Azure resources "
                      f"(resource group {cluster}-rg by default) must be deleted by hand.")


def load(cluster: str) -> dict:
    try:
        text = path(cluster).read_text(encoding="utf-8")
    except FileNotFoundError:
        known = known_clusters()
        hint = f"known clusters: {', '.join(known)}" if known else "create one with `flwrazure create-cluster`"
        raise UsageError(f"no cluster named {cluster!r} ({hint}).") from None
    except UnicodeDecodeError:
        raise _unreadable(cluster, "it is not UTF-8 text") from None
    except OSError as exc:
        raise _unreadable(cluster, exc.strerror or str(exc)) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _unreadable(cluster, f"not valid JSON ({exc})") from None
    problem = _problem(data)
    if problem:
        raise _unreadable(cluster, problem)
    return data


_writing = threading.RLock()  # one writer at a time in this process (commands may run side by side: `up`)
_depth = 0  # how deep the thread holding _writing is in _record_lock (the flock is taken once, at depth 0)


@contextlib.contextmanager
def _record_lock(cluster: str, create: bool):
    """The record's lock: the thread lock, and at the outermost level the flock on state.lock (another process
    waits). Without the cluster's directory (and create=False) there is no record to protect."""
    global _depth
    with _writing:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        directory = settings.ensure_private_dir(cluster_dir(cluster)) if create else cluster_dir(cluster)
        try:
            fd = os.open(directory / RECORD_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            _depth = 1
            yield
        finally:
            _depth = 0
            if fd is not None:
                os.close(fd)


def save(cluster: str, data: dict) -> None:
    with _record_lock(cluster, create=True):
        files.write_atomic(path(cluster), json.dumps(data, indent=2, sort_keys=True))


def update(cluster: str, changes: dict) -> dict:
    """Set these keys in the record as it is now, keeping every other: commands running side by side (`up` and
    `scale` run open-ports beside start) each write only what they changed, so neither undoes the other's."""
    with _record_lock(cluster, create=False):
        data = {**load(cluster), **changes}
        save(cluster, data)
        return data


def change(cluster: str, fn) -> dict:
    """Record fn(record): a read-modify-write of nested values (a silo's entry) under the record's lock."""
    with _record_lock(cluster, create=False):
        data = fn(load(cluster))
        save(cluster, data)
        return data


def forget(cluster: str, purge: bool) -> None:
    """Drop the record; with purge also the cluster's keys and certificates."""
    if purge:
        shutil.rmtree(cluster_dir(cluster), ignore_errors=True)
    else:
        with _record_lock(cluster, create=False):
            path(cluster).unlink(missing_ok=True)


def known_clusters() -> list[str]:
    root = settings.home() / "clusters"
    return sorted(p.parent.name for p in root.glob("*/state.json")) if root.exists() else []


# -- commands that change a cluster: one at a time ---------------------------------------------------------------
_held: dict[str, list] = {}  # cluster -> [fd, how many holds in this process]
_holding = threading.Lock()


def _holder(fd: int) -> str:
    """Who holds the command lock, as its holder wrote it: 'pid N, `flwrazure X`, since T'."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(info['pid'])}, `flwrazure {info['command']}`, since {info['since']}"
    except (ValueError, KeyError, TypeError, OSError):
        return "a process that has just started"


def _acquire(cluster: str, command: str, create: bool) -> int | None:
    directory = cluster_dir(cluster)
    made = create and not directory.exists()
    if create:
        settings.ensure_private_dir(directory)
    try:
        fd = os.open(directory / COMMAND_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return None  # no such cluster: the command itself says so
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ClusterBusy(f"another flwrazure command is working on cluster {cluster} ({holder}): wait until it "
                          f"has ended (or stop it), then re-run this one.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "made_dir": made,
                              "since": time.strftime("%H:%M:%S")}).encode(), 0)
    return fd


def _release(cluster: str, fd: int) -> None:
    """Close the lock; a directory this hold created for a cluster that got no record (create-cluster refused)
    goes again, so a refused command leaves nothing behind."""
    try:
        made = json.loads(os.pread(fd, 4096, 0)).get("made_dir")
    except (ValueError, OSError, AttributeError):
        made = False
    directory = cluster_dir(cluster)
    if made and not exists(cluster):
        with contextlib.suppress(OSError):
            if {p.name for p in directory.iterdir()} <= {COMMAND_LOCK, RECORD_LOCK}:
                for name in (RECORD_LOCK, COMMAND_LOCK):
                    (directory / name).unlink(missing_ok=True)
                directory.rmdir()
    os.close(fd)


@contextlib.contextmanager
def exclusive(cluster: str, command: str, create: bool = False):
    """Run a command that changes the cluster: refused (ClusterBusy) while another process runs one on it.
    create=True makes the cluster's directory (create-cluster, up); otherwise a cluster without one is left to
    the command to report. Nested holds in this process, from any thread, share the first."""
    with _holding:
        held = _held.get(cluster)
        if held is not None:
            held[1] += 1
        else:
            fd = _acquire(cluster, command, create)
            if fd is not None:
                held = _held[cluster] = [fd, 1]
    try:
        yield
    finally:
        if held is not None:
            with _holding:
                held[1] -= 1
                if not held[1]:
                    del _held[cluster]
                    _release(cluster, held[0])
