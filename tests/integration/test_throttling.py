"""Throttling as Azure meters it (issue 11): ARM's token buckets per subscription with their remaining-count headers
and 429s, Compute's per-operation groups, knobs to resize or switch them off, and the time scale."""

from __future__ import annotations

import time

import requests

from tests.helpers import arm


def _session(cloud) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {cloud.token()}"
    return s


def _get_groups(cloud, s: requests.Session) -> requests.Response:
    return s.get(f"{cloud.info['endpoint']}/subscriptions/{cloud.sub}/resourcegroups",
                 params={"api-version": "2025-04-01"}, timeout=30, verify=cloud.info["ca_bundle"])


READS = "x-ms-ratelimit-remaining-subscription-reads"


def test_300_reads_in_a_burst_are_throttled_past_the_bucket(cloud):
    s = _session(cloud)
    answers = [_get_groups(cloud, s) for _ in range(300)]
    ok = [r for r in answers if r.status_code == 200]
    throttled = [r for r in answers if r.status_code == 429]
    # 250 tokens plus what 25/s refills while the burst lasts (a few seconds at most here)
    assert 250 <= len(ok) < 300 and throttled, (len(ok), len(throttled))
    remaining = [int(r.headers[READS]) for r in ok]
    assert remaining[0] == 249
    # counting down one per read, give or take the tokens refilled meanwhile
    pairs = list(zip(remaining, remaining[1:], strict=False))
    assert all(b >= a - 1 for a, b in pairs) and sum(b == a - 1 for a, b in pairs) >= 200
    assert remaining[-1] <= 1
    first = throttled[0]
    assert first.headers[READS] == "0"
    assert first.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert set(first.json()["error"]) == {"code", "message"}
    # one token comes back in 1/25 s: announced in whole seconds, as Azure does, so 1 (see throttle.whole_seconds)
    assert first.headers["Retry-After"] == "1" and "retry-after-ms" not in first.headers


def test_reads_refill_at_25_per_second(cloud):
    s = _session(cloud)
    while _get_groups(cloud, s).status_code != 429:
        pass
    time.sleep(1.0)
    after = int(_get_groups(cloud, s).headers[READS])
    assert 20 <= after <= 30, after  # 25 tokens in 1 s, one of them just spent


def test_time_scale_refills_faster_and_scales_retry_after(cloud):
    cloud.admin("PATCH", "config", {"time_scale": 0.1, "throttling": {"writes": {"burst": 3, "rate": 1}}})
    codes = [cloud.raw("PUT", cloud.rg_path(f"g{i}"), {"location": "eastus"}) for i in range(4)]
    assert [r.status_code for r in codes] == [201, 201, 201, 429]
    assert [r.headers["x-ms-ratelimit-remaining-subscription-writes"] for r in codes] == ["2", "1", "0", "0"]
    # 1 token per s at scale 1 = 1 s; at scale 0.1: 0.1 s, sent as milliseconds
    assert codes[3].headers["retry-after-ms"] == "100" and "Retry-After" not in codes[3].headers
    time.sleep(0.25)  # 2.5 tokens at 10/s
    assert cloud.raw("PUT", cloud.rg_path("g9"), {"location": "eastus"}).status_code == 201


def test_deletes_have_their_own_bucket(cloud):
    cloud.admin("PATCH", "config", {"throttling": {"deletes": {"burst": 1, "rate": 0.01}}})
    cloud.raw("PUT", cloud.rg_path("a"), {"location": "eastus"})
    first = cloud.raw("DELETE", cloud.rg_path("a"))
    assert first.status_code == 202 and first.headers["x-ms-ratelimit-remaining-subscription-deletes"] == "0"
    second = cloud.raw("DELETE", cloud.rg_path("a"))
    assert second.status_code == 429 and int(second.headers["Retry-After"]) == 100  # 1 token at 0.01/s
    assert "deletes" not in cloud.raw("PUT", cloud.rg_path("b"), {"location": "eastus"}).headers.get(
        "x-ms-ratelimit-remaining-subscription-writes", "deletes")


def test_admin_and_token_endpoints_are_not_metered(cloud):
    cloud.admin("PATCH", "config", {"throttling": {"reads": {"burst": 1, "rate": 0.001}}})
    s = _session(cloud)
    assert _get_groups(cloud, s).status_code == 200
    assert _get_groups(cloud, s).status_code == 429
    health = cloud.admin("GET", "requests")
    assert health.status_code == 200 and READS not in health.headers
    assert cloud.credential.get_token("https://management.azure.com/.default").token


def test_compute_meters_each_operation_group(cloud, net_stack):
    nic = cloud.network.network_interfaces.begin_create_or_update("rg", "n", arm.nic(net_stack["subnet"])).result()
    put = cloud.raw("PUT", f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines/vm",
                    arm.vm(nic.id), api="2024-07-01")
    assert put.status_code == 201
    assert put.headers["x-ms-ratelimit-remaining-resource"] == \
        "Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1199"
    # the fifth write (rg, vnet, nsg, nic, vm), give or take what 10/s refilled meanwhile
    assert 195 <= int(put.headers["x-ms-ratelimit-remaining-subscription-writes"]) <= 199
    get = cloud.raw("GET", f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines/vm", api="2024-07-01")
    assert get.headers["x-ms-ratelimit-remaining-resource"].startswith("Microsoft.Compute/LowCostGet3Min;3999,")
    listing = cloud.raw("GET", f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines", api="2024-07-01")
    assert "HighCostGet3Min;159" in listing.headers["x-ms-ratelimit-remaining-resource"]


def test_an_exhausted_compute_group_answers_like_compute(cloud, net_stack, monkeypatch):
    from flwrazure.localcloud.arm import throttle

    monkeypatch.setitem(throttle.COMPUTE_GROUPS, "HighCostGet3Min", (2, 180))
    path = f"{cloud.rg_path('rg')}/providers/Microsoft.Compute/virtualMachines"
    codes = [cloud.raw("GET", path, api="2024-07-01") for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    err = codes[2].json()["error"]
    assert err["code"] == "OperationNotAllowed" and err["details"][0]["code"] == "TooManyRequests"
    assert err["details"][0]["target"] == "HighCostGet3Min"
    assert int(codes[2].headers["Retry-After"]) == 90  # one of 2 tokens per 180 s
    assert "Microsoft.Compute/HighCostGet3Min;0" in codes[2].headers["x-ms-ratelimit-remaining-resource"]


def test_throttling_can_be_switched_off(cloud):
    cloud.admin("PATCH", "config", {"throttling": False})
    resp = cloud.raw("PUT", cloud.rg_path("a"), {"location": "eastus"})
    assert resp.status_code == 201 and "x-ms-ratelimit-remaining-subscription-writes" not in resp.headers


def test_the_sdk_rides_out_a_throttled_burst(cloud):
    """azure-core honours the millisecond hint: a burst past a small bucket still succeeds, quickly."""
    cloud.admin("PATCH", "config", {"throttling": {"writes": {"burst": 2, "rate": 50}}})
    start = time.monotonic()
    for i in range(8):
        cloud.resources.resource_groups.create_or_update(f"g{i}", {"location": "eastus"})
    assert time.monotonic() - start < 5
    log = cloud.admin("GET", "requests").json()["value"]
    assert any(r["status"] == 429 for r in log)
