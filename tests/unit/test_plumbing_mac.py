"""The MAC a VM's interface gets in the local cloud: a function of its NIC, unicast and locally administered."""
from flwrazure.localcloud.hosts.plumbing import mac_for


def test_the_same_nic_and_role_give_the_same_mac_and_others_differ():
    nic = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm-0-nic"
    assert mac_for(f"{nic}|private") == mac_for(f"{nic.upper()}|PRIVATE")  # ARM ids are case-insensitive
    macs = {mac_for(f"{nic}|private"), mac_for(f"{nic}|public"), mac_for(f"{nic[:-5]}1-nic|private")}
    assert len(macs) == 3


def test_the_mac_is_unicast_and_locally_administered():
    for i in range(200):
        first, *rest = mac_for(f"nic-{i}|private").split(":")
        assert len(rest) == 5 and all(len(b) == 2 for b in rest)
        assert int(first, 16) & 0x01 == 0 and int(first, 16) & 0x02 == 0x02
