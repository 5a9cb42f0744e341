"""Waiting for many resources at once with few reads: one list call per resource kind per tick answers every
pending wait (real ARM refills reads at 25/s per region; polling each of 100 VMs every second would not fit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TERMINAL_OK = {"succeeded"}
TERMINAL_BAD = {"failed", "canceled"}


class UnreadableState(Exception):
    """A listed resource without properties.provisioningState: every resource flwrazure waits for has one, so the
    SDK's models are not REST-shaped (azure-mgmt-* older than pyproject's floors give snake_case keys). Defaulting
    to Succeeded here once reported everything ready at once."""

    def __init__(self, kind: str, name: str):
        super().__init__(f"{kind} {name}: the Azure SDK's answer has no properties.provisioningState (are "
                         "azure-mgmt-compute/-network/-resource older than flwrazure requires? reinstall flwrazure)")


def provisioning_state(kind: str, name: str, body: dict) -> str:
    """The resource's provisioningState, lower-case; UnreadableState when the body has none."""
    state = (body.get("properties") or {}).get("provisioningState")
    if not isinstance(state, str):
        raise UnreadableState(kind, name)
    return state.lower()


class WaitFailed(Exception):
    def __init__(self, kind: str, name: str, state: str, body: dict | None):
        super().__init__(f"{kind} {name} ended {state}")
        self.kind, self.name, self.state, self.body = kind, name, state, body


class Waiter:
    """`interval` is the shortest pause between ticks. The reads themselves are paced by the SDK pipeline from
    ARM's remaining-count headers (azure/pacing.py: fast while the read bucket is full, at its refill rate when it
    runs low); `read_budget`, when given, also caps the rate: a tick that lists k kinds then waits k/read_budget."""

    def __init__(self, listers: dict[str, Callable[[], list[dict]]], interval: float, timeout: float = 3600,
                 read_budget: float | None = None):
        self.listers, self.interval, self.timeout = listers, interval, timeout
        self.read_budget = read_budget
        self._lock = threading.Condition()
        self._pending: dict[tuple[str, str, str], dict] = {}  # (kind, name, mode) -> slot
        self._thread: threading.Thread | None = None
        self.reads = 0

    def ready(self, kind: str, name: str) -> dict:
        """Block until the resource's provisioningState is Succeeded; raise WaitFailed on Failed/Canceled."""
        return self._wait(kind, name, "ready")

    def gone(self, kind: str, name: str) -> None:
        self._wait(kind, name, "gone")

    def _wait(self, kind: str, name: str, mode: str) -> dict:
        key = (kind, name.lower(), mode)
        with self._lock:
            slot = self._pending.setdefault(key, {"done": False, "result": None, "error": None, "misses": 0})
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="flwrazure-waiter")
                self._thread.start()
            self._lock.notify_all()
            deadline = time.monotonic() + self.timeout
            while not slot["done"]:
                if not self._lock.wait(timeout=max(0.0, deadline - time.monotonic())) and \
                        time.monotonic() >= deadline:
                    raise TimeoutError(f"{kind} {name} not {mode} after {self.timeout:.0f} s")
            self._pending.pop(key, None)
        if slot["error"]:
            raise slot["error"]
        return slot["result"]

    def abort(self) -> None:
        """Fail every pending wait (Ctrl-C): the chains stop before their next request."""
        self._resolve_all(None, InterruptedError("interrupted"))

    def _loop(self) -> None:
        while True:
            with self._lock:
                kinds = sorted({k for (k, _, _), s in self._pending.items() if not s["done"]})
                if not kinds:
                    self._thread = None
                    return
            started = time.monotonic()
            for kind in kinds:
                try:
                    listing = {item["name"].lower(): item for item in self.listers[kind]()}
                    self.reads += 1
                except Exception as exc:  # a failed read fails the waits of that kind, with its cause
                    self._resolve_all(kind, exc)
                    continue
                self._resolve(kind, listing)
            floor = len(kinds) / self.read_budget if self.read_budget else 0.0
            pause = max(self.interval, floor) - (time.monotonic() - started)
            time.sleep(max(pause, 0.0))

    def _resolve(self, kind: str, listing: dict) -> None:
        with self._lock:
            for (k, name, mode), slot in self._pending.items():
                if k != kind or slot["done"]:
                    continue
                body = listing.get(name)
                if mode == "gone":
                    if body is None:
                        slot["done"] = True
                    continue
                if body is None:
                    slot["misses"] += 1
                    if slot["misses"] >= 20:  # created moments ago but never listed: something deleted it
                        slot["error"], slot["done"] = WaitFailed(kind, name, "missing", None), True
                    continue
                try:
                    state = provisioning_state(kind, name, body)
                except UnreadableState as exc:
                    slot["error"], slot["done"] = exc, True
                    continue
                if state in TERMINAL_OK:
                    slot["result"], slot["done"] = body, True
                elif state in TERMINAL_BAD:
                    slot["error"], slot["done"] = WaitFailed(kind, name, state, body), True
            self._lock.notify_all()

    def _resolve_all(self, kind: str | None, exc: Exception) -> None:
        with self._lock:
            for (k, _, _), slot in self._pending.items():
                if (kind is None or k == kind) and not slot["done"]:
                    slot["error"], slot["done"] = exc, True
            self._lock.notify_all()
