import pytest

from flwrazure.errors import UsageError
from flwrazure.plan import names, resources, rules, versions


@pytest.mark.parametrize("version, generation, fleet, control", [
    ("1.21.0", "grpc", 9092, 9093), ("1.34.2", "grpc", 9092, 9093),
    ("1.40.0", "http", 8000, 8000), ("1.42.0", "http", 8000, 8000), ("1.50.1", "http", 8000, 8000)])
def test_port_plan_by_generation(version, generation, fleet, control):
    plan = versions.port_plan(version)
    assert (plan.generation, plan.fleet, plan.control) == (generation, fleet, control)


@pytest.mark.parametrize("version", ["1.35.0", "1.37.1", "1.39.9", "1.20.0", "0.9.0", "2.0.0", "latest", "1.42"])
def test_unsupported_versions_refused(version):
    with pytest.raises(UsageError):
        versions.port_plan(version)


def test_default_version_prefers_installed_supported():
    assert versions.default_version("1.34.0") == "1.34.0"
    assert versions.default_version("1.37.0") == versions.DEFAULT_VERSION
    assert versions.default_version(None) == versions.DEFAULT_VERSION


def test_seed_names_for_default_cluster():
    vms = names.all_vms("flower", 2)
    assert [v.vm for v in vms] == ["flower-server", "flower-client-1", "flower-client-2"]
    assert [v.role for v in vms] == ["server", "client", "client"]
    assert vms[1].nic == "flower-client-1-nic" and vms[1].public_ip == "flower-client-1-ip"
    assert names.tags("flower", "server") == {"flwrazure-cluster": "flower", "flwrazure-managed": "true",
                                              "flwrazure-role": "server"}
    assert names.tags("flower", cluster_id="c1")["flwrazure-cluster-id"] == "c1"


def test_ownership_is_identity_not_name():
    mine, theirs = {"flwrazure-cluster": "flower", "flwrazure-cluster-id": "A"}, {"flwrazure-cluster": "flower",
                                                                                  "flwrazure-cluster-id": "B"}
    assert names.is_ours(mine, "flower", "A") and not names.is_ours(theirs, "flower", "A")
    assert not names.is_ours({"flwrazure-cluster": "flower"}, "flower", "A") and not names.is_ours(None, "flower", "A")
    # a cluster recorded before identities existed owns what has its name and no identity
    assert names.is_ours({"flwrazure-cluster": "flower"}, "flower", None) and not names.is_ours(theirs, "flower", None)
    assert names.other_identity(theirs, "A") == "B" and names.other_identity(mine, "A") is None


def test_ownership_rule_covers_children_of_owned_resources():
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"
    resources = [
        {"id": base + "vm1", "tags": {"flwrazure-cluster-id": "A"}},
        {"id": base + "vm1/extensions/MDE.Linux", "tags": None},  # added by Azure Policy, untagged
        {"id": base + "vm1/extensions/x/sub/y"},  # deeper below
        {"id": base + "vm10/extensions/e"},  # a prefix of the name is not a parent
        {"id": base + "vm2", "tags": {"flwrazure-cluster-id": "B"}},
        {"id": base + "vm2/extensions/e", "tags": {"flwrazure-cluster-id": "A"}},  # tagged ours: ours
    ]
    assert names.owned(resources, "flower", "A") == {(base + n).lower() for n in (
        "vm1", "vm1/extensions/MDE.Linux", "vm1/extensions/x/sub/y", "vm2/extensions/e")}


@pytest.mark.parametrize("text, expected", [
    ("203.0.113.7", ("203.0.113.7",)), ("198.51.100.0/24", ("198.51.100.0/24",)), ("any", ("*",)),
    ("ANY", ("*",)), ("1.2.3.4, 5.6.7.8", ("1.2.3.4", "5.6.7.8")), ("1.2.3.4,1.2.3.4", ("1.2.3.4",)),
    ("1.2.3.4/32", ("1.2.3.4/32",))])
def test_parse_sources(text, expected):
    assert rules.parse_sources(text, "--source") == expected


@pytest.mark.parametrize("text, needle", [
    ("", "empty"), ("300.1.1.1", "not an IPv4"), ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
    ("0.0.0.0/0", "spell it out"), ("::1", "IPv4"), ("example.com", "not an IPv4"), ("1.2.3.4/99", "not an IPv4")])
def test_parse_sources_rejects(text, needle):
    with pytest.raises(UsageError) as err:
        rules.parse_sources(text, "--source")
    assert needle in str(err.value)


def test_flower_rules_least_privilege():
    fleet, control, _ = rules.flower_rules(versions.GRPC, ["198.18.0.12", "198.18.0.11"], ("203.0.113.7",),
                                           "10.0.0.4")
    assert (fleet.name, fleet.priority, fleet.port, fleet.sources, fleet.destination) == \
        ("flwrazure-fleet", 1010, 9092, ("198.18.0.11", "198.18.0.12"), "10.0.0.4")
    assert (control.name, control.priority, control.port, control.sources) == \
        ("flwrazure-control", 1020, 9093, ("203.0.113.7",))
    http = rules.flower_rules(versions.HTTP, ["1.1.1.1"], ("*",), "10.0.0.4")
    assert [r.port for r in http] == [8000, 8000] and http[1].is_open_to_any
    with pytest.raises(ValueError):
        rules.flower_rules(versions.HTTP, [], ("*",), "10.0.0.4")


def test_rule_body_and_matches_roundtrip():
    rule = rules.flower_rules(versions.HTTP, ["1.1.1.1", "2.2.2.2"], ("203.0.113.7",), "10.0.0.4")[0]
    body = rules.rule_body(rule)
    assert body["properties"]["sourceAddressPrefixes"] == ["1.1.1.1", "2.2.2.2"]
    assert "sourceAddressPrefix" not in body["properties"]
    stored = {"properties": {**body["properties"], "sourceAddressPrefix": None, "provisioningState": "Succeeded"}}
    assert rules.matches(rule, stored)
    changed = {"properties": {**stored["properties"], "destinationPortRange": "9092"}}
    assert not rules.matches(rule, changed) and not rules.matches(rule, None)
    single = rules.ssh_rule(("203.0.113.7",), "10.0.0.0/24")
    assert rules.rule_body(single)["properties"]["sourceAddressPrefix"] == "203.0.113.7"
    assert rules.matches(single, rules.rule_body(single))


def test_vm_body_follows_the_seed():
    body = resources.vm("eastus", {"t": "1"}, "Standard_D2s_v3", "flower-server", "azureuser", "ssh-ed25519 AAA",
                        "/nic", "flower-server-osdisk")
    props = body["properties"]
    assert props["storageProfile"]["imageReference"] == {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                         "sku": "server", "version": "latest"}
    assert props["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert props["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"] == "Delete"
    assert props["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    ip = resources.public_ip("eastus", {})
    assert ip["sku"]["name"] == "Standard" and ip["properties"]["publicIPAllocationMethod"] == "Static"


def test_machine_for_size_capabilities():
    from flwrazure.plan.resources import IMAGE, IMAGE_ARM64, IMAGE_GEN1, machine_for

    x64 = {"CpuArchitectureType": "x64"}
    assert machine_for({**x64, "HyperVGenerations": "V1,V2", "PremiumIO": "True"}) == (IMAGE, "Premium_LRS")
    assert machine_for({**x64, "HyperVGenerations": "V1", "PremiumIO": "False"}) == (IMAGE_GEN1, "StandardSSD_LRS")
    assert machine_for({**x64, "HyperVGenerations": "V2", "PremiumIO": "False"}) == (IMAGE, "StandardSSD_LRS")
    assert machine_for({"CpuArchitectureType": "Arm64", "HyperVGenerations": "V2", "PremiumIO": "True"}) == (
        IMAGE_ARM64, "Premium_LRS")
    assert machine_for({"CpuArchitectureType": "Arm64", "HyperVGenerations": "V1"}) is None
    assert machine_for({}) == (IMAGE, "Premium_LRS")  # capabilities missing: the default machine
