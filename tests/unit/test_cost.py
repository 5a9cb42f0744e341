"""Cost estimates: which Retail Prices API item applies, the arithmetic, and never an invented number."""

from flwrazure.localcloud.arm import catalog, prices
from flwrazure.plan import cost


def item(**kw):
    base = {"currencyCode": "USD", "tierMinimumUnits": 0.0, "type": "Consumption", "unitOfMeasure": "1 Hour",
            "productName": "Virtual Machines DSv3 Series", "skuName": "D2s v3", "armSkuName": "Standard_D2s_v3",
            "meterName": "D2s v3", "retailPrice": 0.096}
    return {**base, **kw}


def test_vm_price_is_the_linux_pay_as_you_go_meter():
    items = [item(productName="Virtual Machines DSv3 Series Windows", retailPrice=0.188),
             item(skuName="D2s v3 Spot", retailPrice=0.019), item(skuName="D2s v3 Low Priority", retailPrice=0.02),
             item(type="Reservation", retailPrice=500.0), item(currencyCode="EUR", retailPrice=0.09),
             item(), item(armSkuName="Standard_D4s_v3", retailPrice=0.192)]
    assert cost.hourly("vm:Standard_D2s_v3", items) == 0.096
    assert cost.hourly("vm:Standard_D2s_v3", items[:5]) is None  # only meters that do not apply: no price


def test_ip_hourly_and_disk_monthly_to_hourly():
    ip = item(meterName=cost.IP_METER, productName="IP Addresses", skuName="Standard", retailPrice=0.005)
    disk = item(meterName="P4 LRS Disk", productName="Premium SSD Managed Disks", skuName="P4 LRS",
                unitOfMeasure="1/Month", retailPrice=7.30)
    assert cost.hourly("ip", [ip]) == 0.005
    assert cost.hourly("disk:Premium_LRS", [disk]) == 0.01  # 7.30 a month / 730 hours
    assert cost.hourly("disk:Premium_LRS", [{**disk, "skuName": "P6 LRS"}]) is None
    assert cost.hourly("disk:Premium_LRS", [{**disk, "meterName": "P4 LRS Disk Mount", "retailPrice": 0.73},
                                            disk]) == 0.01
    e4 = {**disk, "meterName": "E4 LRS Disk", "productName": "Standard SSD Managed Disks", "skuName": "E4 LRS",
          "retailPrice": 2.92}
    assert cost.hourly("disk:StandardSSD_LRS", [disk, e4]) == 0.004  # its own tier and product only
    assert cost.hourly("disk:StandardSSD_LRS", [disk]) is None


def test_estimate_running_and_paused():
    est = cost.estimate(["Standard_D2s_v3"] * 3, {"vm:Standard_D2s_v3": 0.1, "ip": 0.005, "disk:Premium_LRS": 0.01},
                        "src")
    assert est.running == round(3 * (0.1 + 0.005 + 0.01), 4) and est.paused == round(3 * 0.015, 4)
    assert [(line["what"], line["count"], line["billed_while_paused"]) for line in est.lines] == [
        ("VM Standard_D2s_v3", 3, False), ("Standard public IP", 3, True), ("OS disk P4", 3, True)]
    text = cost.describe(est.to_dict())
    assert "$0.3450/hour" in text and "$0.0450/hour while paused" in text and "src" in text
    assert "still billed: public IPs, OS disks" in cost.describe(est.to_dict(), paused=True)


def test_missing_price_makes_the_estimate_incomplete_not_invented():
    est = cost.estimate(["Standard_D2s_v3", "Standard_D4s_v3"], {"vm:Standard_D2s_v3": 0.1, "vm:Standard_D4s_v3":
                                                                 None, "ip": 0.005, "disk:Premium_LRS": 0.01},
                        "src")
    assert est.running is None and est.missing == ["vm:Standard_D4s_v3"] and est.paused == 0.03
    assert "incomplete" in cost.describe(est.to_dict()) and "vm:Standard_D4s_v3" in cost.describe(est.to_dict())
    assert "unknown" in cost.describe(None)


def test_queries_cover_each_size_once_plus_ip_and_disk():
    qs = cost.queries("eastus", ["Standard_D2s_v3", "Standard_D2s_v3", "Standard_D4s_v3"])
    assert [q.key for q in qs] == ["vm:Standard_D2s_v3", "vm:Standard_D4s_v3", "ip", "disk:Premium_LRS"]
    both = cost.queries("eastus", ["Standard_D2s_v3"], list(cost.DISK_TIERS))
    assert [q.key for q in both][-2:] == ["disk:Premium_LRS", "disk:StandardSSD_LRS"]
    assert all("armRegionName eq 'eastus'" in q.filter for q in qs)
    assert all(prices.parse_filter(q.filter) for q in qs)  # the local cloud understands every query we send


def test_local_price_list_answers_our_queries_and_labels_itself():
    cat = catalog.merged({})
    for q in cost.queries("westeurope", ["Standard_D2s_v3"], list(cost.DISK_TIERS)):
        resp = prices.retail_prices(cat, "https://x", {"$filter": q.filter})
        assert resp.status == 200 and resp.body["CustomerEntityId"] == "flwrazure-local-cloud"
        assert all(prices.LABEL in i["productName"] for i in resp.body["Items"])
        assert cost.hourly(q.key, resp.body["Items"]) is not None, q
    assert cost.hourly("vm:Standard_D2s_v3", prices.retail_prices(cat, "https://x", {
        "$filter": cost.queries("eastus", ["Standard_D2s_v3"])[0].filter}).body["Items"]) == 0.1  # 2 vCPU x 0.05
    assert prices.retail_prices(cat, "https://x", {"$filter": "contains(meterName, 'x')"}).status == 400


def test_local_price_list_pages():
    cat = catalog.merged({})
    first = prices.retail_prices(cat, "https://x", {"$filter": "serviceName eq 'Virtual Machines'"}).body
    assert first["Count"] == 100 and "%24skip=100" in first["NextPageLink"]
    last = prices.retail_prices(cat, "https://x", {"$filter": "serviceName eq 'Virtual Machines'",
                                                   "$skip": "10000"}).body
    assert last["Items"] == [] and last["NextPageLink"] is None


def test_each_vm_s_os_disk_is_priced_as_the_disk_type_its_size_gets():
    """A size without premium storage gets a Standard SSD (plan.resources.machine_for): its OS disk is an E4,
    not a P4; the disk types come from the sizes through the same choice create-cluster makes."""
    from flwrazure.plan import resources

    premium = resources.machine_for({"PremiumIO": "True"})[1]
    standard = resources.machine_for({"PremiumIO": "False", "HyperVGenerations": "V1"})[1]
    disks = cost.os_disks(["Standard_D2s_v3", "Standard_D2_v3", "Standard_D2_v3"],
                          {"Standard_D2s_v3": premium, "Standard_D2_v3": standard})
    assert disks == ["Premium_LRS", "StandardSSD_LRS", "StandardSSD_LRS"]
    est = cost.estimate(["Standard_D2s_v3", "Standard_D2_v3", "Standard_D2_v3"],
                        {"vm:Standard_D2s_v3": 0.1, "vm:Standard_D2_v3": 0.1, "ip": 0.005,
                         "disk:Premium_LRS": 0.01, "disk:StandardSSD_LRS": 0.004}, "src", disks)
    assert [(line["what"], line["count"]) for line in est.lines][-2:] == [("OS disk P4", 1), ("OS disk E4", 2)]
    assert est.paused == round(3 * 0.005 + 0.01 + 2 * 0.004, 4)
    assert cost.os_disks(["Standard_X"], None) == ["Premium_LRS"]  # not read: the default create-cluster uses


def _api_item(**kw):
    """An item as the Retail Prices API gives it: only the fields given (no VM meter's defaults)."""
    return {"currencyCode": "USD", "type": "Consumption", "tierMinimumUnits": 0.0, "armRegionName": "eastus", **kw}


# Azure's eastus pay-as-you-go list prices (USD) of the default cluster's parts, as the Retail Prices API gives them
_EASTUS = [
    _api_item(armSkuName="Standard_D2s_v3", productName="Virtual Machines DSv3 Series", skuName="D2s v3",
         meterName="D2s v3", retailPrice=0.096, unitOfMeasure="1 Hour"),
    _api_item(meterName="Standard IPv4 Static Public IP", productName="IP Addresses", skuName="Standard",
         retailPrice=0.005, unitOfMeasure="1 Hour"),
    _api_item(meterName="P4 LRS Disk", productName="Premium SSD Managed Disks", skuName="P4 LRS",
         retailPrice=5.2795, unitOfMeasure="1/Month"),
]


def test_the_readmes_price_of_the_default_cluster_is_the_estimators_arithmetic():
    """The README quotes what the default cluster (server + 2 clients, Standard_D2s_v3, eastus) costs; fed Azure's
    list prices in the Retail Prices API's item shape, the estimator must give the numbers the README states."""
    from pathlib import Path

    answers = [*_EASTUS, _api_item(armSkuName="Standard_D2s_v3", productName="Virtual Machines DSv3 Series",
                              skuName="D2s v3 Spot", meterName="D2s v3 Spot", retailPrice=0.0192,
                              unitOfMeasure="1 Hour")]  # a Spot meter beside: not the pay-as-you-go price
    prices = {k: cost.hourly(k, answers) for k in ("vm:Standard_D2s_v3", "ip", "disk:Premium_LRS")}
    est = cost.estimate(["Standard_D2s_v3"] * 3, prices, "Retail Prices API")
    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    assert f"**${est.running:.2f}/hour**" in readme
    assert f"(${est.running * 24:.2f}/day)" in readme
    assert f"**${est.paused:.2f}/hour** while paused" in readme


def test_the_readmes_table_of_options_is_the_estimators_arithmetic():
    """README's table of what each option costs for the default cluster: --private-clients (NAT gateway at its
    $0.045/hour and $0.045/GB list prices) and --spot (the part that is not the clients' Spot compute) are the
    estimator's numbers."""
    from pathlib import Path

    answers = [
        *_EASTUS,
        _api_item(serviceName="NAT Gateway", productName="NAT Gateway", skuName="Standard", meterName="Standard Gateway",
             retailPrice=0.045, unitOfMeasure="1 Hour"),
        _api_item(serviceName="NAT Gateway", productName="NAT Gateway", skuName="Standard",
             meterName="Standard Data Processed", retailPrice=0.045, unitOfMeasure="1 GB"),
    ]
    keys = ("vm:Standard_D2s_v3", "ip", "disk:Premium_LRS", "nat", "nat_gb")
    prices = {k: cost.hourly(k, answers) for k in keys}
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
            for line in Path(__file__).resolve().parents[2].joinpath("README.md").read_text().splitlines()
            if line.startswith("| `--") or line.startswith("| public")}
    private = cost.estimate(["Standard_D2s_v3"] * 3, prices, "Retail Prices API", private=True).to_dict()
    assert rows["`--private-clients`"] == [
        f"${private['usd_per_hour']:.2f} (+ ${private['usd_per_gb_processed']:.3f}/GB through the NAT gateway)",
        f"${private['usd_per_hour_paused']:.2f}"]
    spot = cost.estimate(["Standard_D2s_v3", cost.spot("Standard_D2s_v3"), cost.spot("Standard_D2s_v3")],
                         {**prices, "vm:" + cost.spot("Standard_D2s_v3"): 0.0}, "Retail Prices API")
    assert rows["`--spot [--max-price USD]`"] == [f"${spot.running:.2f} + 2 × the Spot price of a D2s_v3",
                                                  f"${spot.paused:.2f}"]
    public = cost.estimate(["Standard_D2s_v3"] * 3, prices, "Retail Prices API")
    assert rows["public (default)"] == [f"${public.running:.2f}", f"${public.paused:.2f}"]
    # from 11 clients on, private clients are the cheaper layout; at 10 they are not
    at = {n: cost.estimate(["Standard_D2s_v3"] * (n + 1), prices, "x", private=True).to_dict() for n in (10, 11)}
    assert at[10]["usd_per_hour"] >= at[10]["usd_per_hour_public_layout"]
    assert at[11]["usd_per_hour"] < at[11]["usd_per_hour_public_layout"]
