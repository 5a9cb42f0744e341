"""Checks before anything is created: credentials, region, VM sizes, vCPU and public-IP quota. Each failure is
one message with the numbers and what to do; nothing is created."""

from __future__ import annotations

import difflib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from flwrazure.azure.errors import IP_COUNTERS, translate
from flwrazure.azure.inventory import COMPUTE_API, NETWORK_API, list_raw
from flwrazure.azure.target import Target
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import resources

# Every public IP flwrazure creates is Standard and static, so it counts against all three of the network
# provider's public-IP counters (names as its usages API lists them); the PUT fails on whichever is full first
# (PublicIPCountLimitReached, StaticPublicIPCountLimitReached, IPv4StandardSkuPublicIpCountLimitReached).
PUBLIC_IP_COUNTERS = (("PublicIPAddresses", "public IP addresses"),
                      ("StaticPublicIPAddresses", "static public IP addresses"),
                      ("StandardSkuPublicIpAddresses", "Standard SKU public IPv4 addresses"))
# the code the public IPs' PUT fails with when that counter is full: a full one found first has the same code
IP_LIMIT_CODE = {counter: code for code, counter in IP_COUNTERS.items()}


def public_ip_quota_message(target: Target, location: str, counter: str, label: str, used: int, limit: int,
                            needed: int) -> str:
    """The numbers, and the two ways out that work: free addresses, or a higher limit."""
    scope = f"/subscriptions/{target.subscription}/providers/Microsoft.Network/locations/{location}"
    return (f"Not enough public IP quota in {location}: the cluster needs {needed} more {label}, {used} of {limit} "
            f"are in use ({counter}; {max(limit - used, 0)} free). Free some: `flwrazure teardown --cluster NAME` "
            f"releases another cluster's, `az network public-ip list --query \"[?ipConfiguration==null].id\"` "
            f"lists unattached ones to delete; or raise the limit to at least {used + needed} (Azure portal > "
            f"Quotas > Networking, or `az quota update --resource-name {counter} --scope {scope} --limit-object "
            f"value={used + needed} --resource-type PublicIpAddresses`). Nothing was created.")


def _regions(target: Target) -> list[str]:
    provider = target.resources.providers.get("Microsoft.Compute").as_dict()
    for rtype in provider.get("resourceTypes", []):
        if rtype.get("resourceType", "").lower() == "virtualmachines":
            return sorted({loc.replace(" ", "").lower() for loc in rtype.get("locations", [])})
    return []


# The three lists are read as raw ARM JSON through the resource client's pipeline (inventory.list_raw): going
# through the compute and network SDKs' models first imported both (~0.4 s of CPU) before the first write of a
# create-cluster; the fields read here are the REST names the models' as_dict() gave too.
_SKUS = ("Microsoft.Compute/skus", "2021-07-01")
_COMPUTE_USAGES = ("Microsoft.Compute/locations/{}/usages", COMPUTE_API)
_NETWORK_USAGES = ("Microsoft.Network/locations/{}/usages", NETWORK_API)


def _list(target: Target, provider_path: str, api: str, **params: str) -> list[dict]:
    path = f"/subscriptions/{target.subscription}/providers/{provider_path}"
    return list_raw(target.resources, path, {"api-version": api, **params})


def fetch(target: Target, location: str, pool: ThreadPoolExecutor) -> dict:
    """Start the four reads preflight needs (all at once); `check` evaluates them."""
    return {"regions": pool.submit(_regions, target),
            "skus": pool.submit(_list, target, _SKUS[0], _SKUS[1], **{"$filter": f"location eq '{location}'"}),
            "usage": pool.submit(_list, target, _COMPUTE_USAGES[0].format(location), _COMPUTE_USAGES[1]),
            "network_usage": pool.submit(_list, target, _NETWORK_USAGES[0].format(location), _NETWORK_USAGES[1])}


def _vm_skus(facts: dict) -> dict[str, dict]:
    return {s["name"]: s for s in facts["skus"].result() if s.get("resourceType") == "virtualMachines"}


def spelled(facts: dict, size: str) -> str:
    """The size as the region's catalog spells it (Azure compares size names ignoring case); as given when the
    catalog has no such size. Call after check()."""
    return next((n for n in _vm_skus(facts) if n.lower() == size.lower()), size)


def check(target: Target, location: str, facts: dict, sizes_needed: list[str], public_ips_needed: int,
          sizes_used: tuple[str, ...] = (), flags: dict[str, str] | None = None,
          spot_needed: tuple[str, ...] = ()) -> dict[str, tuple[dict, str]]:
    """Raise on the first blocking problem (region first: the other reads fail for a region that is not).
    Returns, for each size in sizes_needed and sizes_used (as given and as the catalog spells it), the image and
    OS disk type it can use (plan.resources.machine_for of its capabilities). flags: the option each size was
    given with (--vm-size, --client-vm-size, ...), named in the messages. spot_needed: the sizes of those of
    sizes_needed that are Spot VMs (they count against the regional low-priority vCPUs, not their family's)."""
    try:
        regions = facts["regions"].result()
    except Exception as exc:
        raise translate(exc, f"subscription {target.subscription}") from exc
    if location not in regions:
        close = difflib.get_close_matches(location, regions, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"regions include {', '.join(regions[:8])}…"
        raise UsageError(f"--location {location} is not a region of {target.describe()}: {hint}")
    try:
        vm_skus, usage, net_usage = _vm_skus(facts), facts["usage"].result(), facts["network_usage"].result()
    except Exception as exc:
        raise translate(exc, f"region {location}") from exc

    need_family: Counter = Counter()
    need_cores = need_low = 0
    machines: dict[str, tuple[dict, str]] = {}
    for size in dict.fromkeys([*sizes_used, *sizes_needed]):
        sku = vm_skus.get(size) or next((s for n, s in vm_skus.items() if n.lower() == size.lower()), None)
        count = sizes_needed.count(size)
        flag = (flags or {}).get(size, "--vm-size")
        if not count and (sku is None or sku.get("restrictions")):
            continue  # only existing VMs have this size: nothing of it is created now
        if sku is None:
            by_lower = {n.lower(): n for n in vm_skus}
            close = [by_lower[c] for c in difflib.get_close_matches(size.lower(), list(by_lower), n=3)]
            hint = f" Closest: {', '.join(close)}." if close else ""
            raise UsageError(f"{flag} {size}: VM size {size} is not offered in {location}.{hint}")
        blocked = [r for r in sku.get("restrictions") or [] if r.get("type") == "Location"]
        if blocked:
            reason = blocked[0].get("reasonCode", "restricted")
            raise UsageError(f"{flag} {size}: VM size {size} is not available to this subscription in {location} "
                             f"({reason}): choose another {flag} or --location.")
        caps = {c["name"]: str(c["value"]) for c in sku.get("capabilities") or []}
        machine = resources.machine_for(caps)
        if machine is None:
            raise UsageError(f"{flag} {size}: VM size {size} cannot boot an Ubuntu 24.04 image (CPU "
                             f"{caps.get('CpuArchitectureType')}, Hyper-V generations {caps.get('HyperVGenerations')}"
                             f"): choose another {flag}.")
        machines[size] = machines[sku["name"]] = machine
        spot = spot_needed.count(size)
        if spot and caps.get("LowPriorityCapable", "True").lower() == "false":
            raise UsageError(f"{flag} {size}: Azure Spot is not offered for VM size {size}: choose another {flag}, "
                             "or create the cluster without --spot.")
        vcpus = int(caps.get("vCPUs", 0))
        need_family[sku.get("family", size)] += vcpus * (count - spot)
        need_cores += vcpus * (count - spot)
        need_low += vcpus * spot

    limits = {u["name"]["value"]: (int(u["currentValue"]), int(u["limit"])) for u in usage}
    checks = [(fam, f"{fam} vCPUs", need) for fam, need in need_family.items()]
    checks.append(("cores", "total regional vCPUs", need_cores))
    checks.append(("lowPriorityCores", "low-priority (Spot) vCPUs", need_low))
    checks.append(("virtualMachines", "virtual machines", len(sizes_needed)))
    for counter, label, need in checks:
        if need and counter in limits:
            used, limit = limits[counter]
            if used + need > limit:
                raise FlwrazureError(
                    f"Not enough quota in {location}: the cluster needs {need} {label}, {used} of {limit} are in "
                    f"use ({limit - used} free). Request an increase (Azure portal > Quotas, ask for at least "
                    f"{used + need}), or use fewer clients / a smaller --vm-size / another --location. "
                    "Nothing was created.", code="azure.QuotaExceeded")
    ips = {u["name"]["value"].lower(): (int(u["currentValue"]), int(u["limit"])) for u in net_usage}
    for counter, label in PUBLIC_IP_COUNTERS:
        used, limit = ips.get(counter.lower(), (0, None))
        if public_ips_needed and limit is not None and used + public_ips_needed > limit:
            raise FlwrazureError(public_ip_quota_message(target, location, counter, label, used, limit,
                                                         public_ips_needed), code=f"azure.{IP_LIMIT_CODE[counter]}")
    return machines
