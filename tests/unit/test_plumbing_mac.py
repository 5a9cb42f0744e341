"""The MACs a VM's interfaces get in the local cloud: eth0 its NIC's macAddress (unique, Azure's form), eth1 (and
eth0 of a NIC record without one) a function of the NIC's id, unicast and locally administered."""
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


def test_the_private_interface_carries_the_nics_mac_as_the_guest_sees_it_on_azure():
    from flwrazure.localcloud.hosts.plumbing import guest_mac

    assert guest_mac("00-0D-3A-23-9A-49", "nic") == "00:0d:3a:23:9a:49"
    # a NIC record without one (or a malformed one) gets a MAC made from its id, the same every boot
    assert guest_mac(None, "nic") == guest_mac("", "NIC") == mac_for("nic|private")
    assert guest_mac("00-0D-3A", "nic") == mac_for("nic|private")


def test_the_public_interface_has_a_mac_of_its_own_made_from_the_nic():
    from flwrazure.localcloud.hosts.plumbing import guest_mac, public_mac

    assert public_mac("nic") == public_mac("NIC") != guest_mac(None, "nic")
    assert public_mac("nic") != public_mac("other-nic")


def test_a_new_nic_mac_is_azures_form_and_unlike_every_other_nics(monkeypatch):
    from types import SimpleNamespace

    from flwrazure.localcloud.arm import vms

    taken = [{"body": {"properties": {"macAddress": "00-0D-3A-00-00-01"}}}, {"body": {"properties": {}}}]
    ctx = SimpleNamespace(store=SimpleNamespace(all_of_type=lambda arm_type: taken if arm_type == vms.NIC else []))
    draws = iter([b"\x00\x00\x01", b"\x00\x00\x01", b"\xab\x00\x02"])
    monkeypatch.setattr(vms.secrets, "token_bytes", lambda n: next(draws))
    assert vms._new_mac(ctx) == "00-0D-3A-AB-00-02"  # the two draws that another NIC has were skipped
