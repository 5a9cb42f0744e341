"""Pacing requests from Azure's own rate-limit headers, so that throttling (429) rarely happens.

ARM reports what is left of each bucket on every answer: `x-ms-ratelimit-remaining-subscription-reads|writes|
deletes`, and Compute `x-ms-ratelimit-remaining-resource: Microsoft.Compute/PutVM3Min;239,…` per operation group.
`Pacer` keeps, per bucket, how many tokens it holds at least (its level), and lets a request go only while the
bucket would keep a small reserve. Answers come back in another order than their requests were let go (and, under a
hundred threads, are handled later still): an answer's count is what the bucket held when that request was served,
so the requests let go after it, and those before it still unanswered, may have drawn from it since. The level is
that count less those, taken only from an answer to a request let go after the one the level came from (taking each
answer's count as it came let a burst of 100 VMs overdraw ARM's write bucket with counts already spent).

When a bucket is low and nothing is in flight, one request goes out after a short, growing pause to learn the
refilled count (the refill rate is not in the headers); its answer then releases as many requests as the new count
allows. The reports while a bucket is low teach its refill rate; from then on a low bucket lets requests go at that
rate (no probing). A 429 that reports a bucket at 0 holds that bucket for its Retry-After and caps a learned rate at
one token per Retry-After; it sets none (one token per Retry-After is only the fastest the refill can be: taken as
the rate, it let writes go three times faster than the bucket refilled). A 429 that still happens is retried by
azure-core's RetryPolicy, which honours Retry-After (and retry-after-ms); the pacing policy sits after it, so every
retry is paced too.

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
    remaining: int | None = None  # the last count reported (None: no answer yet, nothing to pace by)
    level: float = 0.0  # the tokens the bucket holds at least at `at`, every request let go taken off
    sent: int = 0  # requests let go on this bucket so far: each is numbered in that order
    flying: set[int] = field(default_factory=set)  # the numbers of those not answered yet
    seen: int = 0  # the number of the request whose answer set `level` (an older one's count is not taken)
    refused: int = 0  # 429s that found it empty (they took no token)
    probe_delay: float = 0.0
    last_sent: float = 0.0
    hold_until: float = 0.0  # a 429 emptied it: nothing goes before its Retry-After
    at: float = 0.0  # when `level` was reckoned
    rate: float | None = None  # refill per second, learned while the bucket is low (None: not yet)
    anchor: tuple[int, float, int, int] | None = None  # first low report: count, time, its request, 429s then

    @property
    def in_flight(self) -> int:
        return len(self.flying)

    def tokens(self, now: float) -> float:
        """What the bucket holds now at least: the level, plus the refill since (when learned)."""
        return self.level + (self.rate or 0.0) * (now - self.at)

    def lower_bound(self, count: int, number: int) -> int:
        """What is left of `count` (what the bucket held when request `number` was served): every request let
        go after it, and every earlier one not answered yet, may have taken a token since."""
        return count - (self.sent - number) - sum(1 for n in self.flying if n < number)


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

    def acquire(self, keys: tuple[str, ...]) -> dict[str, int]:
        """Wait until a request on these buckets may go; its number on each, for `release`."""
        start = time.monotonic()
        with self._cond:
            while True:
                pause = self._pause(keys)
                if pause <= 0:
                    break
                self._cond.wait(pause)
            now = time.monotonic()
            tickets = {}
            for k in keys:
                b = self.budgets.setdefault(k, Budget())
                b.level, b.at = b.tokens(now) - 1, now
                b.sent += 1
                b.flying.add(b.sent)
                tickets[k] = b.sent
                b.last_sent = now
            self.waited += now - start
            return tickets

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

    def release(self, keys: tuple[str, ...], method: str, url: str, headers, status: int | None,
                tickets: dict[str, int] | None = None) -> None:
        """The answer to a request `acquire` let go (its `tickets`; without them, the newest one in flight)."""
        remaining = parse_remaining(headers or {})
        with self._cond:
            numbers = {}
            for k in keys:
                b = self.budgets.setdefault(k, Budget())
                numbers[k] = (tickets or {}).get(k) or max(b.flying, default=b.sent)
                b.flying.discard(numbers[k])
            groups = tuple(sorted(k for k in remaining if "/" in k))
            if groups:
                self.groups[request_shape(method, url)] = groups
            now = time.monotonic()
            for k, count in remaining.items():
                b = self.budgets.setdefault(k, Budget())
                number = numbers.get(k, b.sent)
                emptied = status == 429 and count == 0
                b.refused += emptied
                fresh = number >= b.seen  # else an older count than the level's: it tells nothing newer
                if fresh:
                    self._learn(b, count, now, number)
                    b.level, b.at, b.seen, b.remaining = b.lower_bound(count, number), now, number, count
                if fresh and b.level > self.reserve:
                    b.probe_delay = 0.0
                elif emptied:  # this bucket is empty: wait as told, then probe that slowly
                    wait = retry_after(headers) or self.min_probe
                    b.hold_until = now + wait
                    b.probe_delay = min(self.max_probe, max(wait, b.probe_delay * 2 or self.min_probe))
                    if wait > 0 and b.rate:  # a token comes back within `wait`: the refill is no faster
                        b.rate = min(b.rate, 1 / wait)
                elif fresh and b.in_flight == 0:  # still low after a probe: the next probe waits longer
                    b.probe_delay = min(self.max_probe, (b.probe_delay or self.min_probe) * 1.5)
            if status == 429:
                self.throttled += 1
            self._cond.notify_all()


    LOW = 20  # reports at or under this many tokens are far from the bucket's size: refill is not capped there

    def _learn(self, b: Budget, count: int, now: float, number: int) -> None:
        """Refill rate over the whole time the bucket has been low: from its first low report (r0, t0, the
        answer to request n0), with the n requests let go after n0 up to this one drawn since (a 429 takes no
        token), refill = (count - r0 + n) / (now - t0)."""
        if count > self.LOW:
            b.anchor = None
            return
        if b.anchor is None:
            b.anchor = (count, now, number, b.refused)
            return
        r0, t0, n0, refused0 = b.anchor
        n = max(0, number - n0 - (b.refused - refused0))
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
        tickets = self.pacer.acquire(keys)
        try:
            response = self.next.send(request)
        except BaseException:
            self.pacer.release(keys, http.method, http.url, None, None, tickets)
            raise
        self.pacer.release(keys, http.method, http.url, response.http_response.headers,
                           response.http_response.status_code, tickets)
        return response
