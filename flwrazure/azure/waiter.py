"""Waiting for many resources at once with few reads: one list call per resource kind per tick answers every
pending wait (real ARM refills reads at 25/s per region; polling each of 100 VMs every second would not fit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

TERMINAL_OK = {"succeeded"}
TERMINAL_BAD = {"failed", "canceled"}


def watch_floor(retry_after: float | None) -> float:
    """The shortest pause between reads of a resource that Azure asked to be left alone for `retry_after` seconds:
    a fifteenth of it (0 without a hint). Reading the resource itself (not the operation Azure named) sees its end
    when it comes; this keeps those reads from outnumbering the polls Azure asked for by more than 15 to 1."""
    return (retry_after or 0.0) / 15


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
    runs low); `read_budget`, when given, also caps the rate: a tick that lists k kinds then waits k/read_budget.

    Each wait has an Event of its own, set only when its resource is resolved: a tick wakes just the waits it
    answered (waking all of 300 waiting chains on every tick cost more CPU than the lists themselves). The kinds a
    tick needs are listed at once, so a tick takes as long as its slowest list."""

    def __init__(self, listers: dict[str, Callable[[], list[dict]]], interval: float, timeout: float = 3600,
                 read_budget: float | None = None):
        self.listers, self.interval, self.timeout = listers, interval, timeout
        self.read_budget = read_budget
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], dict] = {}  # (kind, name, mode) -> slot
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.reads = 0

    def ready(self, kind: str, name: str, not_before: float | None = None) -> dict:
        """Block until the resource's provisioningState is Succeeded; raise WaitFailed on Failed/Canceled.
        not_before (time.monotonic()): no list is spent on this wait before then — the Retry-After Azure sent with
        the write (a VM PUT: 10 s), so a hundred VMs being created cost no reads while the rest is still built.
        While such a wait is pending, ticks are also no more frequent than a fifteenth of that Retry-After (a local
        cloud running Azure's timing at scale 1 was listed every 0.05 s; on Azure the interval, 2 s, is larger)."""
        return self._wait(kind, name, "ready", not_before)

    def gone(self, kind: str, name: str) -> None:
        self._wait(kind, name, "gone")

    def _wait(self, kind: str, name: str, mode: str, not_before: float | None = None) -> dict:
        key = (kind, name.lower(), mode)
        floor = watch_floor(max(0.0, not_before - time.monotonic()) if not_before else None)
        with self._lock:
            slot = self._pending.get(key)
            if slot is None:
                slot = self._pending[key] = {"event": threading.Event(), "result": None, "error": None, "misses": 0,
                                             "due": not_before or 0.0, "waiters": 0, "floor": floor}
            else:
                slot["due"] = min(slot["due"], not_before or 0.0)
                slot["floor"] = min(slot["floor"], floor)
            slot["waiters"] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="flwrazure-waiter")
                self._thread.start()
        answered = slot["event"].wait(timeout=self.timeout)
        with self._lock:
            slot["waiters"] -= 1
            # the last wait on a slot takes it out, answered or not: a timed-out slot must not keep the loop listing
            if self._pending.get(key) is slot and (answered or slot["waiters"] == 0):
                del self._pending[key]
        if not answered:
            raise TimeoutError(f"{kind} {name} not {mode} after {self.timeout:.0f} s")
        if slot["error"]:
            raise slot["error"]
        return slot["result"]

    def abort(self) -> None:
        """Fail every pending wait (Ctrl-C): the chains stop before their next request."""
        self._resolve_all(None, InterruptedError("interrupted"))

    def _read(self, kind: str) -> tuple[str, dict | None, Exception | None]:
        try:
            return kind, {item["name"].lower(): item for item in self.listers[kind]()}, None
        except Exception as exc:  # a failed read fails the waits of that kind, with its cause
            return kind, None, exc

    def _loop(self) -> None:
        while True:
            with self._lock:
                waiting = [(k, s["due"]) for (k, _, _), s in self._pending.items() if not s["event"].is_set()]
                if not waiting:
                    self._thread = None
                    return
                floor = min(s["floor"] for s in self._pending.values() if not s["event"].is_set())
            started = time.monotonic()
            kinds = sorted({k for k, due in waiting if due <= started})
            if not kinds:  # every wait asked for time first: sleep until the first is due (a new wait wakes it)
                time.sleep(min(min(due for _, due in waiting) - started, max(self.interval, 0.05)))
                continue
            if len(kinds) == 1:
                answers = [self._read(kinds[0])]
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=len(self.listers), thread_name_prefix="waiter")
                answers = list(self._pool.map(self._read, kinds))
            for kind, listing, exc in answers:
                if exc is not None:
                    self._resolve_all(kind, exc)
                else:
                    self.reads += 1
                    self._resolve(kind, listing)
            budget = len(kinds) / self.read_budget if self.read_budget else 0.0
            pause = max(self.interval, budget, floor) - (time.monotonic() - started)
            time.sleep(max(pause, 0.0))

    @staticmethod
    def _done(slot: dict, result: dict | None = None, error: Exception | None = None) -> None:
        slot["result"], slot["error"] = result, error
        slot["event"].set()

    def _resolve(self, kind: str, listing: dict) -> None:
        with self._lock:
            for (k, name, mode), slot in self._pending.items():
                if k != kind or slot["event"].is_set():
                    continue
                body = listing.get(name)
                if mode == "gone":
                    if body is None:
                        self._done(slot)
                    continue
                if body is None:
                    slot["misses"] += 1
                    if slot["misses"] >= 20:  # created moments ago but never listed: something deleted it
                        self._done(slot, error=WaitFailed(kind, name, "missing", None))
                    continue
                try:
                    state = provisioning_state(kind, name, body)
                except UnreadableState as exc:
                    self._done(slot, error=exc)
                    continue
                if state in TERMINAL_OK:
                    self._done(slot, result=body)
                elif state in TERMINAL_BAD:
                    self._done(slot, error=WaitFailed(kind, name, state, body))

    def _resolve_all(self, kind: str | None, exc: Exception) -> None:
        with self._lock:
            for (k, _, _), slot in self._pending.items():
                if (kind is None or k == kind) and not slot["event"].is_set():
                    self._done(slot, error=exc)
