"""Long-running operations: each write returns at once and finishes `latency` seconds later in a worker,
as ARM does; clients poll the Azure-AsyncOperation (or Location) URL until the status is terminal."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flwrazure.localcloud.arm.errors import ArmError
from flwrazure.localcloud.arm.store import Store


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


class Operations:
    def __init__(self, store: Store, workers: int = 128):
        self.store = store
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lro")

    def start(self, *, provider: str, location: str, resource_id: str, latency: float,
              work: Callable[[], None], on_fail: Callable[[ArmError], None] | None = None,
              fail_with: ArmError | None = None) -> dict:
        """Register an operation and run `work` after `latency` s. `fail_with` (fault injection) fails it instead."""
        op_id = str(uuid.uuid4())
        op = {"name": op_id, "status": "InProgress", "startTime": now_iso(), "provider": provider,
              "location": location, "resourceId": resource_id, "polls": 0, "p": str(uuid.uuid4())}
        with self.store.lock:
            self.store.operations[op_id] = op
            self.store.mark_dirty(op=op_id)
        self._pool.submit(self._run, op, latency, work, on_fail, fail_with)
        return op

    def _run(self, op, latency, work, on_fail, fail_with) -> None:
        if latency > 0 and self.stopping.wait(latency):
            return
        try:
            if fail_with is not None:
                raise fail_with
            work()
            status, error = "Succeeded", None
        except ArmError as exc:  # kept raw: the status monitor renders it in its provider's envelope
            status, error = "Failed", {"code": exc.code, "message": exc.message, "target": exc.target,
                                       "details": exc.details}
            if on_fail:
                on_fail(exc)
        except Exception as exc:  # an emulator bug must still end the operation, as a 500-class failure
            status, error = "Failed", {"code": "InternalServerError", "message": f"{type(exc).__name__}: {exc}",
                                       "target": None, "details": []}
            if on_fail:
                on_fail(ArmError(500, "InternalServerError", str(exc)))
        with self.store.lock:
            op["status"], op["endTime"] = status, now_iso()
            if error:
                op["error"] = error
            self.store.mark_dirty(op=op["name"])

    def get(self, op_id: str) -> dict | None:
        return self.store.operations.get(op_id)

    def shutdown(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
