"""Who owns what: a child resource (an extension Azure Policy put on a VM) belongs to whoever owns its parent."""

import pytest

from flwrazure.plan.names import parent_id

RG = "/subscriptions/s/resourceGroups/rg"


@pytest.mark.parametrize("rid, parent", [
    (f"{RG}/providers/Microsoft.Compute/virtualMachines/vm/extensions/AzurePolicyforLinux",
     f"{RG}/providers/Microsoft.Compute/virtualMachines/vm"),
    (f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/r",
     f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n"),
    (f"{RG}/providers/Microsoft.Compute/virtualMachines/vm", ""),
    (f"{RG}/providers/Microsoft.Compute/virtualMachines/vm/", ""),
    (RG, ""),
    ("", ""),
])
def test_parent_id(rid, parent):
    assert parent_id(rid) == parent


def test_local_up_offers_exactly_the_extensions_the_local_cloud_knows():
    from flwrazure.cli.local import POLICY_EXTENSIONS
    from flwrazure.localcloud.arm.extensions import KNOWN

    assert POLICY_EXTENSIONS == list(KNOWN)
