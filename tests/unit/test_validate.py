import pytest

from flwrazure.localcloud.arm import validate
from flwrazure.localcloud.arm.catalog import merged, normalize_location, quota_limit
from flwrazure.localcloud.arm.errors import ArmError


def code(fn, *args):
    with pytest.raises(ArmError) as err:
        fn(*args)
    return err.value.code


@pytest.mark.parametrize("name", ["a", "flower-rg", "Rg_1.(x)", "x" * 90])
def test_good_group_names(name):
    validate.resource_group_name(name)


@pytest.mark.parametrize("name", ["", "bad name", "ends.", "x" * 91, "sl/ash"])
def test_bad_group_names(name):
    assert code(validate.resource_group_name, name) == "InvalidResourceGroup"


@pytest.mark.parametrize("name, ok", [("nsg", True), ("a", True), ("a_", True), ("-a", False), ("a-", False),
                                      ("a.b-c_d", True), ("x" * 81, False), ("a b", False)])
def test_network_names(name, ok):
    if ok:
        validate.network_name(name, "t")
    else:
        assert code(validate.network_name, name, "t") == "InvalidResourceName"


@pytest.mark.parametrize("value, ok", [("*", True), ("22", True), ("0", True), ("65535", True), ("80-90", True),
                                       ("65536", False), ("90-80", False), ("a", False), ("1-2-3", False), ("", False)])
def test_port_ranges(value, ok):
    if ok:
        validate.port_range(value, "r")
    else:
        assert code(validate.port_range, value, "r") == "SecurityRuleInvalidPortRange"


@pytest.mark.parametrize("value, ok", [("*", True), ("VirtualNetwork", True), ("1.2.3.4", True),
                                       ("10.0.0.0/8", True), ("10.0.0.1/8", True), ("1.2.3", False),
                                       ("10.0.0.0/33", False), ("Mars", False)])
def test_rule_prefixes(value, ok):
    if ok:
        validate.rule_prefix(value, "r")
    else:
        assert code(validate.rule_prefix, value, "r") == "SecurityRuleInvalidAddressPrefix"


def test_priority_bounds():
    assert validate.priority(100, "r") == 100 and validate.priority(4096, "r") == 4096
    for bad in (99, 4097, "100", True, None):
        assert code(validate.priority, bad, "r") == "SecurityRuleInvalidPriority"


def test_cidr_rules():
    assert str(validate.cidr("10.0.0.0/16", "v")) == "10.0.0.0/16"
    assert code(validate.cidr, "10.0.0.1/16", "v") == "InvalidCIDRNotation"
    assert code(validate.cidr, "10.0.0.0", "v") == "InvalidCIDRNotation"
    assert code(validate.cidr, "nope", "v") == "InvalidAddressPrefixFormat"


def test_usernames():
    validate.admin_username("azureuser")
    for bad in ("admin", "root", "Bad User", ""):
        assert code(validate.admin_username, bad) == "InvalidParameter"


def test_catalog_quota_overrides_and_locations():
    catalog = merged({"quotas": {"cores": 8, "by_location": {"westus": {"cores": 2, "families": {"f": 1}}}}})
    assert quota_limit(catalog, "eastus", "cores") == 8
    assert quota_limit(catalog, "westus", "cores") == 2
    assert quota_limit(catalog, "westus", "f") == 1
    assert quota_limit(catalog, "eastus", "standardDSv3Family") == 100
    assert normalize_location(catalog, "East US") == "eastus"
    assert normalize_location(catalog, "atlantis") is None


@pytest.mark.parametrize("fn, args, expected", [
    (validate.resource_group_name, ("rg\n",), "InvalidResourceGroup"),
    (validate.network_name, ("nsg\n", "t"), "InvalidResourceName"),
    (validate.vm_name, ("vm\n",), "InvalidParameter"), (validate.computer_name, ("host\n",), "InvalidParameter"),
    (validate.admin_username, ("azureuser\n",), "InvalidParameter")])
def test_a_trailing_newline_is_refused_as_azure_does(fn, args, expected):
    assert code(fn, *args) == expected
