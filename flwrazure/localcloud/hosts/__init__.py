"""The host driver: what turns an emulated VM into something you can log into. The ARM emulator calls it when
a VM is created, started, stopped, restarted or deleted, and when network rules change; each call runs inside the
operation's worker, so a slow boot makes the operation slow, as on Azure. NullDriver (the default) does nothing."""

from __future__ import annotations


class NullDriver:
    name = "none"

    def __init__(self, reason: str | None = None):
        self.reason = reason  # why there are no sandbox hosts (for `local status`)

    def create(self, ctx, vm: dict) -> None:
        """Boot a new VM's host."""

    def ready_budget(self) -> float:
        """Seconds a new VM takes from boot to its provisioning agent's `ready` (the end of its create)."""
        return 0.0

    def wait_ready(self, ctx, vm: dict, timeout: float = 300.0) -> bool:
        """Block until a just created VM's agent has signalled `ready`; True when it did."""
        return True

    def start(self, ctx, vm: dict) -> None:
        """Boot a stopped VM's host, its disk intact."""

    def stop(self, ctx, vm: dict) -> None:
        """Stop a VM's host (deallocate or power off): its processes end."""

    def restart(self, ctx, vm: dict) -> None:
        self.stop(ctx, vm)
        self.start(ctx, vm)

    def delete(self, ctx, vm: dict) -> None:
        """Remove a VM's host and its disk."""

    def network_changed(self, ctx) -> None:
        """NSG rules or associations changed: re-apply packet filters."""

    def close(self) -> None:
        """The local cloud is going down: stop every host."""
