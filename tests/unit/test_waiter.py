"""The batched waiter's reading of provisioningState: REST-shaped bodies only, never a guessed Succeeded."""

import pytest

from flwrazure.azure.waiter import UnreadableState, Waiter, WaitFailed


def waiter(body: dict) -> Waiter:
    return Waiter({"vm": lambda: [body]}, interval=0.01, timeout=5)


def test_rest_shaped_states():
    ok = {"name": "vm1", "properties": {"provisioningState": "Succeeded"}}
    assert waiter(ok).ready("vm", "vm1") is ok
    with pytest.raises(WaitFailed):
        waiter({"name": "vm1", "properties": {"provisioningState": "Failed"}}).ready("vm", "vm1")


@pytest.mark.parametrize("body", [
    {"name": "vm1", "provisioning_state": "Creating"},  # what azure-mgmt-compute < 38 models give from as_dict()
    {"name": "vm1", "properties": {"provisioning_state": "Creating"}},
    {"name": "vm1"},
])
def test_a_body_without_provisioning_state_is_an_error_not_succeeded(body):
    with pytest.raises(UnreadableState, match="older than flwrazure requires"):
        waiter(body).ready("vm", "vm1")


def test_each_wait_ends_with_its_own_resource_and_a_failed_list_fails_only_its_kind():
    import threading
    import time

    ticks = {"n": 0}

    def vms():
        ticks["n"] += 1
        return [{"name": f"vm{i}", "properties": {"provisioningState": "Succeeded" if ticks["n"] > i else "Creating"}}
                for i in range(6)]

    def nics():
        raise RuntimeError("list failed")

    w = Waiter({"vm": vms, "nic": nics}, interval=0.01, timeout=5)
    done: dict = {}

    def wait(kind: str, name: str) -> None:
        try:
            done[name] = (w.ready(kind, name)["name"], time.monotonic())
        except Exception as exc:  # noqa: BLE001
            done[name] = (repr(exc), time.monotonic())

    threads = [threading.Thread(target=wait, args=("vm", f"vm{i}")) for i in range(6)]
    threads.append(threading.Thread(target=wait, args=("nic", "nic0")))
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert [done[f"vm{i}"][0] for i in range(6)] == [f"vm{i}" for i in range(6)]
    assert "list failed" in done["nic0"][0]
    order = sorted(range(6), key=lambda i: done[f"vm{i}"][1])
    assert order[0] == 0 and order[-1] == 5  # resolved tick by tick, not all at the end


def test_a_wait_times_out_with_the_resource_named():
    w = Waiter({"vm": lambda: [{"name": "vm1", "properties": {"provisioningState": "Creating"}}]}, interval=0.01,
               timeout=0.2)
    with pytest.raises(TimeoutError, match="vm vm1 not ready"):
        w.ready("vm", "vm1")


def test_a_timed_out_wait_stops_the_listing():
    calls = []

    def lister():
        calls.append(1)
        return [{"name": "vm1", "properties": {"provisioningState": "Creating"}}]

    w = Waiter({"vm": lister}, interval=0.01, timeout=0.2)
    with pytest.raises(TimeoutError):
        w.ready("vm", "vm1")
    import time

    time.sleep(0.1)
    after = len(calls)
    time.sleep(0.2)
    assert len(calls) == after and w._pending == {}  # nothing left to list for


def test_a_retry_after_hint_spaces_the_ticks_to_a_fifteenth_of_it():
    """A local cloud running Azure's timing at scale 1 says Retry-After 10 s on a VM PUT: lists every 0.05 s (the
    local interval) were 20 per second for 80 s; a fifteenth of the hint is 0.67 s. Here: hint 1.5 s -> 0.1 s."""
    import time

    calls: list[float] = []
    ready_at = time.monotonic() + 1.5 + 0.5

    def vms():
        calls.append(time.monotonic())
        state = "Succeeded" if time.monotonic() >= ready_at else "Creating"
        return [{"name": "vm1", "properties": {"provisioningState": state}}]

    w = Waiter({"vm": vms}, interval=0.01, timeout=5)
    w.ready("vm", "vm1", not_before=time.monotonic() + 1.5)
    assert 4 <= len(calls) <= 8, len(calls)  # ~0.5 s at 0.1 s; at the 0.01 s interval it was ~50
