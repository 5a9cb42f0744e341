"""Pure parts of the local cloud's timing and throttling: the latency profile, Retry-After on the wire, buckets."""

from __future__ import annotations

from flwrazure.localcloud.arm import throttle, timing


def test_retry_after_is_whole_seconds_from_one_second_and_milliseconds_below():
    assert timing.wire(10) == {"Retry-After": "10"}
    assert timing.wire(2.5) == {"Retry-After": "2"} or timing.wire(2.5) == {"Retry-After": "3"}
    assert timing.wire(1.0) == {"Retry-After": "1"}
    assert timing.wire(0.5) == {"retry-after-ms": "500", "x-ms-retry-after-ms": "500"}
    assert timing.wire(0.0001) == {"retry-after-ms": "1", "x-ms-retry-after-ms": "1"}  # never 0 (= no hint)


def test_azure_profile_durations_and_retry_after_scale_together():
    cfg = {"profile": "azure", "time_scale": 0.05}
    assert timing.duration(cfg, "Microsoft.Compute/virtualMachines", "PUT") == 75.0 * 0.05
    assert timing.duration(cfg, "Microsoft.Network/networkInterfaces", "UPDATE") == 1.0 * 0.05
    assert timing.duration(cfg, "Microsoft.Resources/resourceGroups", "DELETE") == 78.0 * 0.05
    assert timing.retry_after(cfg, "network_put") == {"retry-after-ms": "150", "x-ms-retry-after-ms": "150"}
    assert timing.retry_after({"profile": "azure"}, "compute_first_poll_create") == {"Retry-After": "50"}
    assert timing.retry_after({"profile": "azure"}, "network_put_nic") == {}


def test_without_a_profile_latency_applies_and_no_retry_after_is_sent():
    assert timing.duration({"latency": 2, "time_scale": 0.5}, "Microsoft.Compute/virtualMachines", "PUT") == 1.0
    assert timing.duration({"latency": 2, "latency_by_type": {"X/y": 4}}, "X/y", "PUT") == 4
    assert timing.retry_after({}, "network_put") == {}
    assert timing.retry_after({"lro_retry_after": 1}, "network_put") == {"Retry-After": "1"}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_bucket_drains_then_refills_at_its_rate_times_the_scale():
    clock = Clock()
    b = throttle.Bucket(3, 1.0, clock)
    assert [b.take(1.0) for _ in range(3)] == [None, None, None]
    assert b.take(1.0) == 1.0
    clock.now = 0.5
    assert b.take(1.0) == 0.5 and b.remaining(1.0) == 0
    clock.now = 0.75  # at scale 0.25 a second of refill takes 0.25 s
    assert b.take(0.25) is None
    clock.now = 100
    assert b.remaining(1.0) == 3  # never more than its size


def test_requests_map_to_arm_kinds_and_compute_groups():
    assert throttle.arm_kind("HEAD") == "reads" and throttle.arm_kind("PATCH") == "writes"
    vm = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v"
    assert throttle.compute_groups("PUT", vm) == ("PutVM3Min", "PutVM30Min")
    assert throttle.compute_groups("POST", vm + "/start") == ("UpdateVM3Min", "UpdateVM30Min")
    assert throttle.compute_groups("GET", vm + "/instanceView") == ("LowCostGet3Min", "LowCostGet30Min")
    assert throttle.compute_groups("GET", vm.rsplit("/", 1)[0]) == ("HighCostGet3Min", "HighCostGet30Min")
    assert throttle.compute_groups("GET", "/subscriptions/s/providers/Microsoft.Compute/locations/eastus/"
                                          "operations/x") == ("GetOperation3Min", "GetOperation30Min")
    assert throttle.compute_groups("GET", "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/x/y") == ()
    assert throttle.settings({"throttling": False}) is None and throttle.settings({}) == {}


def test_a_throttling_wait_is_announced_in_whole_seconds_at_azures_own_time():
    from flwrazure.localcloud.arm.throttle import whole_seconds

    assert whole_seconds(0.1, 1.0) == 1  # one write token at 10/s: Azure says 1, never 0
    assert whole_seconds(6.2, 1.0) == 7
    assert whole_seconds(6.0, 1.0) == 6
    assert whole_seconds(0.005, 0.05) == 1  # the same 0.1 s at scale 0.05: 1 s of Azure's, sent as 50 ms
    assert whole_seconds(0.3, 0.05) == 6
