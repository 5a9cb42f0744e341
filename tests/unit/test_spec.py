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


@pytest.mark.parametrize("change, flag", [
    ({"cluster": "flower\n"}, "--cluster"), ({"cluster": "f\n"}, "--cluster"),
    ({"resource_group": "rg\n"}, "--resource-group"), ({"location": "eastus\n"}, "--location"),
    ({"server_size": "Standard_D2s_v3\n"}, "--server-vm-size"), ({"client_size": "Standard_D2s_v3\n"},
                                                                 "--client-vm-size"),
    ({"admin_user": "azureuser\n"}, "--admin-user"), ({"flwr_version": "1.42.0\n"}, "--flwr-version")])
def test_a_trailing_newline_is_refused(change, flag):
    """`$` in re.match also matches before a final newline: every user value is checked whole."""
    with pytest.raises(UsageError, match=flag):
        validate(ClusterSpec(**change))


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1", "2s"])
def test_a_numeric_setting_that_is_no_number_is_one_line_naming_it(monkeypatch, value):
    from flwrazure.workstation import settings

    monkeypatch.setenv("FLWRAZURE_POLL", value)
    with pytest.raises(UsageError) as err:
        settings.check_environment()
    assert str(err.value).startswith(f"FLWRAZURE_POLL={value!r} is not a number of seconds")
    monkeypatch.setenv("FLWRAZURE_POLL", " 0.5 ")
    assert settings.seconds("FLWRAZURE_POLL", 2) == 0.5
    monkeypatch.setenv("FLWRAZURE_POLL", "")
    assert settings.seconds("FLWRAZURE_POLL", 2) == 2


@pytest.mark.parametrize("url, ok", [
    ("https://pypi.example.org/simple", True), ("http://198.18.0.1:8080/simple/", True), ("http://u:p@h/s", True),
    ("http://h/simple\nExecStartPre=/bin/true", False), ("ftp://h/simple", False), ('https://h/"x', False),
    ("https:///simple", False), ("http://h/%2e", True), ("http://[::1/simple", False), ("http://h/$HOME", True)])
def test_index_url_is_an_http_url_of_url_characters(url, ok):
    from flwrazure.spec import index_url

    if ok:
        assert index_url(url) == url
    else:
        with pytest.raises(UsageError, match="--index-url"):
            index_url(url)
