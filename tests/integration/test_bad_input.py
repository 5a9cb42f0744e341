"""Bad input: exit code 2, one readable line, no traceback, and nothing created or changed in the cloud."""

import json
import time

import pytest

from tests.helpers.cloud import flwrazure
from tests.helpers.sshagent import Agent, keygen

CREATE = ("create-cluster", "--cloud", "local")
CASES = [
    (CREATE + ("--cluster", "Bad_Name"), "--cluster"),
    (CREATE + ("--cluster", "a-very-long-cluster-name-x"), "--cluster"),
    (CREATE + ("--clients", "0"), "--clients"),
    (CREATE + ("--clients", "500"), "--clients"),
    (CREATE + ("--clients", "two"), "--clients"),
    (CREATE + ("--vm-size", "D2s_v3"), "--vm-size 'D2s_v3' is not a VM size name"),  # the option typed
    (CREATE + ("--client-vm-size", "D2s_v3"), "--client-vm-size 'D2s_v3' is not a VM size name"),
    (CREATE + ("--vm-size", "Standard_Z99_v9"), "--vm-size Standard_Z99_v9: VM size Standard_Z99_v9 is not offered"),
    (CREATE + ("--client-vm-size", "Standard_Z99_v9"), "--client-vm-size Standard_Z99_v9: VM size"),
    (CREATE + ("--vm-size", "standard_z99_v9"), "Closest: Standard_"),
    (CREATE + ("--client-vm-size", "Standard_NC6s_v3"), "not available to this subscription"),
    (CREATE + ("--client-vm-size", "Standard_NC6s_v3"), "choose another --client-vm-size"),
    (CREATE + ("--location", "atlantis"), "not a region"),
    (CREATE + ("--location", "east-us!"), "--location"),
    (CREATE + ("--resource-group", "bad group!"), "--resource-group"),
    (CREATE + ("--admin-user", "root"), "--admin-user"),
    # every name of Azure's documented list is refused before anything is created (not at the VM PUT)
    *[(CREATE + ("--admin-user", name), "Azure reserves") for name in (
        "test2", "test3", "user2", "user3", "user4", "user5", "admin2", "actuser", "aspnet", "support_388945a0",
        "david", "john", "Admin")],
    (CREATE + ("--admin-user", "Azure User"), "lowercase letters"),
    (CREATE + ("--flwr-version", "1.37.0"), "1.35-1.39"),
    (CREATE + ("--flwr-version", "1.10.0"), "supports Flower 1.21"),
    (CREATE + ("--flwr-version", "latest"), "not a version"),
    (CREATE + ("--ssh-source", "300.1.2.3"), "--ssh-source"),
    (CREATE + ("--ssh-source", "10.0.0.1/8"), "did you mean 10.0.0.0/8"),
    (CREATE + ("--ssh-source", "0.0.0.0/0"), "spell it out"),
    (CREATE + ("--ssh-key", "/nonexistent/key"), "no such file"),
    (CREATE + ("--subscription", "not-a-guid"), "--subscription"),
    (CREATE + ("--subscription", "00000000-0000-0000-0000-000000000000"), "does not exist in the local cloud"),
    (CREATE + ("--cloud", "gcp"), "--cloud"),
    (("open-ports", "--source", "not-an-ip"), "--source"),
    (("open-ports", "--source", "1.2.3.4/99"), "--source"),
    (("open-ports",), "--source is required"),
    (("open-ports", "--close", "--source", "1.2.3.4"), "takes no --source"),
    (("open-ports", "--cluster", "ghost", "--source", "1.2.3.4"), "no cluster named 'ghost'"),
    (("status", "--cluster", "ghost"), "no cluster named 'ghost'"),
    (("teardown", "--cluster", "UPPER"), "--cluster"),
    (("create-cluster", "--cloud", "local", "--unknown-flag"), "No such option"),
    (("no-such-command",), "No such command"),
    (("up", "--cloud", "local", "--flwr-version", "1.22.0"), "CSV key lists"),
    (("up", "--cloud", "local", "--flwr-version", "1.25.0", "--app", "/"), "no pyproject.toml"),
    # a value is checked whole: `$` alone would let a trailing newline through to Azure, a unit file, a shell
    *[(CREATE + (flag, value + "\n"), said) for flag, value, said in (
        ("--admin-user", "azureuser", "--admin-user"), ("--resource-group", "rg", "--resource-group"),
        ("--cluster", "flower", "--cluster"), ("--location", "eastus", "--location"),
        ("--vm-size", "Standard_D2s_v3", "--vm-size"), ("--flwr-version", "1.42.0", "--flwr-version"))],
    (("status", "--cluster", "flower\n"), "--cluster"),
    # it would end up in the VMs' unit files: a newline there is a directive of its own
    (("up", "--cloud", "local", "--index-url", "http://198.18.0.1/simple\nExecStartPre=/bin/true"), "--index-url"),
    # what reaches the VMs' shells, units and pip is refused before anything is created
    (("up", "--cloud", "local", "--index-url", "http://m;touch pwned;x/simple/"), "--index-url"),
    (("up", "--cloud", "local", "--index-url", 'http://h/simple/"\nEnvironment=X=1'), "--index-url"),
    (("up", "--cloud", "local", "--index-url", "ftp://h/simple/"), "not an http(s) URL"),
    (("up", "--cloud", "local", "--extra-pip", "--index-url=http://evil/simple"), "--extra-pip"),
]


def assert_one_line_exit_2(result, needle):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and needle in lines[0], lines[0]


@pytest.mark.parametrize("args, needle", CASES, ids=[" ".join(a[1:] if a[0] == "create-cluster" else a)[:40]
                                                      for a, _ in CASES])
def test_bad_input(product_cloud, home, tmp_path, args, needle):
    since = time.time()
    result = flwrazure(home, *args)
    assert_one_line_exit_2(result, needle)
    assert product_cloud.writes(since) == []
    assert list(product_cloud.resources.resource_groups.list()) == []
    assert not (home / "clusters").exists() or not any((home / "clusters").glob("*/state.json"))


def test_unreadable_ssh_key(product_cloud, home, tmp_path):
    junk = tmp_path / "junk"
    junk.write_text("not a key")
    junk.chmod(0o600)
    assert_one_line_exit_2(flwrazure(home, *CREATE, "--ssh-key", str(junk)), "not a private key")


def test_missing_local_cloud(home):
    assert_one_line_exit_2(flwrazure(home, *CREATE), "flwrazure local up")


def test_missing_azure_credentials(home, tmp_path):
    env = {"AZURE_SUBSCRIPTION_ID": "", "AZURE_CONFIG_DIR": str(tmp_path / "no-az")}
    assert_one_line_exit_2(flwrazure(home, "create-cluster", env=env), "No Azure subscription found")


def test_a_size_no_ubuntu_image_fits_is_refused_before_anything_is_created(product_cloud, home):
    """Arm64 without Gen2: no Ubuntu 24.04 image boots on it (Azure would refuse the VM PUT)."""
    product_cloud.admin("PATCH", "config", {"catalog": {
        "vm_sizes": {"Standard_X2p_v9": ["standardXPv9Family", 2, 8]},
        "size_capabilities": {"Standard_X2p_v9": {"HyperVGenerations": "V1", "CpuArchitectureType": "Arm64"}}}})
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *CREATE, "--vm-size", "Standard_X2p_v9"), "cannot boot an Ubuntu")
    assert product_cloud.writes(since) == []


# --ssh-key: what Azure refuses at the VM PUT, and what could never log in, is refused before anything is created
KEYCREATE = CREATE + ("--clients", "1", "--ssh-source", "203.0.113.9")


@pytest.fixture
def agent(tmp_path):
    a = Agent(tmp_path)
    yield a
    a.stop()


def _refused(product_cloud, home, args, needle, env=None):
    since = time.time()
    result = flwrazure(home, *args, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("Error: ") and needle in lines[0], lines[0]
    assert product_cloud.writes(since) == [] and list(product_cloud.resources.resource_groups.list()) == []
    assert not any((home / "clusters").glob("*/state.json"))


@pytest.mark.parametrize("kind, bits, needle", [
    ("ecdsa", 256, "an ECDSA key (secp256r1); Azure accepts only Ed25519 keys and RSA keys of 2048 bits or more"),
    ("dsa", None, "a DSA key; Azure accepts only"), ("rsa", 1024, "an RSA key of 1024 bits; Azure accepts only")])
def test_key_types_azure_refuses_are_refused_before_anything_is_created(product_cloud, home, tmp_path, kind, bits,
                                                                        needle):
    key = keygen(tmp_path / "k", kind, bits)
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(key)), needle)
    key.with_suffix(".pub").unlink()  # the type is read from the private key too
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(key)), needle)


def test_passphrase_key_without_agent_is_refused_before_anything_is_created(product_cloud, home, tmp_path):
    key = keygen(tmp_path / "k", passphrase="correct horse")
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(key)), "passphrase-protected and no ssh-agent is running",
             env={"SSH_AUTH_SOCK": ""})
    key.with_suffix(".pub").unlink()  # the public half is read from the key file's clear part
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(key)), "passphrase-protected and no ssh-agent",
             env={"SSH_AUTH_SOCK": ""})


def test_passphrase_key_the_agent_does_not_hold_is_refused(product_cloud, home, tmp_path, agent):
    other = keygen(tmp_path / "other")
    agent.add(other)
    key = keygen(tmp_path / "k", "rsa", 3072, passphrase="pw")
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(key)), "your ssh-agent does not hold it: run",
             env=agent.env())


def test_mismatched_pub_and_open_key_are_refused(product_cloud, home, tmp_path):
    key, other = keygen(tmp_path / "k"), keygen(tmp_path / "other")
    key.with_suffix(".pub").write_text(other.with_suffix(".pub").read_text())
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(key)), "is the public half of another key")
    loose = keygen(tmp_path / "loose")
    loose.chmod(0o644)
    _refused(product_cloud, home, KEYCREATE + ("--ssh-key", str(loose)), "chmod 600")


def test_fewer_clients_than_the_live_cluster_is_refused(product_cloud, home):
    assert flwrazure(home, *CREATE, "--clients", "3").returncode == 0
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *CREATE, "--clients", "2"),
                           "would leave 1 of them unmanaged. Remove clients with `flwrazure scale")
    assert product_cloud.writes(since) == []
    assert len(list(product_cloud.compute.virtual_machines.list("flower-rg"))) == 4
    assert json.loads((home / "clusters" / "flower" / "state.json").read_text())["clients"] == 3


def test_undetectable_operator_address_asks_for_ssh_source(product_cloud, home):
    product_cloud.admin("PATCH", "config", {"echo_address": "<html>rate limited</html>"})  # the echo service
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *CREATE), "could not detect your public IPv4 address")
    assert_one_line_exit_2(flwrazure(home, *CREATE), "pass --ssh-source <your-ip>")
    assert product_cloud.writes(since) == [] and list(product_cloud.resources.resource_groups.list()) == []


@pytest.mark.parametrize("name", ["FLWRAZURE_POLL", "FLWRAZURE_GROUP_DELETE_TIMEOUT", "FLWRAZURE_SSH_AUTH_GRACE"])
def test_a_numeric_setting_that_is_no_number(product_cloud, home, name):
    since = time.time()
    result = flwrazure(home, *CREATE, env={name: "abc"})
    assert_one_line_exit_2(result, f"{name}='abc' is not a number of seconds")
    assert product_cloud.writes(since) == [] and not (home / "clusters").exists()
