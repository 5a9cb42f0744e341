"""The cluster's estimated cost per hour, from Azure's public Retail Prices API (pure: the queries to ask, how to
pick the one price that applies from its answer, and the arithmetic). Never an invented number: a price that is
not in the answer makes the estimate incomplete, and it says which one is missing.

What a cluster is billed for: each VM's compute (pay-as-you-go Linux price of its size in its region) while it runs;
each Standard static public IPv4 address and each OS disk (a Premium SSD P4 or, on sizes without premium storage,
a Standard SSD E4: the tier that holds the 30 GiB image) always, also
while the VMs are deallocated (`flwrazure pause`). Disks are priced per month; Azure's calculators use 730 hours a
month, and so do we."""

from __future__ import annotations

from dataclasses import dataclass, field

HOURS_PER_MONTH = 730
# OS disk type (what create-cluster gives a VM: plan.resources.machine_for, Premium SSD where the size has premium
# storage, else Standard SSD) -> the disk tier its 30 GiB image disk is billed as (the smallest tier that holds
# it: 32 GiB) and the Retail Prices API's product of that tier
DISK_TIERS = {"Premium_LRS": ("P4", "Premium SSD Managed Disks"),
              "StandardSSD_LRS": ("E4", "Standard SSD Managed Disks")}
DEFAULT_DISK = "Premium_LRS"  # what a VM gets when its size's capabilities were not read (as create-cluster does)
OS_DISK_TIER = DISK_TIERS[DEFAULT_DISK][0]
IP_METER = "Standard IPv4 Static Public IP"
# a Spot VM's entry in `sizes`: its size with this suffix, priced at the size's Spot meter (Azure's Retail Prices
# items for Spot carry skuName and meterName "<size> Spot", e.g. "D2s v3 Spot")
SPOT = " Spot"


def spot(size: str) -> str:
    return size + SPOT


def arm_size(size: str) -> str:
    """The VM size of a `sizes` entry (a Spot entry without its suffix)."""
    return size.removesuffix(SPOT)
# --private-clients: the Standard NAT gateway, billed per hour while it exists (paused or not) and per GB of data it
# processes (the client VMs' downloads: Flower, --extra-pip, data); the second is shown, never guessed into a total
NAT_METERS = {"nat": ("Standard Gateway", "1 Hour"), "nat_gb": ("Standard Data Processed", "1 GB")}


def disk_key(disk_type: str) -> str:
    return f"disk:{disk_type}"


@dataclass(frozen=True)
class Query:
    key: str  # what the price is for: "vm:Standard_D2s_v3", "ip", "disk:Premium_LRS"
    filter: str  # the OData $filter the Retail Prices API takes


def queries(location: str, sizes: list[str], disks: list[str] | None = None, private: bool = False) -> list[Query]:
    """One query per VM size, one for the public IP and one per OS disk type (`disks`, default Premium SSD), in
    this region; private (--private-clients): also the NAT gateway's two meters."""
    region = f"armRegionName eq '{location}'"
    out = [Query(f"vm:{s}", f"serviceName eq 'Virtual Machines' and {region} and armSkuName eq '{arm_size(s)}' "
                            "and priceType eq 'Consumption'") for s in sorted(set(sizes))]
    out.append(Query("ip", f"serviceName eq 'Virtual Network' and {region} and meterName eq '{IP_METER}'"))
    for disk in sorted(set(disks or [DEFAULT_DISK])):
        tier = DISK_TIERS[disk][0]
        out.append(Query(disk_key(disk), f"serviceName eq 'Storage' and {region} and skuName eq '{tier} LRS' and "
                                         "priceType eq 'Consumption'"))
    if private:
        out += [Query(key, f"serviceName eq 'NAT Gateway' and {region} and meterName eq '{meter}'")
                for key, (meter, _unit) in NAT_METERS.items()]
    return out


def hourly(key: str, items: list[dict]) -> float | None:
    """The hourly USD price that applies to `key` among the API's items, None when none applies.

    VMs: the Linux pay-as-you-go meter (not Windows, Spot or Low Priority), per hour; a Spot entry ("vm:<size>
    Spot"): the size's Linux Spot meter (skuName "... Spot"), per hour. IPs: per hour. Disks: the
    managed disk meter of the disk type's tier (P4 Premium SSD, E4 Standard SSD), per month -> per hour."""
    def usd(i: dict) -> bool:
        return i.get("currencyCode", "USD") == "USD" and i.get("type", "Consumption") == "Consumption" \
            and float(i.get("tierMinimumUnits") or 0) == 0

    if key.startswith("vm:"):
        want_spot = key.endswith(SPOT)
        picks = [i for i in items if usd(i) and i.get("armSkuName") == arm_size(key[3:]) and "Windows" not in
                 i.get("productName", "") and "Low Priority" not in i.get("skuName", "")
                 and i.get("skuName", "").endswith(SPOT) == want_spot and i.get("unitOfMeasure") == "1 Hour"]
    elif key == "ip":
        picks = [i for i in items if usd(i) and i.get("meterName") == IP_METER and i.get("unitOfMeasure") == "1 Hour"]
    elif key in NAT_METERS:  # per hour, or per GB for the data processed
        meter, unit = NAT_METERS[key]
        picks = [i for i in items if usd(i) and i.get("meterName") == meter and i.get("unitOfMeasure") == unit
                 and i.get("skuName", "Standard") == "Standard"]
    elif key.startswith("disk:") and key[5:] in DISK_TIERS:
        tier, product = DISK_TIERS[key[5:]]
        picks = [i for i in items if usd(i) and i.get("skuName") == f"{tier} LRS" and
                 product in i.get("productName", "") and i.get("unitOfMeasure") == "1/Month"
                 and i.get("meterName", "").endswith("Disk")]  # not e.g. a "... Disk Mount" meter
        picks = [{**i, "retailPrice": float(i["retailPrice"]) / HOURS_PER_MONTH} for i in picks]
    else:
        raise ValueError(f"unknown price key {key}")
    prices = sorted({round(float(i["retailPrice"]), 6) for i in picks})
    return prices[0] if prices else None  # several meters for one thing (regions' duplicates): the lowest


@dataclass
class Estimate:
    """USD per hour: `running` while every VM runs, `paused` while they are deallocated (IPs and disks only)."""
    running: float | None
    paused: float | None
    lines: list[dict] = field(default_factory=list)  # what, count, unit price per hour, subtotal
    missing: list[str] = field(default_factory=list)  # keys whose price the API did not give
    source: str = ""  # where the prices came from (and when, for a cached answer)
    # --private-clients only: the NAT gateway's price per GB processed, and what the same cluster costs per hour in
    # the default layout (every client VM with its public IP, no NAT gateway)
    private: dict | None = None

    def to_dict(self) -> dict:
        out = {"usd_per_hour": self.running, "usd_per_hour_paused": self.paused, "lines": self.lines,
               "missing": self.missing, "source": self.source}
        if self.private is not None:
            out.update(self.private)
        return out


def os_disks(sizes: list[str], disk_of: dict[str, str] | None) -> list[str]:
    """The OS disk type of each VM (one per entry of `sizes`), from the disk type each size gets (create-cluster's
    choice, plan.resources.machine_for; recorded with the cluster); a size not in it gets the default."""
    return [(disk_of or {}).get(arm_size(s), DEFAULT_DISK) for s in sizes]


def estimate(sizes: list[str], prices: dict[str, float | None], source: str,
             disks: list[str] | None = None, private: bool = False) -> Estimate:
    """sizes: one VM size per VM of the cluster (the server first); disks: each VM's OS disk type (default Premium
    SSD); prices: key -> hourly price (None: unknown). private (--private-clients): one public IP for the server and
    one for the NAT gateway instead of one per VM, and the NAT gateway; the estimate then also says what the same
    cluster costs in the default layout."""
    if private:
        est = _estimate(sizes, prices, source, disks, ips=2, nat=True)
        public = _estimate(sizes, prices, source, disks, ips=len(sizes), nat=False)
        gb = prices.get("nat_gb")
        est.private = {"usd_per_gb_processed": None if gb is None else round(gb, 6),
                       "usd_per_hour_public_layout": public.running, "public_ips_saved": len(sizes) - 2}
        return est
    return _estimate(sizes, prices, source, disks, ips=len(sizes), nat=False)


def _estimate(sizes: list[str], prices: dict[str, float | None], source: str, disks: list[str] | None, ips: int,
              nat: bool) -> Estimate:
    counts: dict[str, int] = {}
    for s in sizes:
        counts[s] = counts.get(s, 0) + 1
    disk_counts: dict[str, int] = {}
    for d in disks or [DEFAULT_DISK] * len(sizes):
        disk_counts[d] = disk_counts.get(d, 0) + 1
    lines, missing = [], []
    compute = always = 0.0
    for what, n, key in [*[(f"VM {s}", n, f"vm:{s}") for s, n in sorted(counts.items())],
                         ("Standard public IP", ips, "ip"), *([("NAT gateway", 1, "nat")] if nat else []),
                         *[(f"OS disk {DISK_TIERS[d][0]}", n, disk_key(d)) for d, n in sorted(disk_counts.items())]]:
        price = prices.get(key)
        if price is None:
            missing.append(key)
            continue
        lines.append({"what": what, "count": n, "usd_per_hour_each": round(price, 6),
                      "usd_per_hour": round(price * n, 6), "billed_while_paused": not key.startswith("vm:")})
        if key.startswith("vm:"):
            compute += price * n
        else:
            always += price * n
    if missing:
        paused = None if any(not k.startswith("vm:") for k in missing) else round(always, 4)
        return Estimate(None, paused, lines, missing, source)
    return Estimate(round(compute + always, 4), round(always, 4), lines, missing, source)


def describe(est: dict | None, paused: bool = False) -> str:
    """One line for people, from Estimate.to_dict() (None: no price known)."""
    if est is None:
        return "Estimated cost: unknown (no answer from the Retail Prices API and none cached)."
    running, idle, source = est["usd_per_hour"], est["usd_per_hour_paused"], est["source"]
    if running is None:
        base = f"Estimated cost: incomplete (no list price for {', '.join(est['missing'])})"
        if paused and idle is not None:
            return f"{base}; while paused ${idle:.4f}/hour (public IPs, OS disks) — {source}."
        return f"{base} — {source}."
    if paused:
        return (f"Estimated cost while paused: ${idle:.4f}/hour (still billed: public IPs, "
                f"{'the NAT gateway, ' if 'usd_per_hour_public_layout' in est else ''}OS disks; "
                f"${running:.4f}/hour when running) — {source}.{_private_note(est)}")
    risk = " Spot clients: their price changes and Azure may evict them (`resume` brings them back)." \
        if any(line["what"].endswith(SPOT) for line in est.get("lines") or []) else ""
    return (f"Estimated cost: ${running:.4f}/hour (${running * 24:.2f}/day; ${idle:.4f}/hour while paused) "
            f"— {source}.{_private_note(est)}{risk}")


def _private_note(est: dict) -> str:
    """--private-clients: the NAT gateway's data charge and the comparison with the default layout."""
    if "usd_per_hour_public_layout" not in est:
        return ""
    nat = next((ln for ln in est["lines"] if ln["what"] == "NAT gateway"), None)
    gb, public, running = est.get("usd_per_gb_processed"), est["usd_per_hour_public_layout"], est["usd_per_hour"]
    parts = [f"NAT gateway ${nat['usd_per_hour']:.4f}/hour" if nat else "NAT gateway (price unknown)",
             f"+ ${gb:.4f} per GB it processes (not in the total)" if gb is not None else
             "+ data processed (price unknown)",
             f"{est['public_ips_saved']} client public IP(s) saved"]
    text = " Private clients: " + ", ".join(parts[:1]) + " " + parts[1] + "; " + parts[2]
    if public is not None and running is not None:
        diff = running - public
        text += (f"; the default layout would cost ${public:.4f}/hour "
                 f"({'+' if diff >= 0 else '-'}${abs(diff):.4f}/hour for private clients)")
    return text + "."
