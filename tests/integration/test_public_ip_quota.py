"""The network provider's three public-IP counters (total, static, Standard SKU): served by the local cloud's
usages API and enforced at the PUT with Azure's codes; checked by create-cluster's preflight before anything is
created, with the numbers and ways out that work."""

import time

import pytest
from azure.core.exceptions import HttpResponseError

from tests.helpers import arm
from tests.helpers.cloud import flwrazure


@pytest.mark.parametrize("counter, code, words", [
    ("StaticPublicIPAddresses", "StaticPublicIPCountLimitReached", "with static allocation method"),
    ("StandardSkuPublicIpAddresses", "IPv4StandardSkuPublicIpCountLimitReached", "IPv4 Standard SKU")])
def test_static_and_standard_counters_are_listed_and_enforced(cloud, net_stack, counter, code, words):
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {counter: 2}}})
    for i in range(2):
        cloud.network.public_ip_addresses.begin_create_or_update("rg", f"ip{i}", arm.pip()).result()
    usage = {u.name.value: (u.current_value, u.limit) for u in cloud.network.usages.list("eastus")}
    assert usage[counter] == (2, 2) and usage["PublicIPAddresses"] == (2, 100)
    with pytest.raises(HttpResponseError) as err:
        cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip2", arm.pip())
    assert err.value.status_code == 400 and err.value.error.code == code
    assert err.value.error.message.startswith("Cannot create more than 2 ") and words in err.value.error.message
    assert [p.name for p in cloud.network.public_ip_addresses.list("rg")] == ["ip0", "ip1"]


@pytest.mark.parametrize("counter, label", [("StaticPublicIPAddresses", "static public IP addresses"),
                                            ("StandardSkuPublicIpAddresses", "Standard SKU public IPv4 addresses")])
def test_preflight_refuses_a_full_public_ip_counter_with_numbers_and_ways_out(product_cloud, home, counter,
                                                                                label):
    cloud = product_cloud
    cloud.resources.resource_groups.create_or_update("other-rg", {"location": "eastus"})
    cloud.network.public_ip_addresses.begin_create_or_update("other-rg", "taken", arm.pip()).result()
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {counter: 3}}})
    since = time.time()
    result = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"needs 3 more {label}, 1 of 3 are in use ({counter}; 2 free)" in line, line
    assert "flwrazure teardown --cluster NAME" in line and f"az quota update --resource-name {counter}" in line
    assert "value=4" in line and "Nothing was created" in line
    assert cloud.writes(since) == []
    assert not (home / "clusters" / "flower").exists()


def test_a_full_counter_met_at_the_put_says_how_to_free_or_raise_it():
    """A race past preflight (another cluster took the last address): Azure's message gives the limit."""
    from flwrazure.azure.errors import AzureError

    text = str(AzureError("public IP flower-server-ip", "StaticPublicIPCountLimitReached",
                          "Cannot create more than 20 public IP addresses with static allocation method for this "
                          "subscription in this region."))
    assert "flwrazure teardown --cluster NAME" in text and "ipConfiguration==null" in text
    assert "az quota update --resource-name StaticPublicIPAddresses" in text and "value=21" in text
