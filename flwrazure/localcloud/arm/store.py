"""The emulator's state: resource groups, resources (as the JSON ARM returns), operations. Kept on disk so the
local cloud keeps its resources across `local down`/`local up`, like a real cloud."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

TRANSIENT = {"Creating", "Updating", "Deleting"}


class Store:
    def __init__(self, path: Path | None = None):
        self.path = path
        self.lock = threading.RLock()
        self.groups: dict[str, dict] = {}  # lower-case name -> {"body": ..., "meta": ...}
        self.resources: dict[str, dict] = {}  # lower-case id -> {"body": ..., "meta": ...}
        self.operations: dict[str, dict] = {}
        self.counters: dict[str, int] = {}
        self.tombstones: dict[str, float] = {}  # lower-case id -> monotonic time of deletion (not kept on disk)
        self._dirty = threading.Event()
        if path and path.exists():
            self._load()

    # -- persistence -------------------------------------------------------------------------------------
    def _load(self) -> None:
        data = json.loads(self.path.read_text())
        self.groups, self.resources = data.get("groups", {}), data.get("resources", {})
        self.operations, self.counters = data.get("operations", {}), data.get("counters", {})
        # A real cloud finishes its operations while you are away: settle what was in flight at shutdown.
        for key, rec in list(self.resources.items()):
            state = rec["body"].get("properties", {}).get("provisioningState")
            if state == "Deleting":
                del self.resources[key]
            elif state in TRANSIENT:
                rec["body"]["properties"]["provisioningState"] = "Succeeded"
        for key, rec in list(self.groups.items()):
            if rec["body"]["properties"].get("provisioningState") == "Deleting":
                del self.groups[key]
        for op in self.operations.values():
            if op.get("status") == "InProgress":
                op["status"] = "Succeeded"

    def mark_dirty(self) -> None:
        self._dirty.set()

    def flush(self) -> None:
        if not self.path or not self._dirty.is_set():
            return
        with self.lock:
            self._dirty.clear()
            text = json.dumps({"groups": self.groups, "resources": self.resources,
                               "operations": self.operations, "counters": self.counters})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    # -- access ------------------------------------------------------------------------------------------
    def next_counter(self, name: str) -> int:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1
            return self.counters[name]

    def get(self, rid: str) -> dict | None:
        return self.resources.get(rid.lower())

    def put(self, rid: str, body: dict, meta: dict | None = None) -> dict:
        with self.lock:
            old = self.resources.get(rid.lower())
            rec = {"body": body, "meta": meta if meta is not None else (old or {}).get("meta", {})}
            self.resources[rid.lower()] = rec
            self.mark_dirty()
            return rec

    def delete(self, rid: str) -> None:
        with self.lock:
            self.resources.pop(rid.lower(), None)
            self.mark_dirty()

    def of_type(self, arm_type: str, rg: str | None = None) -> list[dict]:
        """Records of one type (optionally in one group), in creation order."""
        out = []
        for rec in self.resources.values():
            body = rec["body"]
            if body.get("type", "").lower() != arm_type.lower():
                continue
            if rg is not None and group_of(body["id"]).lower() != rg.lower():
                continue
            out.append(rec)
        return out

    def in_group(self, rg: str) -> list[dict]:
        prefix = f"/resourcegroups/{rg.lower()}/"
        return [rec for key, rec in self.resources.items() if prefix in key]


def group_of(rid: str) -> str:
    parts = rid.split("/")
    return parts[parts.index(next(p for p in parts if p.lower() == "resourcegroups")) + 1]


def name_of(rid: str) -> str:
    return rid.rstrip("/").split("/")[-1]
