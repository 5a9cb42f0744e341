"""A fixed CPU share per sandbox VM (`local up --vm-cpu F`): an Azure VM's vCPUs are its own, so how long its work
takes does not depend on how many other VMs run. Here all VMs share this machine's cores; capping each VM's
processes at F of a core (a cgroup with a CFS quota) makes timings independent of the VM count, as long as
F x VMs <= cores. cgroup v1 (cpu controller) and v2 (cpu.max) are both handled."""

from __future__ import annotations

from pathlib import Path

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
PREFIX = "flwrazure-vm-"


def _root() -> tuple[Path, str] | None:
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, "v1"
    controllers = V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return V2, "v2"
    return None


def available() -> str | None:
    """None when CPU caps can be set here, else why not."""
    return None if _root() is not None else "no cgroup cpu controller on this machine"


def create(name: str, fraction: float) -> Path:
    root, version = _root()  # type: ignore[misc]
    group = root / f"{PREFIX}{name}"
    group.mkdir(exist_ok=True)
    quota = max(1000, int(fraction * PERIOD_US))
    if version == "v1":
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(quota))
    else:
        sub = root / "cgroup.subtree_control"
        if "cpu" not in sub.read_text().split():
            sub.write_text("+cpu")
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
    return group


def wrap(group: Path, argv: list[str]) -> list[str]:
    """argv, started inside `group` (the shell moves itself there, then execs: no process escapes the cap)."""
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *argv]


def remove(group: Path) -> None:
    try:
        group.rmdir()
    except OSError:
        pass  # still has processes (they are being killed) or already gone


def cleanup(tag: str) -> list[str]:
    """Empty leftovers of a crashed local cloud whose names carry `tag`."""
    found = _root()
    if found is None:
        return []
    removed = []
    for group in found[0].glob(f"{PREFIX}{tag}*"):
        remove(group)
        if not group.exists():
            removed.append(f"cgroup {group.name}")
    return removed
