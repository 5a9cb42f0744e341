"""Compute and network usages (quota) and resource SKUs, from the catalog, plus the vCPU quota check that
VM creation and start run, with Azure's OperationNotAllowed message naming family, limit and usage."""

from __future__ import annotations

from flwrazure.localcloud.arm import catalog as cat
from flwrazure.localcloud.arm import spot
from flwrazure.localcloud.arm.common import Ctx, Resp, location, page
from flwrazure.localcloud.arm.errors import ArmError

VM = "Microsoft.Compute/virtualMachines"
COUNTS_AGAINST_QUOTA = {"starting", "running", "stopping", "stopped", "deallocating", None}
PIP = "Microsoft.Network/publicIPAddresses"
NETWORK_COUNTERS = [("PublicIPAddresses", "Public IP Addresses", PIP),
                    ("StaticPublicIPAddresses", "Static Public IP Addresses", PIP),
                    ("StandardSkuPublicIpAddresses", "Public IPv4 Addresses - Standard", PIP),
                    ("NetworkInterfaces", "Network Interfaces", "Microsoft.Network/networkInterfaces"),
                    ("NetworkSecurityGroups", "Network Security Groups", "Microsoft.Network/networkSecurityGroups"),
                    ("VirtualNetworks", "Virtual Networks", "Microsoft.Network/virtualNetworks")]
# The three public-IP counters Azure's network provider keeps per region, what each counts, and the error its PUT
# answers when one is full (400, details []). Codes and messages as users report them: PublicIPCountLimitReached
# "Cannot create more than 20 public IP addresses for this subscription in this region.";
# StaticPublicIPCountLimitReached "... with static allocation method ..."; IPv4StandardSkuPublicIpCountLimitReached
# "Cannot create more than 10 IPv4 Standard SKU public IP addresses ...". Names and labels of the usages as the
# network usages API (UsageList example) and `az network list-usages` show them.
PIP_COUNTERS = [
    ("PublicIPAddresses", lambda b: True, "PublicIPCountLimitReached",
     "Cannot create more than {limit} public IP addresses for this subscription in this region."),
    ("StaticPublicIPAddresses", lambda b: b["properties"].get("publicIPAllocationMethod") == "Static",
     "StaticPublicIPCountLimitReached",
     "Cannot create more than {limit} public IP addresses with static allocation method for this subscription in "
     "this region."),
    ("StandardSkuPublicIpAddresses", lambda b: (b.get("sku") or {}).get("name") == "Standard",
     "IPv4StandardSkuPublicIpCountLimitReached",
     "Cannot create more than {limit} IPv4 Standard SKU public IP addresses for this subscription in this region."),
]


def pip_limit(catalog: dict, loc: str, name: str) -> int:
    """A public-IP counter's limit; the static and Standard-SKU counters default to the total's (as on
    subscriptions whose users report 20 for both), unless the catalog sets them."""
    quotas = catalog["quotas"]
    if name in quotas or name in quotas.get("by_location", {}).get(loc, {}):
        return cat.quota_limit(catalog, loc, name)
    return cat.quota_limit(catalog, loc, "PublicIPAddresses")


def pip_counts(ctx: Ctx, loc: str) -> dict[str, int]:
    bodies = [rec["body"] for rec in ctx.store.of_type(PIP) if rec["body"]["location"] == loc]
    return {name: sum(1 for b in bodies if counts(b)) for name, counts, _, _ in PIP_COUNTERS}


def check_public_ip(ctx: Ctx, loc: str, new: dict) -> None:
    """A new public IP (new: its body as it would be stored) must fit every counter it counts against."""
    used = pip_counts(ctx, loc)
    for name, counts, code, message in PIP_COUNTERS:
        limit = pip_limit(ctx.catalog, loc, name)
        if counts(new) and used[name] >= limit:
            raise ArmError(400, code, message.format(limit=limit))


def size_info(catalog: dict, size: str) -> tuple[str, int, float] | None:
    for name, (family, vcpus, mem) in catalog["vm_sizes"].items():
        if name.lower() == (size or "").lower():
            return family, int(vcpus), mem
    return None


def usage(ctx: Ctx, loc: str, exclude: str | None = None) -> dict[str, int]:
    """vCPUs in use per family and in total, and the VM count, for one region."""
    out: dict[str, int] = {"cores": 0, "virtualMachines": 0}
    for rec in ctx.store.of_type(VM):
        body = rec["body"]
        if body["location"] != loc or (exclude and body["id"].lower() == exclude.lower()):
            continue
        out["virtualMachines"] += 1
        info = size_info(ctx.catalog, body["properties"]["hardwareProfile"]["vmSize"])
        low = spot.usage_counter(body["properties"])
        if low and info:  # Spot: its own regional pool, deallocated or not
            out[low] = out.get(low, 0) + info[1]
            continue
        if rec["meta"].get("power") not in COUNTS_AGAINST_QUOTA:
            continue
        if info:
            out["cores"] += info[1]
            out[info[0]] = out.get(info[0], 0) + info[1]
    return out


def check_cores(ctx: Ctx, loc: str, size: str, vm_id: str, low_priority: bool = False) -> None:
    """low_priority: a Spot VM, counted against the regional low-priority vCPUs only (the label in its message is
    ours: no public report quotes Azure's for that counter)."""
    family, vcpus, _ = size_info(ctx.catalog, size)
    used = usage(ctx, loc, exclude=vm_id)
    counters = ((("lowPriorityCores", "Low Priority Cores"),) if low_priority else
                ((family, f"{family} Cores"), ("cores", "Total Regional Cores")))
    for counter, label in counters:
        limit, current = cat.quota_limit(ctx.catalog, loc, counter), used.get(counter, 0)
        if current + vcpus > limit:
            raise ArmError(409, "OperationNotAllowed",
                           f"Operation could not be completed as it results in exceeding approved {label} quota. "
                           f"Additional details - Deployment Model: Resource Manager, Location: {loc}, Current Limit: "
                           f"{limit}, Current Usage: {current}, Additional Required: {vcpus}, (Minimum) New Limit "
                           f"Required: {current + vcpus}. Submit a request for Quota increase at "
                           "https://aka.ms/ProdportalCRP by specifying parameters listed in the 'Details' section "
                           "for deployment to succeed.")
    if used["virtualMachines"] + 1 > cat.quota_limit(ctx.catalog, loc, "virtualMachines"):
        raise ArmError(409, "OperationNotAllowed",
                       f"Operation could not be completed as it results in exceeding approved Virtual Machines quota. "
                       f"Location: {loc}, Current Limit: {cat.quota_limit(ctx.catalog, loc, 'virtualMachines')}.")


def compute_usages(ctx: Ctx, loc_in: str) -> Resp:
    loc = location(ctx, loc_in, "Microsoft.Compute/locations/usages")
    used = usage(ctx, loc)
    families = sorted({v[0] for v in ctx.catalog["vm_sizes"].values()})
    rows = [("cores", "Total Regional vCPUs"), ("virtualMachines", "Virtual Machines"),
            ("lowPriorityCores", "Total Regional Low-priority vCPUs")]  # as recorded: compute-usages-list.json
    rows += [(f, cat.FAMILY_NAMES.get(f, f"{f} vCPUs")) for f in families]
    return page(ctx, [{"unit": "Count", "currentValue": used.get(name, 0),
                       "limit": cat.quota_limit(ctx.catalog, loc, name),
                       "name": {"value": name, "localizedValue": label}} for name, label in rows])


def network_usages(ctx: Ctx, loc_in: str) -> Resp:
    loc = location(ctx, loc_in, "Microsoft.Network/locations/usages")
    rows = []
    ips = pip_counts(ctx, loc)
    for name, label, arm_type in NETWORK_COUNTERS:
        if name in ips:
            count, limit = ips[name], pip_limit(ctx.catalog, loc, name)
        else:
            count = sum(1 for rec in ctx.store.of_type(arm_type) if rec["body"]["location"] == loc)
            limit = cat.quota_limit(ctx.catalog, loc, name)
        rows.append({"id": f"/subscriptions/{ctx.sub}/providers/Microsoft.Network/locations/{loc}/usages/{name}",
                     "unit": "Count", "currentValue": count, "limit": limit,
                     "name": {"value": name, "localizedValue": label}})
    return page(ctx, rows)


def skus(ctx: Ctx) -> Resp:
    text = ctx.query.get("$filter", "")
    locs = list(ctx.catalog["locations"])
    if text:
        wanted = text.split("'")[1] if "'" in text else ""
        loc = cat.normalize_location(ctx.catalog, wanted)
        if not text.lower().startswith("location eq") or loc is None:
            raise ArmError(400, "InvalidFilterInQueryString",
                           f"Invalid $filter '{text}': the resource SKUs API supports only \"location eq '<region>'\".")
        locs = [loc]
    out = []
    for size, (family, vcpus, mem) in ctx.catalog["vm_sizes"].items():
        for loc in locs:
            restrictions = []
            if cat.size_restricted(ctx.catalog, size, loc):
                restrictions.append({"type": "Location", "values": [loc], "restrictionInfo": {"locations": [loc]},
                                     "reasonCode": "NotAvailableForSubscription"})
            out.append({"resourceType": "virtualMachines", "name": size, "tier": "Standard",
                        "size": size.split("_", 1)[1], "family": family, "locations": [loc],
                        "locationInfo": [{"location": loc, "zones": ["1", "2", "3"], "zoneDetails": []}],
                        "capabilities": _capabilities(ctx.catalog, size, vcpus, mem),
                        "restrictions": restrictions})
    return page(ctx, out)


def _capabilities(catalog: dict, size: str, vcpus: int, mem: float) -> list[dict]:
    """Resource SKU capabilities as Azure lists them: name/value pairs, every value a string."""
    caps = cat.capabilities(catalog, size)
    memory = f"{float(mem):g}"
    return [{"name": "vCPUs", "value": str(vcpus)}, {"name": "MemoryGB", "value": memory},
            {"name": "HyperVGenerations", "value": caps["HyperVGenerations"]},
            {"name": "PremiumIO", "value": "True" if caps["PremiumIO"] else "False"},
            {"name": "CpuArchitectureType", "value": caps["CpuArchitectureType"]},
            {"name": "LowPriorityCapable", "value": "True" if caps.get("LowPriorityCapable", True) else "False"},
            {"name": "vCPUsAvailable", "value": str(vcpus)}]
