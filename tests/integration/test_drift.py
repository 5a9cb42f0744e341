"""Azure's conflicts and drift on the local cloud, and the product riding them: concurrent writes refused as the
network provider refuses them, untagged policy extensions on new VMs, a resource-group delete that fails."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import arm
from tests.helpers.cloud import flwrazure


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


# -- concurrent writes to one network resource -------------------------------------------------------------
def test_nic_joining_a_busy_subnet_gets_429_retryable_and_rule_writes_to_a_busy_nsg_get_409(cloud, net_stack):
    cloud.admin("PATCH", "config", {"conflicts": True, "conflict_window": 5})
    nw = f"{cloud.rg_path('rg')}/providers/Microsoft.Network"
    first = cloud.raw("PUT", f"{nw}/networkInterfaces/nic1", arm.nic(net_stack["subnet"]), api="2024-05-01")
    second = cloud.raw("PUT", f"{nw}/networkInterfaces/nic2", arm.nic(net_stack["subnet"]), api="2024-05-01")
    assert first.status_code == 201
    assert second.status_code == 429 and 1 <= int(second.headers["Retry-After"]) <= 5
    error = second.json()["error"]
    assert (error["code"], error["message"]) == ("RetryableError", "A retryable error occurred.")
    assert [d["code"] for d in error["details"]] == ["RetryableErrorDueToAnotherOperation"]
    assert net_stack["subnet"] in error["details"][0]["message"]
    assert "PutNetworkInterfaceOperation" in error["details"][0]["message"]
    assert "can be retried in" in error["details"][0]["message"]

    rules = f"{nw}/networkSecurityGroups/nsg/securityRules"
    assert cloud.raw("PUT", f"{rules}/a", arm.rule(100), api="2024-05-01").status_code == 201
    busy = cloud.raw("PUT", f"{rules}/b", arm.rule(110), api="2024-05-01")
    assert busy.status_code == 409 and "Retry-After" not in busy.headers
    error = busy.json()["error"]
    assert error["code"] == "AnotherOperationInProgress" and error["details"] == []
    assert error["message"].startswith("Another operation on this or dependent resource is in progress. To retrieve "
                                       "status of the operation use uri: ")
    cloud.admin("PATCH", "config", {"conflicts": False})
    assert cloud.raw("PUT", f"{rules}/b", arm.rule(110), api="2024-05-01").status_code == 201


def test_without_the_option_concurrent_nics_are_all_accepted(cloud, net_stack):
    nw = f"{cloud.rg_path('rg')}/providers/Microsoft.Network"
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: cloud.raw("PUT", f"{nw}/networkInterfaces/n{i}", arm.nic(net_stack["subnet"]),
                                                  api="2024-05-01").status_code, range(8)))
    assert codes == [201] * 8


def test_create_cluster_converges_while_the_subnet_refuses_concurrent_nics(product_cloud, home):
    cloud = product_cloud
    cloud.admin("PATCH", "config", {"conflicts": True, "conflict_window": 0.3})
    since = time.time()
    result = json.loads(ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "8", "--json",
                                     timeout=300)).stdout)
    assert all(r["state"] == "running" and r["private_ip"] for r in result["vms"])
    assert len({r["private_ip"] for r in result["vms"]}) == 9
    log = cloud.admin("GET", f"requests?since={since}").json()["value"]
    refused = [r for r in log if r["status"] == 429 and "networkinterfaces" in r["path"].lower()]
    assert len(refused) >= 8, "the subnet never refused a NIC: the test proves nothing"
    assert not [r for r in log if r["status"] >= 500]
