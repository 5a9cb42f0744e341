"""Throttling as Azure meters it: Azure Resource Manager's regional token buckets per subscription (and principal),
and the Compute provider's per-operation-group buckets.

ARM (Azure Resource Manager documentation, "Request limits and throttling", regional throttling and token bucket
algorithm, 2024+): reads bucket 250, refill 25/s; writes 200, 10/s; deletes 200, 10/s. Every subscription-level
response carries `x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}`; an empty bucket answers 429
SubscriptionRequestsThrottled with Retry-After.

Compute (Azure VM documentation, "Troubleshooting API throttling errors"): named operation groups counted over 3 and
30 minutes, reported as `x-ms-ratelimit-remaining-resource: Microsoft.Compute/<group>;<remaining>,…`; an exhausted
group answers 429 OperationNotAllowed with details[{code TooManyRequests, target <group>}] and Retry-After. The
3-minute and 30-minute windows are modelled as token buckets of the same size refilled over the window.

A time scale F (see timing.py) makes every bucket refill 1/F times faster; bucket sizes stay as they are.

A 429's Retry-After is the time until a token is back in whole seconds at Azure's own time, at least 1 (the
throttling messages users quote say "Please try again after '6' seconds", "'372' seconds"), then scaled: at time
scale 1 one token of the write bucket (0.1 s) is announced as `Retry-After: 1`, at 0.05 as 50 ms."""

from __future__ import annotations

import json
import math
import re
import threading
import time

from flwrazure.localcloud.arm import timing
from flwrazure.localcloud.arm.errors import ArmError
from flwrazure.localcloud.arm.operations import now_iso

# kind -> (bucket size, refill per second)
ARM_BUCKETS = {"reads": (250, 25.0), "writes": (200, 10.0), "deletes": (200, 10.0)}

# Compute operation groups: name -> (size, window seconds). Sizes: the recordings' first remaining counts + 1
# (PutVM3Min;239 / PutVM30Min;1199 in compute-vm-put-create.json, UpdateVM 3Min;237/30Min;1197 after three updates,
# LowCostGet 3Min;3998/30Min;31995, GetOperation 3Min;14999/30Min;29999, GetSubscriptionInfo3Min;359 in the usages
# recording); HighCostGet from the throttling documentation's examples (HighCostGet3Min;159, and a
# HighCostGet30Min allowedRequestCount of 800); DeleteVM is not recorded and taken equal to PutVM.
COMPUTE_GROUPS = {
    "PutVM3Min": (240, 180), "PutVM30Min": (1200, 1800),
    "UpdateVM3Min": (240, 180), "UpdateVM30Min": (1200, 1800),
    "DeleteVM3Min": (240, 180), "DeleteVM30Min": (1200, 1800),
    "LowCostGet3Min": (4000, 180), "LowCostGet30Min": (32000, 1800),
    "HighCostGet3Min": (160, 180), "HighCostGet30Min": (800, 1800),
    "GetOperation3Min": (15000, 180), "GetOperation30Min": (30000, 1800),
    "GetSubscriptionInfo3Min": (360, 180),
}
_VM = r"/providers/microsoft\.compute/virtualmachines"
# (method, path pattern) -> Compute operation groups charged
COMPUTE_OPS = [
    ("GET", re.compile(r"/providers/microsoft\.compute/locations/[^/]+/operations/[^/]+$", re.I),
     ("GetOperation3Min", "GetOperation30Min")),
    ("GET", re.compile(r"/providers/microsoft\.compute/locations/[^/]+/usages$", re.I), ("GetSubscriptionInfo3Min",)),
    ("PUT", re.compile(_VM + r"/[^/]+$", re.I), ("PutVM3Min", "PutVM30Min")),
    ("DELETE", re.compile(_VM + r"/[^/]+$", re.I), ("DeleteVM3Min", "DeleteVM30Min")),
    ("POST", re.compile(_VM + r"/[^/]+/[^/]+$", re.I), ("UpdateVM3Min", "UpdateVM30Min")),
    ("GET", re.compile(_VM + r"/[^/]+(/instanceview)?$", re.I), ("LowCostGet3Min", "LowCostGet30Min")),
    ("GET", re.compile(_VM + r"$", re.I), ("HighCostGet3Min", "HighCostGet30Min")),
]


class Bucket:
    def __init__(self, size: float, refill: float, clock=time.monotonic):
        self.size, self.refill, self.clock = float(size), float(refill), clock
        self.tokens, self.at = float(size), clock()

    def _update(self, scale: float) -> None:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.refill / scale)
        self.at = now

    def take(self, scale: float) -> float | None:
        """Take one token: None when taken, else the seconds until one is available."""
        self._update(scale)
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) * scale / self.refill

    def remaining(self, scale: float) -> int:
        self._update(scale)
        return int(self.tokens)


def whole_seconds(wait: float, scale: float) -> int:
    """A scaled wait as the whole seconds Azure would announce at its own time: rounded up, at least 1."""
    return max(1, math.ceil(round(wait / scale, 6)))


def arm_kind(method: str) -> str:
    return {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method, "writes")


def compute_groups(method: str, path: str) -> tuple[str, ...]:
    for m, pattern, groups in COMPUTE_OPS:
        if m == method and pattern.search(path):
            return groups
    return ()


def settings(config: dict) -> dict | None:
    """The throttling settings in force, or None when off. `throttling` is true/false or
    {"enabled": bool, "reads"|"writes"|"deletes": {"burst": n, "rate": per_s}, "compute": bool}."""
    value = config.get("throttling", True)
    if value is False or (isinstance(value, dict) and value.get("enabled") is False):
        return None
    return value if isinstance(value, dict) else {}


class Throttle:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.buckets: dict[str, Bucket] = {}
        self.signature = None
        self.throttled = 0

    def reset(self) -> None:
        with self.lock:
            self.buckets.clear()

    def _bucket(self, key: str, size: float, refill: float) -> Bucket:
        b = self.buckets.get(key)
        if b is None or (b.size, b.refill) != (float(size), float(refill)):
            b = self.buckets[key] = Bucket(size, refill, self.clock)
        return b

    def charge(self, config: dict, sub: str, client: str, method: str, path: str) -> dict[str, str]:
        """Meter one request: the rate-limit headers to send, or raise the 429 Azure would send."""
        opts = settings(config)
        if opts is None:
            return {}
        scale = timing.scale(config)
        kind = arm_kind(method)
        size, refill = ARM_BUCKETS[kind]
        own = opts.get(kind) or {}
        size, refill = own.get("burst", size), own.get("rate", refill)
        header = f"x-ms-ratelimit-remaining-subscription-{kind}"
        with self.lock:
            arm = self._bucket(f"{sub}/{client}/{kind}", size, refill)
            wait = arm.take(scale)
            if wait is not None:
                self.throttled += 1
                seconds = whole_seconds(wait, scale)
                raise ArmError(
                    429, "SubscriptionRequestsThrottled",
                    f"Number of '{kind[:-1]}' requests for subscription '{sub}' actor '{client}' exceeded. Please "
                    f"try again after '{seconds}' seconds after additional tokens are available. "
                    "Refer to https://aka.ms/arm-throttling",
                    headers={header: "0", **timing.wire(seconds * scale)}, style="arm")
            headers = {header: str(arm.remaining(scale))}
            groups = compute_groups(method, path) if opts.get("compute", True) else ()
            if not groups:
                return headers
            buckets = [(g, self._bucket(f"{sub}/compute/{g}", COMPUTE_GROUPS[g][0],
                                        COMPUTE_GROUPS[g][0] / COMPUTE_GROUPS[g][1])) for g in groups]
            waits = [(g, b, b.take(scale)) for g, b in buckets]
            empty = [(g, b, w) for g, b, w in waits if w is not None]
            if empty:
                for _g, b, w in waits:  # a rejected request takes nothing from the other groups
                    if w is None:
                        b.tokens += 1
                self.throttled += 1
                longest = max(w for _, _, w in empty)
                remaining = ",".join(f"Microsoft.Compute/{g};{b.remaining(scale)}" for g, b in buckets)
                details = [{"code": "TooManyRequests", "target": g, "message": json.dumps({
                    "operationGroup": g, "startTime": now_iso(), "endTime": now_iso(),
                    "allowedRequestCount": COMPUTE_GROUPS[g][0], "measuredRequestCount": COMPUTE_GROUPS[g][0] + 1})}
                    for g, _, _ in empty]
                raise ArmError(429, "OperationNotAllowed", "The server rejected the request because too many "
                               "requests have been received for this subscription.", details=details,
                               headers={**headers, "x-ms-ratelimit-remaining-resource": remaining,
                                        **timing.wire(whole_seconds(longest, scale) * scale)},
                               style="compute")
            headers["x-ms-ratelimit-remaining-resource"] = ",".join(
                f"Microsoft.Compute/{g};{b.remaining(scale)}" for g, b in buckets)
            return headers
