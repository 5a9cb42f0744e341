"""scale, decided without I/O: which clients join or leave, what their SuperNodes' node config is, when shrinking
must wait for a run, and which registrations must be withdrawn.

Names stay 1..N: growing adds the next numbers, shrinking removes the highest. `partition-id` is the client's
number - 1 and never changes. `num-partitions` is fixed in each SuperNode's command line, so changing it means
restarting that SuperNode; scale does not do that by default (existing SuperNodes keep running untouched and keep
the `num-partitions` they were started with; joining ones get the new N). `--repartition` restarts every
SuperNode whose `num-partitions` differs from N so all agree — only between runs (refused while one is in
progress, unless --force)."""

from __future__ import annotations

from dataclasses import dataclass

from flwrazure.plan import names, versions

ACTIVE_RUN = ("pending", "starting", "running")

# Which SuperNodes a SuperLink gives a new run (docs/flower-versions.md, "Which SuperNodes a new run is offered"):
# those it counts online. A SuperNode stopped with SIGTERM says goodbye (deactivates, or deletes its node before
# 1.23) and is not offered a second later; one that dies silently (killed, its VM deleted) is offered until
# HEARTBEAT_PATIENCE x its heartbeat interval after its last heartbeat: 2 x 30 s in every supported release.
HEARTBEAT_INTERVAL = 30.0
HEARTBEAT_PATIENCE = 2
GRACE = HEARTBEAT_PATIENCE * HEARTBEAT_INTERVAL
BEFORE_DELETE = 20.0  # s to wait for stopped SuperNodes to be taken off before deleting their VMs anyway
MARGIN = 10.0  # s beyond the grace: a heartbeat in flight, clocks, a slow SuperLink
NO_ANSWER_TRIES = 3  # `flwr supernode list` failing this often in a row: the grace is waited instead


@dataclass(frozen=True)
class Change:
    current: int
    target: int
    joining: tuple[str, ...]  # VM names
    leaving: tuple[str, ...]  # VM names, highest number first

    @property
    def grows(self) -> bool:
        return self.target > self.current

    @property
    def shrinks(self) -> bool:
        return self.target < self.current


def change(cluster: str, current: int, target: int, existing: set[str] | None = None) -> Change:
    """current: clients recorded; existing: client VM names that exist (a shrink interrupted after deleting some
    VMs leaves fewer). Leaving: every client numbered above target that still exists (or is recorded)."""
    joining = tuple(names.client(cluster, i).vm for i in range(current + 1, target + 1))
    top = max([current, *[_index(v) for v in (existing or set())]])
    leaving = tuple(names.client(cluster, i).vm for i in range(top, target, -1)
                    if existing is None or names.client(cluster, i).vm in existing or i <= current)
    return Change(current, target, joining, leaving)


def _index(vm: str) -> int:
    tail = vm.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def partitions_after(recorded: dict[str, int], staying: list[str], target: int, repartition: bool) -> dict[str, int]:
    """num-partitions per staying SuperNode after scaling: what it was started with (no restart), or N for all
    with --repartition. Joining SuperNodes are absent here: `start` gives them N."""
    if repartition:
        return {}
    return {vm: int(recorded[vm]) for vm in staying if vm in recorded}


def restarted_by_repartition(recorded: dict[str, int], staying: list[str], target: int) -> list[str]:
    return [vm for vm in staying if int(recorded.get(vm, target)) != target]


def mixed_partitions(partitions: dict[str, int], target: int) -> dict[int, list[str]]:
    """num-partitions -> SuperNodes started with it, when they do not all use `target` (else {})."""
    groups: dict[int, list[str]] = {}
    for vm, n in sorted(partitions.items(), key=lambda kv: _index(kv[0])):
        groups.setdefault(int(n), []).append(vm)
    return {} if set(groups) <= {target} else groups


def active_runs(runs: list[dict]) -> list[str]:
    """Run ids of `flwr ls --format json` runs that are not finished (pending, starting, running)."""
    out = []
    for r in runs:
        status = str(r.get("status", "")).lower()
        if status.split(":")[0] in ACTIVE_RUN:
            out.append(str(r.get("run-id", r.get("run_id", "?"))))
    return out


def unregister_plan(registered: dict[str, str], leaving: tuple[str, ...]) -> tuple[dict[str, int], list[str]]:
    """(VM -> node id to unregister, VMs registered under an unknown id) for the leaving SuperNodes."""
    ids, unknown = {}, []
    for vm in leaving:
        node = registered.get(vm)
        if node is None:
            continue
        if str(node).isdigit():
            ids[vm] = int(node)
        else:
            unknown.append(vm)
    return ids, unknown



@dataclass(frozen=True)
class Drain:
    """How a shrink makes sure the SuperLink no longer offers the leaving SuperNodes to new runs."""
    confirm: bool  # the SuperLink can be asked (`flwr supernode list`, 1.23+): poll until none is listed online
    before_delete: float  # s to poll after stopping (and unregistering) them, before their VMs are deleted
    after_delete: float  # s to poll after deleting their VMs (a SuperNode that did not stop dies with its VM)
    grace: float  # s a silently dead SuperNode may still be offered: waited when it cannot be confirmed


def drain(version: str) -> Drain:
    """1.23+ list their SuperNodes with the status that decides what a new run gets: confirm. 1.21/1.22 have no
    way to ask: wait the heartbeat grace from the moment the last leaving SuperNode stopped."""
    if versions.supernode_cli(version):
        return Drain(True, BEFORE_DELETE, GRACE + MARGIN, GRACE)
    return Drain(False, 0.0, 0.0, GRACE)


def still_offered(listed: list[dict], leaving_ids: dict[str, str], leaving: tuple[str, ...],
                  staying: int) -> list[str]:
    """The leaving VMs whose SuperNodes the SuperLink still lists online (`flwr supernode list --format json`),
    i.e. would still give a new run. A VM with a recorded node id (secure clusters) is looked up by it; the others
    (insecure clusters register themselves, under ids flwrazure never sees) by count: online SuperNodes beyond
    the `staying` clients, other than the identified leaving ones, are theirs."""
    online = {str(n.get("node-id")) for n in listed if n.get("status") == "online"}
    known = {vm: str(leaving_ids[vm]) for vm in leaving if vm in leaving_ids}
    offered = [vm for vm in leaving if vm in known and known[vm] in online]
    unidentified = [vm for vm in leaving if vm not in known]
    excess = len(online - set(known.values())) - staying
    return offered + (unidentified[:excess] if excess > 0 else [])


def grace_left(stopped_at: float, now: float, grace: float = GRACE) -> float:
    """Seconds until a SuperNode that stopped (or died) at `stopped_at` can no longer be offered."""
    return max(0.0, stopped_at + grace - now)
