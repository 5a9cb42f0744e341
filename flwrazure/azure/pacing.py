"""Pacing requests from Azure's own rate-limit headers, so that throttling (429) rarely happens.

ARM reports what is left of each bucket on every answer: `x-ms-ratelimit-remaining-subscription-reads|writes|
deletes`, and Compute `x-ms-ratelimit-remaining-resource: Microsoft.Compute/PutVM3Min;239,…` per operation group.
`Pacer` keeps, per bucket, the last count reported and the requests still in flight, and lets a request go only
while the bucket would keep a small reserve. When a bucket is low and nothing is in flight, one request goes out
after a short, growing pause to learn the refilled count (the refill rate is not in the headers); its answer then
releases as many requests as the new count allows. The reports while a bucket is low teach its refill rate; from
then on a low bucket lets requests go at that rate (no probing). A 429 that reports a bucket at 0 holds that bucket for its
Retry-After and caps the learned rate at one token per Retry-After. A 429 that still happens is retried by azure-core's RetryPolicy,
which honours Retry-After (and retry-after-ms); the pacing policy sits after it, so every retry is paced too.

Which Compute groups a request draws from is learned from the answers to earlier requests of the same shape
(method + path with the names left out)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from azure.core.pipeline.policies import HTTPPolicy

ARM_HEADER = "x-ms-ratelimit-remaining-subscription-"
RESOURCE_HEADER = "x-ms-ratelimit-remaining-resource"


def arm_kind(method: str) -> str:
    return {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method.upper(), "writes")


def request_shape(method: str, url: str) -> str:
    """'PUT /subscriptions/*/resourcegroups/*/providers/microsoft.compute/virtualmachines/*' (names left out)."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url.lower()).split("?")[0].rstrip("/")
    segs = path.split("/")
    kept = [s if i % 2 == 1 or segs[i - 1] == "providers" else "*" for i, s in enumerate(segs) if i]
    return f"{method.upper()} /" + "/".join(kept)


def parse_remaining(headers) -> dict[str, int]:
    """{'writes': 1199, 'Microsoft.Compute/PutVM3Min': 239, …} from an answer's headers."""
    out: dict[str, int] = {}
    for key, value in headers.items():
        low = key.lower()
        try:
            if low.startswith(ARM_HEADER) and "-global-" not in low:
                out[low[len(ARM_HEADER):]] = int(value)
            elif low == RESOURCE_HEADER:
                for part in value.split(","):
                    name, _, count = part.strip().rpartition(";")
                    if name:
                        out[name] = int(count)
        except ValueError:
            continue
    return out


@dataclass
class Budget:
    remaining: int | None = None
    in_flight: int = 0
    probe_delay: float = 0.0
    last_sent: float = 0.0
    hold_until: float = 0.0  # a 429 emptied it: nothing goes before its Retry-After
    at: float = 0.0  # when `remaining` was reported
    rate: float | None = None  # refill per second, learned while the bucket is low (None: not yet)
    anchor: tuple[int, float, int] | None = None  # first low report (count, time) and the answers since

    def tokens(self, now: float) -> float:
        """What the bucket holds now by our reckoning: the last count, plus the refill since, less what is in
        flight (those requests will take theirs)."""
        return (self.remaining or 0) + (self.rate or 0.0) * (now - self.at) - self.in_flight


def retry_after(headers) -> float | None:
    """Seconds from Retry-After (whole seconds) or retry-after-ms / x-ms-retry-after-ms, as azure-core reads them."""
    low = {k.lower(): v for k, v in (headers or {}).items()}
    for key, unit in (("retry-after", 1.0), ("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        try:
            return max(0.0, float(low[key]) * unit)
        except (KeyError, ValueError):
            continue
    return None


@dataclass
class Pacer:
    """Shared by every SDK client of one target. `reserve`: tokens left untouched in each bucket."""

    reserve: int = 3
    min_probe: float = 0.02
    max_probe: float = 2.0
    budgets: dict[str, Budget] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # request shape -> Compute groups
    waited: float = 0.0
    throttled: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def keys(self, method: str, url: str) -> tuple[str, ...]:
        return (arm_kind(method), *self.groups.get(request_shape(method, url), ()))

    def acquire(self, keys: tuple[str, ...]) -> None:
        start = time.monotonic()
        with self._cond:
            while True:
                pause = self._pause(keys)
                if pause <= 0:
                    break
                self._cond.wait(pause)
            now = time.monotonic()
            for k in keys:
                b = self.budgets.setdefault(k, Budget())
                b.in_flight += 1
                b.last_sent = now
            self.waited += now - start

    def _pause(self, keys: tuple[str, ...]) -> float:
        """0 when a request on these buckets may go now, else how long to wait before looking again."""
        now = time.monotonic()
        longest = 0.0
        for k in keys:
            b = self.budgets.get(k)
            if b is not None and b.hold_until > now:
                longest = max(longest, b.hold_until - now)
                continue
            if b is None or b.remaining is None or b.tokens(now) >= self.reserve + 1:
                continue
            if b.rate:  # low, refill known: wait for the token above the reserve
                longest = max(longest, (self.reserve + 1 - b.tokens(now)) / b.rate)
            elif b.in_flight == 0:  # low and nothing will report: probe after a growing pause
                due = b.last_sent + (b.probe_delay or self.min_probe) - now
                if due <= 0:
                    continue
                longest = max(longest, due)
            else:
                longest = max(longest, self.max_probe)  # woken by the answers in flight
        return longest

    def release(self, keys: tuple[str, ...], method: str, url: str, headers, status: int | None) -> None:
        remaining = parse_remaining(headers or {})
        with self._cond:
            for k in keys:
                b = self.budgets.setdefault(k, Budget())
                b.in_flight = max(0, b.in_flight - 1)
            groups = tuple(sorted(k for k in remaining if "/" in k))
            if groups:
                self.groups[request_shape(method, url)] = groups
            now = time.monotonic()
            for k, count in remaining.items():
                b = self.budgets.setdefault(k, Budget())
                self._learn(b, count, now, status == 429)
                b.remaining, b.at = count, now
                if count - b.in_flight > self.reserve:
                    b.probe_delay = 0.0
                elif status == 429 and count == 0:  # this bucket is empty: wait as told, then probe that slowly
                    wait = retry_after(headers) or self.min_probe
                    b.hold_until = now + wait
                    b.probe_delay = min(self.max_probe, max(wait, b.probe_delay * 2 or self.min_probe))
                    if wait > 0:  # one token comes back within `wait`: the refill is no faster than that
                        b.rate = min(b.rate or 1 / wait, 1 / wait)
                elif b.in_flight == 0:  # still low after a probe: the next probe waits longer
                    b.probe_delay = min(self.max_probe, (b.probe_delay or self.min_probe) * 1.5)
            if status == 429:
                self.throttled += 1
            self._cond.notify_all()


    LOW = 20  # reports at or under this many tokens are far from the bucket's size: refill is not capped there

    def _learn(self, b: Budget, count: int, now: float, throttled: bool) -> None:
        """Refill rate over the whole time the bucket has been low: from its first low report (r0, t0), with n
        requests answered since (a 429 takes no token), refill = (count - r0 + n) / (now - t0)."""
        if count > self.LOW:
            b.anchor = None
            return
        if b.anchor is None:
            b.anchor = (count, now, 0)
            return
        r0, t0, n = b.anchor
        n += 0 if throttled else 1
        b.anchor = (r0, t0, n)
        if now - t0 >= 0.25:
            b.rate = max(count - r0 + n, 0) / (now - t0) or None


class PacingPolicy(HTTPPolicy):
    """The azure-core policy around each attempt (install as a per-retry policy)."""

    def __init__(self, pacer: Pacer):
        super().__init__()
        self.pacer = pacer

    def send(self, request):
        http = request.http_request
        keys = self.pacer.keys(http.method, http.url)
        self.pacer.acquire(keys)
        try:
            response = self.next.send(request)
        except BaseException:
            self.pacer.release(keys, http.method, http.url, None, None)
            raise
        self.pacer.release(keys, http.method, http.url, response.http_response.headers,
                           response.http_response.status_code)
        return response
