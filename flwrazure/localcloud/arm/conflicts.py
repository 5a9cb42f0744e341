"""Concurrent writes to one network resource, answered as Azure's network provider answers them (config knob
`conflicts`, off by default).

Azure's network provider serialises the operations that update one resource: a write that would update a resource
another operation is still updating is refused, not queued. Public reports and recordings show two answers:
- `429 RetryableError` whose `details` name the cause: `RetryableErrorDueToAnotherOperation` ("Operation … is
  updating resource … The call can be retried in N seconds.") — e.g. NICs joining a subnet that another operation
  is updating; the answer carries Retry-After;
- `409 AnotherOperationInProgress` ("Another operation on this or dependent resource is in progress. To retrieve
  status of the operation use uri: …", `details: []`) — e.g. writes to subnets of one VNet, or to an NSG's rules,
  while another write to it runs. No Retry-After: clients back off on their own.

Here every network write claims the resources it updates (the resource, and the subnet a NIC joins or the NSG a rule
belongs to) for `conflict_window` seconds (default 1) or the operation's latency, whichever is longer, and its own
operation lasts as long (a NIC's stays as it is: Azure answers a NIC PUT already Succeeded); a write that needs a
claimed resource gets one of the answers above, so a client that waits for each write to finish meets none.
"""

from __future__ import annotations

import math
import threading
import time
import uuid

from flwrazure.localcloud.arm.errors import ArmError

RETRYABLE = "retryable"  # 429 RetryableError + RetryableErrorDueToAnotherOperation
IN_PROGRESS = "in_progress"  # 409 AnotherOperationInProgress


def operation_name(verb: str, arm_type: str) -> str:
    """Azure's name for an operation in these messages: ('Put', '…/networkSecurityGroups') -> PutNetworkSecurityGroupOperation."""
    last = arm_type.split("/")[-1]
    singular = last[:-1] if last.endswith("s") else last
    return f"{verb}{singular[:1].upper()}{singular[1:]}Operation"


class Busy:
    """Which network resources an operation is updating right now (lower-case id -> claim)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claims: dict[str, dict] = {}
        self.refused = 0

    def claim(self, config: dict, base_url: str, sub: str, location: str, resource_ids: list[str],
              operation: str, answer: str, hold: float = 0.0, api_version: str = "2024-05-01") -> float:
        """Claim every id for this write, or refuse it (nothing claimed) if one is claimed by another write.
        Returns how long the claim lasts (0 when the knob is off)."""
        if not config.get("conflicts"):
            return 0.0
        hold = max(float(config.get("conflict_window", 1.0)), hold)
        now = time.monotonic()
        with self.lock:
            for rid_ in resource_ids:
                held = self.claims.get(rid_.lower())
                if held is not None and held["until"] > now:
                    self.refused += 1
                    raise refusal(answer, held, rid_, held["until"] - now, base_url, sub, location, api_version)
            op_id = str(uuid.uuid4())
            for rid_ in resource_ids:
                self.claims[rid_.lower()] = {"until": now + hold, "op": op_id, "operation": operation}
            for key in [k for k, v in self.claims.items() if v["until"] <= now]:
                del self.claims[key]
        return hold


def refusal(answer: str, held: dict, rid_: str, remaining: float, base_url: str, sub: str,
            location: str, api_version: str) -> ArmError:
    if answer == RETRYABLE:
        seconds = max(1, math.ceil(remaining))
        return ArmError(429, "RetryableError", "A retryable error occurred.", details=[{
            "code": "RetryableErrorDueToAnotherOperation",
            "message": f"Operation {held['operation']} ({held['op']}) is updating resource {rid_}. The call can be "
                       f"retried in {seconds} seconds."}], headers={"Retry-After": str(seconds)})
    url = (f"{base_url}/subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/operations/"
           f"{held['op']}?api-version={api_version}")
    return ArmError(409, "AnotherOperationInProgress",
                    "Another operation on this or dependent resource is in progress. To retrieve status of the "
                    f"operation use uri: {url}.")
