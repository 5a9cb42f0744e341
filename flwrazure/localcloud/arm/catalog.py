"""The local cloud's world: regions, VM sizes, images, restrictions and quotas. A table tests and users can change
(`flwrazure local up --catalog FILE`, or PUT /_localcloud/catalog) to reproduce quota and SKU failures."""

from __future__ import annotations

import copy

LOCATIONS = {
    "eastus": "East US", "eastus2": "East US 2", "westus": "West US", "westus2": "West US 2",
    "westus3": "West US 3", "centralus": "Central US", "northeurope": "North Europe",
    "westeurope": "West Europe", "uksouth": "UK South", "francecentral": "France Central",
    "germanywestcentral": "Germany West Central", "swedencentral": "Sweden Central",
    "japaneast": "Japan East", "australiaeast": "Australia East", "southeastasia": "Southeast Asia",
    "canadacentral": "Canada Central", "brazilsouth": "Brazil South", "centralindia": "Central India",
}

VM_SIZES = {
    "Standard_D1_v2": ("standardDv2Family", 1, 3.5), "Standard_D2_v2": ("standardDv2Family", 2, 7),
    "Standard_B1s": ("standardBSFamily", 1, 1), "Standard_B2s": ("standardBSFamily", 2, 4),
    "Standard_B2ms": ("standardBSFamily", 2, 8),
    "Standard_D2s_v3": ("standardDSv3Family", 2, 8), "Standard_D4s_v3": ("standardDSv3Family", 4, 16),
    "Standard_D8s_v3": ("standardDSv3Family", 8, 32),
    "Standard_D2s_v5": ("standardDSv5Family", 2, 8), "Standard_D4s_v5": ("standardDSv5Family", 4, 16),
    "Standard_D2as_v5": ("standardDASv5Family", 2, 8),
    "Standard_F2s_v2": ("standardFSv2Family", 2, 4), "Standard_F4s_v2": ("standardFSv2Family", 4, 8),
    "Standard_E2s_v3": ("standardESv3Family", 2, 16),
    "Standard_NC4as_T4_v3": ("standardNCASv3_T4Family", 4, 28),
    "Standard_NC6s_v3": ("standardNCSv3Family", 6, 112),
    "Standard_A2_v2": ("standardAv2Family", 2, 4), "Standard_D2_v3": ("standardDv3Family", 2, 8),
    "Standard_D2ps_v5": ("standardDPSv5Family", 2, 8),
}

# What each size can do, as the resource SKUs API reports it: HyperVGenerations, PremiumIO, CpuArchitectureType.
# From Azure's size pages ("VM Generation Support", "Premium Storage") and errors Azure gave for them in public
# reports: Av2 Gen1 only, no premium storage; Dv2 and Dv3 (no "s") Gen1 only ("cannot boot Hypervisor Generation
# '2'" for D1_v2 and D2_v3), no premium storage ("storage account type 'Premium_LRS' is not supported for VM size
# 'Standard_D1_v2'"); Dpsv5 (Ampere Altra) Arm64 and Gen2 only; the s-sizes here Gen1+Gen2 with premium storage.
# A size missing here (a catalog override adding one) gets DEFAULT_CAPABILITIES.
DEFAULT_CAPABILITIES = {"HyperVGenerations": "V1,V2", "PremiumIO": True, "CpuArchitectureType": "x64"}
_GEN1_STANDARD = {"HyperVGenerations": "V1", "PremiumIO": False, "CpuArchitectureType": "x64"}
SIZE_CAPABILITIES = {
    "Standard_A2_v2": _GEN1_STANDARD, "Standard_D1_v2": _GEN1_STANDARD, "Standard_D2_v2": _GEN1_STANDARD,
    "Standard_D2_v3": _GEN1_STANDARD,
    "Standard_D2ps_v5": {"HyperVGenerations": "V2", "PremiumIO": True, "CpuArchitectureType": "Arm64"},
}

# publisher:offer:sku -> [HyperVGeneration, architecture] of the image (Ubuntu's "server" is Gen2 x64,
# "server-gen1" Gen1, "server-arm64" Gen2 Arm64); an image missing here is taken as Gen2 x64
IMAGE_FACTS = {
    "Canonical:ubuntu-24_04-lts:server": ["V2", "x64"], "Canonical:ubuntu-24_04-lts:server-gen1": ["V1", "x64"],
    "Canonical:ubuntu-24_04-lts:server-arm64": ["V2", "Arm64"],
    "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2": ["V2", "x64"],
    "Canonical:0001-com-ubuntu-server-jammy:22_04-lts": ["V1", "x64"], "Debian:debian-12:12-gen2": ["V2", "x64"],
}

FAMILY_NAMES = {
    "standardBSFamily": "Standard BS Family vCPUs", "standardDv2Family": "Standard Dv2 Family vCPUs", "standardDSv3Family": "Standard DSv3 Family vCPUs",
    "standardDSv5Family": "Standard DSv5 Family vCPUs", "standardDASv5Family": "Standard DASv5 Family vCPUs",
    "standardFSv2Family": "Standard FSv2 Family vCPUs", "standardESv3Family": "Standard ESv3 Family vCPUs",
    "standardNCASv3_T4Family": "Standard NCASv3_T4 Family vCPUs",
    "standardNCSv3Family": "Standard NCSv3 Family vCPUs", "standardAv2Family": "Standard Av2 Family vCPUs",
    "standardDv3Family": "Standard Dv3 Family vCPUs", "standardDPSv5Family": "Standard DPSv5 Family vCPUs",
}

DEFAULT = {
    "locations": LOCATIONS,
    # size -> [family, vCPUs, memory GiB]
    "vm_sizes": {k: list(v) for k, v in VM_SIZES.items()},
    # size -> capabilities (HyperVGenerations, PremiumIO, CpuArchitectureType); image -> [generation, arch]
    "size_capabilities": {k: dict(v) for k, v in SIZE_CAPABILITIES.items()},
    "image_facts": {k: list(v) for k, v in IMAGE_FACTS.items()},
    # size -> locations where the subscription may not deploy it ("*" = everywhere): SkuNotAvailable
    "restrictions": {"Standard_NC6s_v3": ["*"], "Standard_NC4as_T4_v3": ["westus", "brazilsouth"]},
    # quota limits; per-location overrides under "by_location": {"eastus": {"cores": 4}}
    "quotas": {
        "cores": 100, "virtualMachines": 25000, "family_default": 100, "families": {"standardNCSv3Family": 0},
        "PublicIPAddresses": 100, "NetworkInterfaces": 65536, "NetworkSecurityGroups": 5000,
        "VirtualNetworks": 1000, "by_location": {},
    },
    # the Retail Prices API's answers (/api/retail/prices): the local cloud's own price list, labelled as such
    # (USD per vCPU-hour for Linux VMs, per hour for a Standard static IPv4, per month for a P4 / an E4 disk, per
    # 10K operations on an E4, per hour and per GB processed for a Standard NAT gateway, as
    # Azure lists it in US regions); "available": false makes the API answer 503 (to try the offline cache)
    "prices": {"vcpu_hour": 0.05, "public_ip_hour": 0.004, "p4_disk_month": 5.0, "e4_disk_month": 2.4,
               "e4_disk_operations": 0.002, "nat_gateway_hour": 0.045,
               "nat_gateway_gb": 0.045, "available": True},
    # publisher:offer:sku (versions are all "latest"-resolvable)
    "images": [
        "Canonical:ubuntu-24_04-lts:server", "Canonical:ubuntu-24_04-lts:server-gen1",
        "Canonical:ubuntu-24_04-lts:server-arm64",
        "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2", "Canonical:0001-com-ubuntu-server-jammy:22_04-lts",
        "Debian:debian-12:12-gen2",
    ],
}


def merged(overrides: dict | None) -> dict:
    """DEFAULT with overrides applied recursively (dicts merge, everything else replaces)."""
    return deep_merge(copy.deepcopy(DEFAULT), overrides or {})


def deep_merge(into: dict, new: dict) -> dict:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def quota_limit(catalog: dict, location: str, name: str) -> int:
    """The limit of one usage counter in one region: a family name, 'cores', 'virtualMachines', 'PublicIPAddresses'."""
    quotas = catalog["quotas"]
    local = quotas.get("by_location", {}).get(location, {})
    if name in local:
        return int(local[name])
    if name in local.get("families", {}):
        return int(local["families"][name])
    if name in quotas:
        return int(quotas[name])
    return int(quotas.get("families", {}).get(name, quotas.get("family_default", 100)))


def size_restricted(catalog: dict, size: str, location: str) -> bool:
    where = catalog.get("restrictions", {}).get(size, [])
    return "*" in where or location in where


def normalize_location(catalog: dict, value: str | None) -> str | None:
    """ARM accepts 'East US' or 'eastus'; returns the short name, or None when the region does not exist."""
    if not value:
        return None
    key = value.replace(" ", "").lower()
    return key if key in catalog["locations"] else None


def capabilities(catalog: dict, size: str) -> dict:
    """A size's HyperVGenerations, PremiumIO and CpuArchitectureType (case-insensitive size name)."""
    table = catalog.get("size_capabilities", {})
    found = next((v for k, v in table.items() if k.lower() == size.lower()), {})
    return {**DEFAULT_CAPABILITIES, **found}


def image_facts(catalog: dict, image_key: str) -> tuple[str, str]:
    """An image's (HyperVGeneration, architecture); image_key is publisher:offer:sku, compared case-insensitively."""
    table = catalog.get("image_facts", {})
    found = next((v for k, v in table.items() if k.lower() == image_key.lower()), None)
    return (found[0], found[1]) if found else ("V2", "x64")
