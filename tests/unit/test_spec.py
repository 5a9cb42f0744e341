import pytest

from flwrazure.errors import UsageError
from flwrazure.spec import ClusterSpec, validate


def test_defaults_are_the_seed():
    spec = validate(ClusterSpec())
    assert (spec.cluster, spec.clients, spec.resource_group, spec.location) == ("flower", 2, "flower-rg", "eastus")
    assert (spec.server_size, spec.client_size, spec.admin_user) == ("Standard_D2s_v3", "Standard_D2s_v3", "azureuser")


def test_location_is_normalized():
    assert validate(ClusterSpec(location="West Europe")).location == "westeurope"


@pytest.mark.parametrize("change, flag", [
    ({"cluster": "Flower"}, "--cluster"), ({"cluster": "a" * 21}, "--cluster"), ({"cluster": "x-"}, "--cluster"),
    ({"cluster": "1abc"}, "--cluster"), ({"clients": 0}, "--clients"), ({"clients": 101}, "--clients"),
    ({"cloud": "gcp"}, "--cloud"), ({"subscription": "abc"}, "--subscription"),
    ({"resource_group": "bad name"}, "--resource-group"), ({"location": "e@st"}, "--location"),
    ({"server_size": "D2s_v3"}, "--server-vm-size"), ({"client_size": "Standard D2"}, "--client-vm-size"),
    ({"admin_user": "root"}, "--admin-user"), ({"admin_user": "Bad User"}, "--admin-user"),
    ({"flwr_version": "1.36.0"}, "--flwr-version")])
def test_bad_specs(change, flag):
    with pytest.raises(UsageError) as err:
        validate(ClusterSpec(**change))
    assert flag in str(err.value) and "\n" not in str(err.value)


def test_reserved_admin_names_match_what_the_local_cloud_refuses():
    """The product refuses exactly the names the compute API refuses (the local cloud has its own copy)."""
    from flwrazure.localcloud.arm.validate import RESERVED_USERNAMES
    from flwrazure.spec import RESERVED_USERS

    assert set(RESERVED_USERS) == RESERVED_USERNAMES and len(RESERVED_USERS) == 32
