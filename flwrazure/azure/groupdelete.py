"""Deleting a resource group, and waiting for one that is being deleted, with a deadline.

Azure deletes a group asynchronously (202 + Location, polled until 200, or 409 when it failed). A failed deletion
(`ResourceGroupDeletionBlocked`: some resource in it could not be deleted) rolls the group back to `Succeeded` with
whatever was left, so "wait until the group is gone" would wait for ever: every wait here either sees the
operation's own verdict or notices the roll-back, and gives up at a deadline."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flwrazure.azure import inventory
from flwrazure.azure.errors import NEXT_STEP, translate
from flwrazure.azure.target import Target
from flwrazure.azure.waiter import watch_floor
from flwrazure.errors import FlwrazureError
from flwrazure.workstation import settings

DEFAULT_TIMEOUT = 1800.0  # Azure takes ~1-2 min for a small group, much longer for many VMs; 30 min is "stuck"


def timeout() -> float:
    """Seconds to wait for a group deletion ($FLWRAZURE_GROUP_DELETE_TIMEOUT, default 30 min)."""
    return max(1.0, settings.seconds("FLWRAZURE_GROUP_DELETE_TIMEOUT", DEFAULT_TIMEOUT))


@dataclass
class Deletion:
    """A group deletion under way: the SDK's poller of Azure's operation (Location, Retry-After) and the DELETE's
    own Retry-After (seconds, None when absent)."""
    poller: object
    retry_after: float | None


def begin(target: Target, rg: str) -> Deletion:
    """Start deleting the group; wait_gone follows the returned deletion."""
    from flwrazure.azure.pacing import retry_after

    hints: list[float | None] = []

    def keep_retry_after(pipeline_response) -> None:
        if not hints:  # the DELETE's answer comes first, its polls after
            hints.append(retry_after(pipeline_response.http_response.headers))

    try:
        poller = target.resources.resource_groups.begin_delete(rg, polling_interval=max(target.poll, 0.05),
                                                               raw_response_hook=keep_retry_after)
    except Exception as exc:
        raise translate(exc, f"resource group {rg}") from exc
    return Deletion(poller, hints[0] if hints else None)


def _too_slow(rg: str, seconds: float, retry: str) -> FlwrazureError:
    return FlwrazureError(f"resource group {rg}: still being deleted after {seconds:.0f} s. Next: check it in the "
                          f"Azure portal (or `az group show -n {rg}`), then {retry} (to wait longer, set "
                          "FLWRAZURE_GROUP_DELETE_TIMEOUT in seconds).")


def _after_success(target: Target, rg: str, every: float, reads: int = 3) -> dict | None:
    """Azure reported the deletion done while a read still showed the group: read it again (a few times, `every`
    apart). None once it is gone; the group when it is still there (then it is a group created since)."""
    group = None
    for i in range(reads):
        if i:
            time.sleep(every)
        try:
            group = inventory.group(target, rg)
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
        if group is None:
            return None
    return group


def wait_gone(target: Target, rg: str, deletion: Deletion | None = None, limit: float | None = None,
              retry: str = "re-run `flwrazure teardown`") -> dict | None:
    """Return once the group no longer exists (None). Raise (naming the group, Azure's code and the next step) if
    its deletion failed, or if it is still there after `limit` seconds.

    A group read that is not Deleting means a roll-back only when Azure's operation says the deletion failed.
    When the operation succeeded, that read came before the deletion showed, or from a cache, or a group of that
    name was created again in between: the group is read again, and a group still there is returned (it is not
    the one deleted).

    With `deletion` (Azure's own operation, polled as its Retry-After says: 15 s) the verdict comes from there, while
    the group itself is read every poll interval, as create-cluster reads what it builds: its 404 ends the wait when
    the deletion ends, not at the next Retry-After (a 78 s deletion was seen at 90 s). Those reads are no more
    frequent than a fifteenth of the DELETE's Retry-After (on Azure: every 2 s, the poll interval; on a local
    cloud running Azure's timing 20 times faster, every 0.05 s)."""
    limit = timeout() if limit is None else limit
    poller = deletion.poller if deletion is not None else None
    deadline = time.monotonic() + limit
    verdict: dict = {}
    decided = threading.Event()
    every = max(target.poll, 0.2)
    if poller is not None:
        every = max(target.poll, 0.05, watch_floor(deletion.retry_after))  # reads between the operation's polls

        def follow() -> None:
            try:
                poller.result(timeout=limit)
            except Exception as exc:  # handed to the waiting thread
                verdict["error"] = exc
            decided.set()

        threading.Thread(target=follow, daemon=True, name="flwrazure-group-delete").start()
    while True:
        if "error" in verdict:
            raise translate(verdict["error"], f"resource group {rg}") from verdict["error"]
        try:
            group = inventory.group(target, rg)
        except Exception as exc:
            raise translate(exc, f"resource group {rg}") from exc
        if group is None:
            return
        state = (group.get("properties") or {}).get("provisioningState", "")
        if state != "Deleting":  # Azure rolled the group back (the deletion failed), or this read is stale
            if poller is not None and decided.wait(max(0.0, deadline - time.monotonic())):
                if "error" in verdict:
                    continue  # Azure's own code and message, raised above
                return _after_success(target, rg, every)
            raise FlwrazureError(f"resource group {rg}: its deletion failed (Azure rolled it back to "
                                 f"provisioningState {state}, keeping what it could not delete). Next: "
                                 f"{NEXT_STEP['ResourceGroupDeletionBlocked']}.")
        if time.monotonic() >= deadline:
            raise _too_slow(rg, limit, retry)
        pause = min(every, max(0.0, deadline - time.monotonic()))
        if poller is not None and not decided.is_set():
            decided.wait(pause)  # a verdict ends the pause
        else:
            time.sleep(pause)
