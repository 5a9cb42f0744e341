"""How long Azure takes, and what Retry-After it sends: the `azure` latency profile and the time scale.

Durations are seconds at time scale 1; `time_scale` F multiplies every duration and every Retry-After and divides
the throttling buckets' refill time (so a run at F = 0.05 shows Azure's shape twenty times faster). Where each
figure comes from is in the `SOURCES` column of each table and in docs/local-cloud.md.

Retry-After on the wire: Azure sends whole seconds. A scaled value of 1 s or more is sent as
`Retry-After: <rounded whole seconds>`; a scaled value under 1 s (only at small time scales) is sent as
`retry-after-ms: <ms>` and `x-ms-retry-after-ms: <ms>` with no `Retry-After`: azure-core reads those headers when
Retry-After is absent (it treats `Retry-After: 0` as no hint at all and would fall back to its own polling
interval, 30 s by default), and whole-second clients simply see no hint."""

from __future__ import annotations

import math

# (arm type or "*", operation) -> seconds at time scale 1.   operation: PUT (create), UPDATE (PUT on an existing
# resource), DELETE, or the POST action's name.
AZURE_DURATIONS: dict[tuple[str, str], float] = {
    # recordings: compute-vm-put-create.json, startTime 03:57:53.05 -> endTime 03:59:08.87 (75.8 s)
    ("microsoft.compute/virtualmachines", "PUT"): 75.0,
    # recordings: compute-vm-put-existing.json (resize), 10:38:13.82 -> 10:38:14.45
    ("microsoft.compute/virtualmachines", "UPDATE"): 1.0,
    # recordings: compute-vm-start.json, 10:34:25.68 -> 10:34:31.18 (5.5 s)
    ("microsoft.compute/virtualmachines", "start"): 5.5,
    # recordings: compute-vm-poweroff.json, 10:33:54.35 -> 10:34:02.76 (8.4 s)
    ("microsoft.compute/virtualmachines", "poweroff"): 8.4,
    # no recording: deallocation releases the host; public reports put it at 30-90 s, the low end is taken
    ("microsoft.compute/virtualmachines", "deallocate"): 30.0,
    ("microsoft.compute/virtualmachines", "restart"): 10.0,   # no recording: a poweroff + start, shortened
    # no recording: public reports of `az vm delete` 30-60 s, the low end is taken
    ("microsoft.compute/virtualmachines", "DELETE"): 30.0,
    ("microsoft.compute/disks", "DELETE"): 2.0,                 # no recording
    # recordings: network-vnet-put-with-subnet.json: the poll after Retry-After 3 was InProgress, the next (10 s
    # later) Succeeded: 3 s < t <= 13 s
    ("microsoft.network/virtualnetworks", "PUT"): 5.0,
    # recordings: the subnet's first poll (after Retry-After 3) was Succeeded: t <= 3 s
    ("microsoft.network/virtualnetworks/subnets", "PUT"): 2.0,
    # recordings: NSG, Standard public IP: the first poll was already Succeeded (t <= 3 s)
    ("microsoft.network/networksecuritygroups", "PUT"): 2.0,
    ("microsoft.network/networksecuritygroups/securityrules", "PUT"): 2.0,
    ("microsoft.network/publicipaddresses", "PUT"): 2.0,
    # recordings: network-nic-put.json: the 201 is already Succeeded; the operation ends at the first poll
    ("microsoft.network/networkinterfaces", "PUT"): 1.0,
    # no recording of network deletes: taken equal to their creation
    ("microsoft.network/virtualnetworks", "DELETE"): 5.0,
    ("microsoft.network/virtualnetworks/subnets", "DELETE"): 2.0,
    ("microsoft.network/networksecuritygroups", "DELETE"): 2.0,
    ("microsoft.network/networksecuritygroups/securityrules", "DELETE"): 2.0,
    ("microsoft.network/publicipaddresses", "DELETE"): 2.0,
    ("microsoft.network/networkinterfaces", "DELETE"): 2.0,
    # issue 11: resource-group deletion took ~78 s in two recordings outside the shared sample
    ("microsoft.resources/resourcegroups", "DELETE"): 78.0,
}

# Retry-After Azure sends (seconds at scale 1); None = no header.  Sources: recordings (SDK test-proxy ones; the
# CLI recorder strips Retry-After).
AZURE_RETRY_AFTER = {
    "network_put": 3,          # network-vnet-put-with-subnet.json: VNet and subnet 201
    "network_put_nic": None,   # network-nic-put.json: the NIC 201 (already Succeeded) carries none
    "network_poll": 10,        # network-vnet-put-with-subnet.json: InProgress poll; terminal polls carry none
    "network_delete": 10,      # no recording: taken as the network InProgress value
    "compute_write": 10,       # compute-vm-put-create.json: the VM 201
    "compute_first_poll_create": 50,  # compute-vm-put-create.json: first poll of a VM create
    "compute_first_poll": 30,  # issue 11 "30-50 s on the first compute poll": the low end for shorter operations
    "group_delete": 15,        # issue 11: resource-group DELETE 202 and its 202 polls
}


def scale(config: dict) -> float:
    return float(config.get("time_scale") or 1.0)


def profile(config: dict) -> str | None:
    return config.get("profile") or None


def duration(config: dict, arm_type: str, operation: str) -> float:
    """Seconds the operation takes on this cloud (already scaled)."""
    by_type = config.get("latency_by_type") or {}
    if arm_type in by_type:
        return float(by_type[arm_type]) * scale(config)
    if profile(config) == "azure":
        key = (arm_type.lower(), operation)
        if key not in AZURE_DURATIONS and operation == "UPDATE":
            key = (arm_type.lower(), "PUT")
        if key in AZURE_DURATIONS:
            return AZURE_DURATIONS[key] * scale(config)
    return float(config.get("latency", 0.0)) * scale(config)


def retry_after(config: dict, kind: str) -> dict[str, str]:
    """The Retry-After headers of an LRO response of `kind` (see AZURE_RETRY_AFTER), or {}."""
    if profile(config) == "azure":
        value = AZURE_RETRY_AFTER.get(kind)
        return {} if value is None else wire(value * scale(config))
    if config.get("lro_retry_after") is not None:
        return {"Retry-After": str(config["lro_retry_after"])}
    return {}


def wire(seconds: float) -> dict[str, str]:
    """A delay as headers: whole seconds when >= 1 s, else milliseconds (see the module's docstring)."""
    if seconds >= 1:
        return {"Retry-After": str(max(1, round(seconds)))}
    ms = max(1, math.ceil(round(seconds * 1000, 6)))
    return {"retry-after-ms": str(ms), "x-ms-retry-after-ms": str(ms)}
