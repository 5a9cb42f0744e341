"""A cluster's local record ($FLWRAZURE_HOME/clusters/<name>/state.json), written atomically, so later commands
need no flags and an interrupted command knows what it was doing."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from flwrazure.errors import UsageError
from flwrazure.workstation import settings


def cluster_dir(cluster: str) -> Path:
    return settings.home() / "clusters" / cluster


def path(cluster: str) -> Path:
    return cluster_dir(cluster) / "state.json"


def exists(cluster: str) -> bool:
    return path(cluster).exists()


def load(cluster: str) -> dict:
    try:
        return json.loads(path(cluster).read_text())
    except FileNotFoundError:
        known = known_clusters()
        hint = f"known clusters: {', '.join(known)}" if known else "create one with `flwrazure create-cluster`"
        raise UsageError(f"no cluster named {cluster!r} ({hint}).") from None


_writing = threading.RLock()  # one writer at a time in this process (commands may run side by side: `up`)


def save(cluster: str, data: dict) -> None:
    with _writing:
        directory = settings.ensure_private_dir(cluster_dir(cluster))
        tmp = directory / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, directory / "state.json")


def update(cluster: str, changes: dict) -> dict:
    """Set these keys in the record as it is now, keeping every other: commands running side by side (`up` and
    `scale` run open-ports beside start) each write only what they changed, so neither undoes the other's."""
    with _writing:
        data = {**load(cluster), **changes}
        save(cluster, data)
        return data


def forget(cluster: str, purge: bool) -> None:
    """Drop the record; with purge also the cluster's keys and certificates."""
    if purge:
        shutil.rmtree(cluster_dir(cluster), ignore_errors=True)
    else:
        path(cluster).unlink(missing_ok=True)


def known_clusters() -> list[str]:
    root = settings.home() / "clusters"
    return sorted(p.parent.name for p in root.glob("*/state.json")) if root.exists() else []
