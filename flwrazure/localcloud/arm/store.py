"""The emulator's state: resource groups, resources (as the JSON ARM returns), operations. Kept on disk so the
local cloud keeps its resources across `local down`/`local up`, like a real cloud."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path

TRANSIENT = {"Creating", "Updating", "Deleting"}


SNAPSHOT = "state.json"  # the store's file in the local cloud's state directory


def in_dir(state_dir: Path) -> Path:
    """Where the local cloud keeps its store: the snapshot's path (journals beside it)."""
    return state_dir / SNAPSHOT


def journal_path(path: Path, rotated: int | None = None) -> Path:
    """The journal beside the snapshot at `path`; `rotated`: one a snapshot took over (named by its last change)."""
    return path.with_suffix(".journal" if rotated is None else f".journal.{rotated}")


def rotated_journals(path: Path) -> list[Path]:
    """The journals snapshots took over, oldest first."""
    return sorted(path.parent.glob(path.stem + ".journal.*"), key=lambda f: int(f.suffix[1:]))


def remove(path: Path) -> None:
    """Forget the store kept at `path`: its snapshot and every journal (a crash's journals would bring the
    resources back at the next load)."""
    for f in [path, path.with_suffix(".tmp"), journal_path(path), *rotated_journals(path)]:
        f.unlink(missing_ok=True)


class Store:
    """Kept on disk as a snapshot (`state.json`, written whole by `flush`, about once a second) plus a journal
    (`state.journal`): every change named to `mark_dirty` is appended there at once, so what the cloud has
    acknowledged survives a crash of the local cloud (kill -9 loses no written line; the snapshot alone lost up to
    a second: a VM booted just before a crash came back "not booted" and was never started again)."""

    KINDS = {"r": "resources", "g": "groups", "o": "operations"}

    def __init__(self, path: Path | None = None):
        self.path = path
        self.lock = threading.RLock()
        self.groups: dict[str, dict] = {}  # group_key(sub, name) -> {"body": ..., "meta": ...}
        self.resources: dict[str, dict] = {}  # lower-case id -> {"body": ..., "meta": ...}
        # lower-case type -> {lower-case id: record}, in creation order: of_type scanned every resource, and the
        # handlers call it several times per write (address allocation, quota, in-use checks): O(n) per PUT
        self._types: dict[str, dict[str, dict]] = {}
        self._sub_types: dict[tuple[str, str], dict[str, dict]] = {}  # the same per (subscription, type)
        self.operations: dict[str, dict] = {}
        self.counters: dict[str, int] = {}
        self.tombstones: dict[str, float] = {}  # lower-case id -> monotonic time of deletion (not kept on disk)
        # lower-case id -> (monotonic time of deletion, last body): what ARM's generic lists still show for a while
        # after a deletion (config `resource_list_lag`; not kept on disk)
        self.recently_deleted: dict[str, tuple[float, dict]] = {}
        self._dirty = threading.Event()
        self._flushing = threading.Lock()
        self.seq = 0  # the number of the last journaled change
        self._journal = None
        if path and path.exists():
            self._load()
        if path:
            self._replay()

    # -- persistence -------------------------------------------------------------------------------------
    def _load(self) -> None:
        data = json.loads(self.path.read_text())
        self.groups, self.resources = data.get("groups", {}), data.get("resources", {})
        self.operations, self.counters = data.get("operations", {}), data.get("counters", {})
        self.seq = data.get("seq", 0)

    def _replay(self) -> None:
        """Apply the journaled changes the snapshot does not hold yet, then settle what was in flight."""
        rotated = rotated_journals(self.path)
        changed = False
        for journal in [*rotated, journal_path(self.path)]:
            if not journal.exists():
                continue
            for line in journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # a line cut short by the crash: nothing after it was written
                if entry["s"] <= self.seq:
                    continue
                table = getattr(self, self.KINDS[entry["t"]])
                if entry["v"] is None:
                    table.pop(entry["k"], None)
                else:
                    table[entry["k"]] = entry["v"]
                self.seq, changed = entry["s"], True
        self._settle()
        changed |= self._key_groups_by_subscription()
        self._index()
        if changed or rotated:
            self._dirty.set()
            self.flush()  # one snapshot holding it all; the journals it replaces go

    def _settle(self) -> None:
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

    def _key_groups_by_subscription(self) -> bool:
        """A store written before there were several subscriptions keyed groups by name alone: key them by
        subscription and name (the subscription read from each group's id). True when any was re-keyed."""
        old = [key for key, rec in self.groups.items() if "/" not in key and "id" in rec["body"]]
        for key in old:
            rec = self.groups.pop(key)
            self.groups[group_key(rec["body"]["id"].split("/")[2], key)] = rec
        return bool(old)

    def _index(self) -> None:
        self._types, self._sub_types = {}, {}
        for key, rec in self.resources.items():
            self._types.setdefault(_type_of(rec), {})[key] = rec
            self._sub_types.setdefault((_sub_of(key), _type_of(rec)), {})[key] = rec

    def mark_dirty(self, resource: str | None = None, group: str | None = None, op: str | None = None) -> None:
        """Something changed: the next flush writes the snapshot. The record named (a resource id, a group name,
        an operation id; call after the change, under the lock that guarded it) is journaled now, as it is, or as
        gone."""
        self._dirty.set()
        if not self.path:
            return
        with self.lock:  # (re-entrant: callers mostly hold it already) one writer, lines in `seq` order
            for kind, key in (("r", resource), ("g", group), ("o", op)):
                if key is None:
                    continue
                key = key.lower() if kind != "o" else key
                self.seq += 1
                line = json.dumps({"s": self.seq, "t": kind, "k": key,
                                   "v": getattr(self, self.KINDS[kind]).get(key)})
                if self._journal is None:
                    self._journal = open(journal_path(self.path), "a", buffering=1)  # line-buffered: written per line
                self._journal.write(line + "\n")

    def flush(self) -> None:
        if not self.path or not self._dirty.is_set():
            return
        with self._flushing:  # one writer of the snapshot at a time
            with self.lock:
                self._dirty.clear()
                seq = self.seq
                text = json.dumps({"groups": self.groups, "resources": self.resources,
                                   "operations": self.operations, "counters": self.counters, "seq": seq})
                if self._journal is not None:  # later changes go to a new journal; this one goes with the snapshot
                    self._journal.close()
                    self._journal = None
                    os.replace(journal_path(self.path), journal_path(self.path, seq))
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.path)
            for old in rotated_journals(self.path):
                if int(old.suffix[1:]) <= seq:
                    old.unlink(missing_ok=True)

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
            self._types.setdefault(_type_of(rec), {})[rid.lower()] = rec
            self._sub_types.setdefault((_sub_of(rid.lower()), _type_of(rec)), {})[rid.lower()] = rec
            self.mark_dirty(resource=rid)
            return rec

    def delete(self, rid: str) -> None:
        with self.lock:
            rec = self.resources.pop(rid.lower(), None)
            if rec is not None:
                self._types.get(_type_of(rec), {}).pop(rid.lower(), None)
                self._sub_types.get((_sub_of(rid.lower()), _type_of(rec)), {}).pop(rid.lower(), None)
                self.recently_deleted[rid.lower()] = (time.monotonic(), rec["body"])
            self.mark_dirty(resource=rid)

    def lagging(self, lag: float, rg: str | None = None) -> list[dict]:
        """Bodies of resources deleted less than `lag` seconds ago (and not created again since), optionally only
        those of one group; older ones are forgotten."""
        now = time.monotonic()
        prefix = f"/resourcegroups/{rg.lower()}/" if rg is not None else ""
        out = []
        with self.lock:
            for key, (when, body) in list(self.recently_deleted.items()):
                if now - when >= lag:
                    del self.recently_deleted[key]
                elif key not in self.resources and prefix in key:
                    out.append(body)
        return out

    def all_of_type(self, arm_type: str) -> list[dict]:
        """Records of one type in every subscription (the store itself sees them all)."""
        return self.of_type(arm_type)

    def of_type(self, arm_type: str, rg: str | None = None, sub: str | None = None) -> list[dict]:
        """Records of one type (optionally in one group; of one subscription, or of all), in creation order."""
        index = self._types.get(arm_type.lower(), {}) if sub is None else \
            self._sub_types.get((sub.lower(), arm_type.lower()), {})
        records = list(index.values())  # one C call: safe beside a writer
        if rg is None:
            return records
        return [rec for rec in records if group_of(rec["body"]["id"]).lower() == rg.lower()]

    def in_group(self, rg: str) -> list[dict]:
        prefix = f"/resourcegroups/{rg.lower()}/"
        return [rec for key, rec in self.resources.items() if prefix in key]

    def every_resource(self) -> list[dict]:
        """Every resource record (the store itself sees every subscription's)."""
        return list(self.resources.values())


def _sub_of(key: str) -> str:
    """The subscription of a lower-case resource id."""
    parts = key.split("/")
    return parts[2] if len(parts) > 2 else ""


def _type_of(rec: dict) -> str:
    return (rec["body"].get("type") or "").lower()


def group_of(rid: str) -> str:
    parts = rid.split("/")
    return parts[parts.index(next(p for p in parts if p.lower() == "resourcegroups")) + 1]


def name_of(rid: str) -> str:
    return rid.rstrip("/").split("/")[-1]


class Scoped:
    """One subscription's view of the store, as a request's handlers see it: its resource groups (keyed by name,
    as before there were several subscriptions) and its resources; everything else passes through to the store.
    What the whole cloud shares (the public address range, MAC addresses on the one bridge) is read with
    `all_of_type`."""

    def __init__(self, store: Store, sub: str):
        self.root, self.sub = store, sub
        self.groups = _Groups(store.groups, sub)
        self._prefix = f"/subscriptions/{sub.lower()}/"

    def __getattr__(self, name: str):
        return getattr(self.root, name)

    def of_type(self, arm_type: str, rg: str | None = None) -> list[dict]:
        return self.root.of_type(arm_type, rg, self.sub)

    def all_of_type(self, arm_type: str) -> list[dict]:
        return self.root.of_type(arm_type)

    def in_group(self, rg: str) -> list[dict]:
        prefix = f"{self._prefix}resourcegroups/{rg.lower()}/"
        return [rec for key, rec in list(self.root.resources.items()) if key.startswith(prefix)]

    def every_resource(self) -> list[dict]:
        """This subscription's resources only (ARM's subscription-wide `/resources` lists nothing of another's)."""
        return [rec for key, rec in list(self.root.resources.items()) if key.startswith(self._prefix)]

    def lagging(self, lag: float, rg: str | None = None) -> list[dict]:
        return [b for b in self.root.lagging(lag, rg) if b["id"].lower().startswith(self._prefix)]

    def mark_dirty(self, resource: str | None = None, group: str | None = None, op: str | None = None) -> None:
        self.root.mark_dirty(resource, group_key(self.sub, group) if group is not None else None, op)


def group_key(sub: str, rg: str) -> str:
    """A resource group's key in the store: its subscription and name (lower-case); groups of two subscriptions
    may have the same name, as on Azure."""
    return f"{sub}/{rg}".lower()


class _Groups(MutableMapping):
    """The resource groups of one subscription, keyed by lower-case name."""

    def __init__(self, groups: dict, sub: str):
        self._all, self._prefix = groups, f"{sub.lower()}/"

    def __getitem__(self, name: str) -> dict:
        return self._all[self._prefix + name.lower()]

    def __setitem__(self, name: str, rec: dict) -> None:
        self._all[self._prefix + name.lower()] = rec

    def __delitem__(self, name: str) -> None:
        del self._all[self._prefix + name.lower()]

    def __iter__(self):
        return (key[len(self._prefix):] for key in list(self._all) if key.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)
