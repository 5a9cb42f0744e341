"""The product's pacing from ARM's rate-limit headers (flwrazure/azure/pacing.py), without a network."""

from __future__ import annotations

import threading
import time

from flwrazure.azure.pacing import Budget, Pacer, parse_remaining, request_shape

VM = "https://h/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm1?api-version=1"


def test_headers_are_read_per_bucket():
    got = parse_remaining({"x-ms-ratelimit-remaining-subscription-writes": "1199",
                           "X-Ms-Ratelimit-Remaining-Resource": "Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1197",
                           "x-ms-ratelimit-remaining-subscription-global-writes": "17000", "Retry-After": "3"})
    assert got == {"writes": 1199, "Microsoft.Compute/PutVM3Min": 239, "Microsoft.Compute/PutVM30Min": 1197}


def test_request_shapes_leave_names_out():
    assert request_shape("PUT", VM) == request_shape("PUT", VM.replace("vm1", "vm2"))
    assert request_shape("PUT", VM) == "PUT /subscriptions/*/resourcegroups/*/providers/microsoft.compute/virtualmachines/*"
    assert request_shape("POST", VM.split("?")[0] + "/start").endswith("/virtualmachines/*/start")


def test_compute_groups_are_learned_from_answers():
    p = Pacer()
    p.acquire(p.keys("PUT", VM))
    p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-resource": "Microsoft.Compute/PutVM3Min;239"}, 201)
    assert p.keys("PUT", VM.replace("vm1", "vm9")) == ("writes", "Microsoft.Compute/PutVM3Min")


def test_a_full_bucket_does_not_wait_and_a_low_one_lets_one_probe_go():
    p = Pacer(reserve=2, min_probe=0.05)
    start = time.monotonic()
    for _ in range(5):
        p.acquire(("writes",))
        p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-subscription-writes": "100"}, 201)
    assert time.monotonic() - start < 0.05
    p.acquire(("writes",))
    p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-subscription-writes": "2"}, 201)
    start = time.monotonic()
    p.acquire(("writes",))  # the probe: after min_probe
    assert 0.04 <= time.monotonic() - start < 0.5


def test_while_low_requests_wait_for_the_answers_in_flight():
    p = Pacer(reserve=1, min_probe=5.0)
    p.acquire(("writes",))
    p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-subscription-writes": "2"}, 201)
    p.acquire(("writes",))  # 2 left, none in flight, reserve 1: this one goes
    went = threading.Event()

    def second():
        p.acquire(("writes",))
        went.set()

    threading.Thread(target=second, daemon=True).start()
    assert not went.wait(0.3)  # 2 left - 1 in flight = the reserve: wait for that answer
    p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-subscription-writes": "40"}, 201)
    assert went.wait(1.0)


def test_a_429_holds_the_empty_bucket_for_its_retry_after_and_spaces_the_probes():
    p = Pacer(reserve=2, min_probe=0.01)
    p.acquire(("reads",))
    p.release(("reads",), "GET", VM, {"x-ms-ratelimit-remaining-subscription-reads": "0", "retry-after-ms": "300"},
              429)
    # one token per Retry-After is the fastest the bucket can refill, not its refill: no rate is taken from it
    assert p.throttled == 1 and p.budgets["reads"].rate is None
    start = time.monotonic()
    p.acquire(("reads",))  # held for the Retry-After, then one probe
    assert 0.25 <= time.monotonic() - start < 0.6
    p.release(("reads",), "GET", VM, {"x-ms-ratelimit-remaining-subscription-reads": "2"}, 200)
    # two low reports 0.3 s apart, one request between: (2 - 0 + 1) tokens in 0.3 s
    assert 9 <= p.budgets["reads"].rate <= 11
    start = time.monotonic()
    p.acquire(("reads",))  # at the reserve (2): one token's refill, 0.1 s, for the next
    assert 0.05 <= time.monotonic() - start < 0.4


def test_a_429_caps_a_learned_rate():
    p = Pacer(reserve=1, min_probe=0.01)
    p.budgets["writes"] = Budget(remaining=5, level=5, rate=100.0)
    p.acquire(("writes",))
    p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-subscription-writes": "0", "retry-after-ms": "50"},
              429)
    assert p.budgets["writes"].rate == 20.0


def test_a_conflict_429_does_not_hold_the_bucket():
    """429 RetryableError (another operation on the resource) is not throttling: writes keep going."""
    p = Pacer(reserve=2)
    p.acquire(("writes",))
    p.release(("writes",), "PUT", VM, {"x-ms-ratelimit-remaining-subscription-writes": "150", "Retry-After": "5"},
              429)
    start = time.monotonic()
    p.acquire(("writes",))
    assert time.monotonic() - start < 0.05


def test_low_reports_teach_the_refill_rate_and_requests_then_go_at_it():
    p = Pacer(reserve=1, min_probe=0.01)
    writes = "x-ms-ratelimit-remaining-subscription-writes"
    p.acquire(("writes",))
    p.release(("writes",), "PUT", VM, {writes: "2"}, 201)
    time.sleep(0.3)
    p.acquire(("writes",))
    p.release(("writes",), "PUT", VM, {writes: "7"}, 201)  # +5 net with one request: 6 tokens in 0.3 s
    assert 15 <= p.budgets["writes"].rate <= 25
    start = time.monotonic()
    for _ in range(3):  # 3 tokens above the reserve of 1 at 20/s: about 0.1 s, no probing
        p.acquire(("writes",))
        p.release(("writes",), "PUT", VM, {}, 201)
    assert time.monotonic() - start < 0.5


def test_an_answer_handled_late_does_not_bring_back_tokens_already_spent():
    """Ten writes in flight, served in the order they were let go (the bucket held 13: 12 ... 3 left after each),
    answered in the reverse order. The count that came last (12) was spent long before: the bucket holds 3, so
    with a reserve of 2 at most one more may go (taking each answer's count as it came let nine go)."""
    p = Pacer(reserve=2, min_probe=5.0)
    writes = "x-ms-ratelimit-remaining-subscription-writes"
    tickets = [p.acquire(("writes",)) for _ in range(10)]
    for i in reversed(range(10)):
        p.release(("writes",), "PUT", VM, {writes: str(12 - i)}, 201, tickets[i])
    went = []

    def more():
        for _ in range(10):
            p.acquire(("writes",))
            went.append(1)

    threading.Thread(target=more, daemon=True).start()
    time.sleep(0.3)
    assert len(went) <= 1


def test_a_count_is_reduced_by_the_requests_that_may_draw_after_it():
    p = Pacer(reserve=2)
    writes = "x-ms-ratelimit-remaining-subscription-writes"
    first, second, third = (p.acquire(("writes",)) for _ in range(3))
    p.release(("writes",), "PUT", VM, {writes: "50"}, 201, second)  # the first may be served after it, the third too
    assert p.budgets["writes"].tokens(time.monotonic()) == 48
    p.release(("writes",), "PUT", VM, {writes: "51"}, 201, first)  # older than the level's count: not taken
    assert p.budgets["writes"].tokens(time.monotonic()) == 48
    p.release(("writes",), "PUT", VM, {writes: "47"}, 201, third)  # another client drew too: newer, so taken
    assert p.budgets["writes"].tokens(time.monotonic()) == 47
