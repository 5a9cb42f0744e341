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
