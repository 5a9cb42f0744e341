"""The Retail Prices API (`GET /api/retail/prices`), as Azure serves it: no authentication, an OData `$filter` of
`field eq 'value'` clauses joined by `and`, pages of 100 items with `NextPageLink` (`$skip`), the item fields
Azure's items carry. The prices are the local cloud's own (from its catalog), and every answer says so:
`CustomerEntityId` is "flwrazure-local-cloud" and each product name ends in "(flwrazure local cloud price list)"."""

from __future__ import annotations

import functools
import re
import uuid
from urllib.parse import urlencode

from flwrazure.localcloud.arm.common import Resp

PAGE = 100
LABEL = "(flwrazure local cloud price list)"
_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*", re.I)
EFFECTIVE = "2026-01-01T00:00:00Z"


@functools.cache  # the same few thousand ids on every query
def _id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "flwrazure-prices:" + ":".join(parts)))


def _item(region: str, region_label: str, service: str, family: str, product: str, sku: str, meter: str,
          price: float, unit: str, arm_sku: str = "") -> dict:
    return {"currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": round(price, 6),
            "unitPrice": round(price, 6), "armRegionName": region, "location": region_label,
            "effectiveStartDate": EFFECTIVE, "meterId": _id(region, product, sku, meter), "meterName": meter,
            "productId": _id(product), "skuId": _id(product, sku), "productName": f"{product} {LABEL}",
            "skuName": sku, "serviceName": service, "serviceId": _id(service), "serviceFamily": family,
            "unitOfMeasure": unit, "type": "Consumption", "isPrimaryMeterRegion": True, "armSkuName": arm_sku}


def items(catalog: dict) -> list[dict]:
    """Every meter of the local cloud's price list: per region, each VM size (Linux, Windows, Spot), the Standard
    static public IPv4 address, the Standard NAT gateway (hours, data processed), Premium SSD P4 and Standard SSD E4 disks."""
    table = catalog.get("prices") or {}
    out: list[dict] = []
    for region, label in sorted(catalog["locations"].items()):
        for size, (family, vcpus, _mem) in sorted(catalog["vm_sizes"].items()):
            short = size.removeprefix("Standard_").replace("_", " ")
            series = family.removeprefix("standard").removesuffix("Family")
            linux = float(table.get("vcpu_hour", 0.05)) * int(vcpus)
            out.append(_item(region, label, "Virtual Machines", "Compute", f"Virtual Machines {series} Series",
                             short, short, linux, "1 Hour", size))
            out.append(_item(region, label, "Virtual Machines", "Compute",
                             f"Virtual Machines {series} Series Windows", short, short, linux * 1.8, "1 Hour", size))
            out.append(_item(region, label, "Virtual Machines", "Compute", f"Virtual Machines {series} Series",
                             f"{short} Spot", f"{short} Spot", linux * 0.2, "1 Hour", size))
        out.append(_item(region, label, "Virtual Network", "Networking", "IP Addresses", "Standard",
                         "Standard IPv4 Static Public IP", float(table.get("public_ip_hour", 0.004)), "1 Hour"))
        # NAT gateway: an hourly gateway meter and a per-GB processed-data meter of the Standard SKU (the names the
        # Retail Prices API gives them; data processed is priced here but never metered by the local cloud)
        out.append(_item(region, label, "NAT Gateway", "Networking", "NAT Gateway", "Standard", "Standard Gateway",
                         float(table.get("nat_gateway_hour", 0.045)), "1 Hour"))
        out.append(_item(region, label, "NAT Gateway", "Networking", "NAT Gateway", "Standard",
                         "Standard Data Processed", float(table.get("nat_gateway_gb", 0.045)), "1 GB"))
        out.append(_item(region, label, "Storage", "Storage", "Premium SSD Managed Disks", "P4 LRS", "P4 LRS Disk",
                         float(table.get("p4_disk_month", 5.0)), "1/Month"))
        # Azure lists a Standard SSD tier with its disk meter and a per-10K-transactions meter of the same SKU
        out.append(_item(region, label, "Storage", "Storage", "Standard SSD Managed Disks", "E4 LRS", "E4 LRS Disk",
                         float(table.get("e4_disk_month", 2.4)), "1/Month"))
        out.append(_item(region, label, "Storage", "Storage", "Standard SSD Managed Disks", "E4 LRS",
                         "E4 LRS Disk Operations", float(table.get("e4_disk_operations", 0.002)), "10K"))
    return out


def parse_filter(text: str) -> list[tuple[str, str]] | None:
    """`a eq 'x' and b eq 'y'` -> [(a, x), (b, y)]; None when the filter uses anything else."""
    if not text.strip():
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        m = _CLAUSE.fullmatch(part)
        if m is None:
            return None
        clauses.append((m.group(1), m.group(2).replace("''", "'")))
    return clauses


def _matches(item: dict, clauses: list[tuple[str, str]]) -> bool:
    for field, value in clauses:
        if field == "priceType":
            field = "type"
        have = item.get(field)
        if have is None or str(have).lower() != value.lower():
            return False
    return True


def retail_prices(catalog: dict, base_url: str, query: dict) -> Resp:
    """GET /api/retail/prices?$filter=...&$skip=N (query keys lower-cased by the app)."""
    table = catalog.get("prices") or {}
    if not table.get("available", True):
        return Resp(503, {"Error": {"Code": "ServiceUnavailable", "Message": "The service is unavailable."}})
    clauses = parse_filter(query.get("$filter", ""))
    if clauses is None:
        return Resp(400, {"Error": {"Code": "BadRequest", "Message": "Invalid OData filter: only "
                                    "`field eq 'value'` clauses joined by `and` are supported."}})
    found = [i for i in items(catalog) if _matches(i, clauses)]
    try:
        skip = max(int(query.get("$skip", "0")), 0)
    except ValueError:
        skip = 0
    page = found[skip:skip + PAGE]
    nxt = None
    if skip + PAGE < len(found):
        args = {k: v for k, v in (("api-version", query.get("api-version")), ("$filter", query.get("$filter")))
                if v}
        nxt = f"{base_url}/api/retail/prices?{urlencode({**args, '$skip': skip + PAGE})}"
    return Resp(200, {"BillingCurrency": "USD", "CustomerEntityId": "flwrazure-local-cloud",
                      "CustomerEntityType": "Retail", "Items": page, "NextPageLink": nxt, "Count": len(page)})
