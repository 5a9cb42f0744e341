"""Spot clients: --max-price, the VM fields, the Spot meter in the estimate, evicted vs paused, re-run conflicts."""

import pytest

from flwrazure.errors import UsageError
from flwrazure.plan import cost, spot
from flwrazure.spec import ClusterSpec, validate
from tests.unit.test_cost import item


@pytest.mark.parametrize("value,wanted", [(None, None), ("-1", -1), ("0.05", 0.05), ("0.98765", 0.98765), (2, 2.0)])
def test_max_price_accepted(value, wanted):
    assert validate(ClusterSpec(spot=True, max_price=value)).max_price == wanted


@pytest.mark.parametrize("value,spot_,said", [
    ("0.05", False, "needs --spot"), ("0", True, "above 0"), ("-2", True, "above 0"), ("abc", True, "not a number"),
    ("0.000001", True, "up to 5 decimals"), ("nan", True, "above 0"), ("inf", True, "above 0"),
])
def test_max_price_refused_in_one_line(value, spot_, said):
    with pytest.raises(UsageError) as err:
        validate(ClusterSpec(spot=spot_, max_price=value))
    assert said in str(err.value) and "\n" not in str(err.value)


def test_vm_fields():
    assert spot.vm_fields(None) == {"priority": "Spot", "evictionPolicy": "Deallocate",
                                    "billingProfile": {"maxPrice": -1}}
    assert spot.vm_fields(0.05)["billingProfile"] == {"maxPrice": 0.05}


def test_evicted_only_when_spot_deallocated_and_not_paused():
    def rows():
        return [{"vm": "s", "spot": False, "state": "deallocated"}, {"vm": "c1", "spot": True, "state": "deallocated"},
                {"vm": "c2", "spot": True, "state": "running"}]

    assert [r["state"] for r in spot.mark_evicted(rows(), paused=False)] == ["deallocated", "evicted", "running"]
    assert [r["state"] for r in spot.mark_evicted(rows(), paused=True)] == ["deallocated", "deallocated", "running"]


def test_rerun_conflicts():
    regular, spot_vm = {"properties": {}}, {"properties": {"priority": "Spot", "billingProfile": {"maxPrice": -1}}}
    assert "cannot turn an existing VM into a Spot VM" in spot.rerun_conflict("c1", regular, True, None)
    assert "cannot turn it into a regular VM" in spot.rerun_conflict("c1", spot_vm, False, None)
    assert "Re-run without --max-price" in spot.rerun_conflict("c1", spot_vm, True, 0.1)
    assert spot.rerun_conflict("c1", spot_vm, True, None) is None and spot.rerun_conflict("c1", regular, False, None) \
        is None


def test_spot_entry_priced_at_the_spot_meter():
    items = [item(), item(skuName="D2s v3 Spot", meterName="D2s v3 Spot", retailPrice=0.0192),
             item(skuName="D2s v3 Low Priority", retailPrice=0.0193),
             item(productName="Virtual Machines DSv3 Series Windows", skuName="D2s v3 Spot", retailPrice=0.05)]
    assert cost.hourly("vm:" + cost.spot("Standard_D2s_v3"), items) == 0.0192
    assert cost.hourly("vm:Standard_D2s_v3", items) == 0.096
    queries = {q.key: q.filter for q in cost.queries("eastus", ["Standard_D2s_v3", cost.spot("Standard_D2s_v3")])}
    assert queries["vm:Standard_D2s_v3 Spot"] == queries["vm:Standard_D2s_v3"]  # one item list holds both meters
    assert cost.os_disks([cost.spot("Standard_D2_v3")], {"Standard_D2_v3": "StandardSSD_LRS"}) == ["StandardSSD_LRS"]
    est = cost.estimate(["Standard_D2s_v3", cost.spot("Standard_D2s_v3")],
                        {"vm:Standard_D2s_v3": 0.1, "vm:Standard_D2s_v3 Spot": 0.02, "ip": 0.005,
                         "disk:Premium_LRS": 0.01}, "src")
    assert est.running == round(0.12 + 2 * 0.015, 4)
    assert "Azure may evict them" in cost.describe(est.to_dict())
    assert "evict" not in cost.describe(cost.estimate(["Standard_D2s_v3"], {"vm:Standard_D2s_v3": 0.1, "ip": 0.005,
                                                                          "disk:Premium_LRS": 0.01}, "src").to_dict())


def test_the_command_that_recreates_a_spot_cluster_keeps_spot(tmp_path, monkeypatch):
    from flwrazure.commands.doctor import create_command

    monkeypatch.setenv("FLWRAZURE_HOME", str(tmp_path))
    st = {"cluster": "flower", "cloud": "azure", "clients": 2, "location": "eastus", "resource_group": "flower-rg",
          "server_size": "Standard_D2s_v3", "client_size": "Standard_D2s_v3", "admin_user": "azureuser",
          "flwr_version": "1.42.0", "rg_created": True}
    assert "--spot" not in create_command(st)
    assert create_command({**st, "spot": True}).endswith(" --spot")
    assert create_command({**st, "spot": True, "max_price": 0.05}).endswith(" --spot --max-price 0.05")
