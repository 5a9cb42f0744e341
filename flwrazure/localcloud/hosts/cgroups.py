"""A VM's own resources: its size's memory (the catalog's MemoryGB) as a memory limit with no swap, as on an Azure
VM, and optionally a fixed CPU share (`local up --vm-cpu F`: an Azure VM's vCPUs are its own, so how long its work
takes does not depend on how many other VMs run; here all VMs share this machine's cores).

One cgroup per VM and controller, made under the local cloud's own cgroup (not the root: a container's limits stay
inside its parent's). cgroup v1 (per-controller hierarchies) and v2 (one unified tree) are both handled.

Every VM also gets a group of its own in the trees where systemd-nspawn makes its `supervisor` and `payload`
groups (v1: the name=systemd tree and, in hybrid mode, the unified one; v2: the unified tree). nspawn makes them
inside the cgroup it was started in: before, every VM was started in the local cloud's own, so every VM's systemd
ran its units in one shared /payload/system.slice/<unit> — one VM stopping a unit killed the same unit's processes
in the others, and one VM removing a unit's group as another attached to it failed that unit with status=219/CGROUP
(found as systemd-user-sessions.service failing on a resumed VM: /run/nologin stayed, and sshd hung up on every
user but root — the "transport shut down or saw EOF" login failure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MOUNT = Path("/sys/fs/cgroup")
V1 = MOUNT / "cpu"  # kept for callers that look for leftovers
V2 = MOUNT
PERIOD_US = 100_000
PREFIX = "flwrazure-vm-"


def version() -> str | None:
    if (MOUNT / "cgroup.controllers").exists():
        return "v2"
    if (MOUNT / "memory").is_dir() or (MOUNT / "cpu").is_dir():
        return "v1"
    return None


def _own(controller: str, proc_cgroup: str | None = None) -> str:
    """This process's cgroup path in one controller's hierarchy ("" for the root)."""
    text = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
    for line in text.splitlines():
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and names == ""):
            return path.strip("/")
    return ""


def parent(controller: str) -> Path | None:
    """Where this local cloud's VM groups of one controller go, None when the controller is missing."""
    v = version()
    if v == "v1":
        root = MOUNT / controller
        if not root.is_dir():
            return None
        own = root / _own(controller)
        return own if own.is_dir() else root
    if v == "v2":
        if controller not in (MOUNT / "cgroup.controllers").read_text().split():
            return None
        return MOUNT  # v2 forbids processes in a group that delegates controllers: VM groups go at the top
    return None


def available(controller: str = "cpu") -> str | None:
    """None when limits of this controller can be set here, else why not."""
    return None if parent(controller) is not None else f"no cgroup {controller} controller on this machine"


@dataclass
class Group:
    name: str
    paths: list[Path] = field(default_factory=list)


def systemd_trees() -> list[Path]:
    """Where a VM's systemd (through nspawn) makes its groups: this process's group in the name=systemd tree and
    the unified tree (v1; mounted here as nspawn itself would when missing), or in the one v2 tree."""
    v = version()
    if v == "v2":
        return [MOUNT / _own("")]
    if v != "v1":
        return []
    trees = []
    named = MOUNT / "systemd"
    if not (named / "cgroup.procs").exists():
        _mount(named, ["-t", "cgroup", "-o", "none,name=systemd", "cgroup"])
    if (named / "cgroup.procs").exists():
        trees.append(named / _own("name=systemd"))
    unified = MOUNT / "unified"
    if not (unified / "cgroup.procs").exists():
        _mount(unified, ["-t", "cgroup2", "-o", "nsdelegate", "cgroup2"])
    if (unified / "cgroup.procs").exists():
        trees.append(unified / _own(""))
    return trees


def _mount(where: Path, args: list[str]) -> None:
    import subprocess

    try:
        where.mkdir(exist_ok=True)
        subprocess.run(["mount", *args, str(where)], capture_output=True, check=False)
    except OSError:
        pass


def _enable_v2(root: Path, controller: str) -> None:
    sub = root / "cgroup.subtree_control"
    if controller not in sub.read_text().split():
        sub.write_text(f"+{controller}")


def create(name: str, cpu: float | None = None, memory_bytes: int | None = None) -> Group:
    """A VM's group(s): CPU capped at `cpu` cores, memory at `memory_bytes` with no swap; and its own group in
    the trees its systemd uses (always: see the module's docstring)."""
    group = Group(name)
    for tree in systemd_trees():
        path = tree / f"{PREFIX}{name}"
        if path not in group.paths:
            _fresh(path)
            group.paths.append(path)
    if cpu:
        root = parent("cpu")
        path = root / f"{PREFIX}{name}"  # type: ignore[operator]
        _fresh(path)
        quota = max(1000, int(cpu * PERIOD_US))
        if version() == "v1":
            (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            _enable_v2(root, "cpu")  # type: ignore[arg-type]
            (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        group.paths.append(path)
    if memory_bytes:
        root = parent("memory")
        path = root / f"{PREFIX}{name}"  # type: ignore[operator]
        if path not in group.paths:
            _fresh(path)
            group.paths.append(path)
        if version() == "v1":
            (path / "memory.limit_in_bytes").write_text(str(memory_bytes))
            memsw = path / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # no swap beyond the limit, as on an Azure VM (no swap by default)
                memsw.write_text(str(memory_bytes))
        else:
            _enable_v2(root, "memory")  # type: ignore[arg-type]
            (path / "memory.max").write_text(str(memory_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
    return group


def memory_limit(group: Group) -> int | None:
    """The memory limit read back from the kernel."""
    for path in group.paths:
        for name in ("memory.limit_in_bytes", "memory.max"):
            if (path / name).exists():
                value = (path / name).read_text().strip()
                return None if value == "max" else int(value)
    return None


def wrap(group: Group, argv: list[str]) -> list[str]:
    """argv, started inside the group(s) (the shell moves itself there, then execs: no process escapes them)."""
    if not group.paths:
        return argv
    moves = " && ".join(f'echo $$ > "{p}/cgroup.procs"' for p in group.paths)
    return ["/bin/sh", "-c", f'{moves} && exec "$@"', "vm", *argv]


def _rmtree(path: Path) -> bool:
    """Remove a cgroup and the groups inside it (nspawn's supervisor/payload, the VM's units), deepest first;
    False when one still holds processes."""
    import os

    ok = True
    if not path.is_dir():
        return True
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                ok = False
    try:
        path.rmdir()
    except OSError:
        ok = False
    return ok


def _kill_members(path: Path) -> None:
    """SIGKILL what is still in a stopped VM's groups (its own processes, exiting late), so they can go."""
    import os
    import signal

    for procs in path.rglob("cgroup.procs"):
        try:
            pids = [int(p) for p in procs.read_text().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _empty(path: Path, wait: float) -> bool:
    """Remove one group with its subtree, killing what is still in it, retried up to `wait` seconds."""
    import time

    deadline = time.monotonic() + wait
    while not _rmtree(path):
        if time.monotonic() >= deadline:
            return False
        _kill_members(path)
        time.sleep(0.1)
    return True


def _fresh(path: Path) -> None:
    """An empty group at `path`. A group left by a VM of the same name (the same VM re-booted after a local
    cloud crashed) still holds its dead systemd's subtree — a new systemd would start its units in those groups
    and never finish booting — so it is emptied and made anew."""
    if path.is_dir():
        _empty(path, 10.0)
    path.mkdir(exist_ok=True)


def remove(group: Group, wait: float = 10.0) -> None:
    """Remove a stopped VM's groups with their subtrees. The VM's processes may take a moment to leave them (its
    systemd's units are groups of their own now): wait for that, killing stragglers, up to `wait` seconds."""
    import time

    deadline = time.monotonic() + wait
    pending = list(group.paths)
    while True:
        pending = [p for p in pending if not _rmtree(p)]
        if not pending or time.monotonic() >= deadline:
            return  # what is still there is found by cleanup() (local up after a crash) and the leak checks
        for path in pending:
            _kill_members(path)
        time.sleep(0.1)


def leftovers(tag: str) -> list[Path]:
    found = []
    roots = [parent(c) for c in ("cpu", "memory")] + ([t for t in _mounted_trees()])
    for root in roots:
        if root is not None:
            found += [g for g in root.glob(f"{PREFIX}{tag}*") if g not in found]
    return found


def _mounted_trees() -> list[Path]:
    """systemd_trees() without mounting anything (looking for leftovers must not change the machine)."""
    v = version()
    if v == "v2":
        return [MOUNT / _own("")]
    trees = []
    if v == "v1":
        for where, ctl in ((MOUNT / "systemd", "name=systemd"), (MOUNT / "unified", "")):
            if (where / "cgroup.procs").exists():
                trees.append(where / _own(ctl))
    return trees


def cleanup(tag: str) -> list[str]:
    """Empty leftovers of a crashed local cloud whose names carry `tag`."""
    removed = []
    for path in leftovers(tag):
        if _empty(path, 5.0):
            removed.append(f"cgroup {path.name}")
    return removed
