"""SSH keys as Azure takes them (RSA >= 2048 bits and Ed25519; ECDSA, DSA and short RSA keys refused at the VM
PUT), and the operator's own keys: refused before anything is created when Azure would refuse them or they
cannot log in, and a passphrase-protected key used through the operator's real ssh-agent, offering that key only."""

import json
import socket
import threading
import time

import paramiko
import pytest
from azure.core.exceptions import HttpResponseError

from flwrazure.remote import ssh
from tests.helpers import arm
from tests.helpers.cloud import flwrazure
from tests.helpers.sshagent import Agent, keygen

CREATE = ("create-cluster", "--cloud", "local", "--clients", "1", "--ssh-source", "203.0.113.9")


@pytest.fixture
def agent(tmp_path):
    a = Agent(tmp_path)
    yield a
    a.stop()


def _vm_with_key(cloud, net_stack, key_line: str):
    pip = cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip", {
        "location": "eastus", "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"}}).result()
    nic = cloud.network.network_interfaces.begin_create_or_update(
        "rg", "nic", arm.nic(net_stack["subnet"], pip.id)).result()
    return cloud.compute.virtual_machines.begin_create_or_update("rg", "vm", arm.vm(nic.id, key=key_line)).result()


@pytest.mark.parametrize("kind, bits, accepted", [
    ("ed25519", None, True), ("rsa", 2048, True), ("rsa", 3072, True),
    ("ecdsa", 256, False), ("ecdsa", 384, False), ("ecdsa", 521, False), ("dsa", None, False),
    ("rsa", 1024, False), ("rsa", 2047, False)])
def test_vm_put_takes_only_the_key_types_azure_takes(cloud, net_stack, tmp_path, kind, bits, accepted):
    line = (keygen(tmp_path / "k", kind, bits).with_suffix(".pub")).read_text().strip()
    if accepted:
        assert _vm_with_key(cloud, net_stack, line).provisioning_state == "Succeeded"
        return
    with pytest.raises(HttpResponseError) as err:
        _vm_with_key(cloud, net_stack, line)
    assert err.value.status_code == 400 and err.value.error.code == "InvalidParameter"
    assert err.value.error.target == "linuxConfiguration.ssh.publicKeys.keyData"
    assert err.value.error.message == "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid."
    assert list(cloud.compute.virtual_machines.list("rg")) == []


class _RecordingServer(paramiko.ServerInterface):
    """An SSH server that records each public key offered and admits only `allowed`."""

    def __init__(self, allowed: bytes):
        self.allowed, self.offered = allowed, []

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        self.offered.append(key.asbytes())
        return paramiko.AUTH_SUCCESSFUL if key.asbytes() == self.allowed else paramiko.AUTH_FAILED


def _serve_once(tmp_path, allowed: bytes):
    host_key = paramiko.Ed25519Key(filename=str(keygen(tmp_path / "hostkey")))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = _RecordingServer(allowed)

    def run():
        sock, _ = listener.accept()
        transport = paramiko.Transport(sock)
        transport.add_server_key(host_key)
        transport.start_server(server=server)
        transport.join(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener, server


def test_passphrase_key_in_agent_creates_and_logs_in_offering_that_key_only(product_cloud, home, tmp_path, agent,
                                                                            monkeypatch):
    for i in range(3):  # the agent holds others first: offering all would try them (and trip MaxAuthTries)
        agent.add(keygen(tmp_path / f"other{i}"))
    key = keygen(tmp_path / "k", passphrase="pw")
    agent.add(key, "pw")
    created = flwrazure(home, *CREATE, "--ssh-key", str(key), "--json", env=agent.env())
    assert created.returncode == 0, created.stderr
    pub = key.with_suffix(".pub").read_text().strip()
    vm = product_cloud.compute.virtual_machines.get("flower-rg", "flower-server").as_dict()
    assert vm["properties"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"] == pub
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.sock))
    wanted = paramiko.PKey.from_type_string(pub.split()[0], __import__("base64").b64decode(pub.split()[1])).asbytes()
    listener, server = _serve_once(tmp_path, wanted)
    conn = ssh.connect("127.0.0.1", "azureuser", str(key), tmp_path / "known_hosts")
    assert "key_filename" not in conn.connect_kwargs and conn.connect_kwargs["allow_agent"] is False
    conn.port = listener.getsockname()[1]
    try:
        conn.open()
        assert conn.is_connected
    finally:
        conn.close()
        listener.close()
    assert server.offered == [wanted]


def test_start_refuses_a_key_that_cannot_log_in_at_once(product_cloud, home, tmp_path, agent):
    key = keygen(tmp_path / "k", passphrase="pw")
    agent.add(key, "pw")
    assert flwrazure(home, *CREATE, "--ssh-key", str(key), env=agent.env()).returncode == 0
    began = time.monotonic()
    result = flwrazure(home, "start", "--insecure", env={"SSH_AUTH_SOCK": ""}, timeout=60)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "passphrase-protected" in lines[0], result.stderr
    assert time.monotonic() - began < 30
    state = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    assert state["ssh_private_key"] == str(key)
