"""The product's SSH connections do not depend on the operator's SSH or Fabric configuration (real Fabric and
paramiko, a hostile ~/.ssh/config and ~/.fabric.yaml in a temporary HOME, a real connection attempt)."""

import socket
import threading

import pytest

from flwrazure.remote import ssh


@pytest.fixture
def hostile_home(tmp_path, monkeypatch):
    """HOME with an ssh config that redirects every host (to a port we listen on, through a ProxyCommand that
    leaves a marker, with another user and key) and a Fabric config that changes the port and user."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    seen: list = []

    def accept() -> None:
        while True:
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            seen.append(peer)
            peer.close()

    threading.Thread(target=accept, daemon=True).start()
    home = tmp_path / "operator"
    (home / ".ssh").mkdir(parents=True)
    marker = tmp_path / "proxy-was-used"
    (home / ".ssh" / "config").write_text(
        f"Host *\n  Port {port}\n  User mallory\n  IdentityFile {tmp_path}/nokey\n"
        f"  ProxyCommand sh -c 'touch {marker}; exec nc 127.0.0.1 {port}'\n  ConnectTimeout 1\n")
    (home / ".fabric.yaml").write_text(f"port: {port}\nuser: mallory\n")
    monkeypatch.setenv("HOME", str(home))
    yield {"port": port, "seen": seen, "marker": marker, "home": home}
    listener.close()


def test_connection_ignores_the_operators_ssh_and_fabric_config(hostile_home, tmp_path):
    conn = ssh.connect("127.0.0.1", "azureuser", str(tmp_path / "id"), tmp_path / "known_hosts")
    assert (conn.host, conn.port, conn.user) == ("127.0.0.1", 22, "azureuser")
    assert conn.gateway is None and conn.ssh_config == {"hostname": "127.0.0.1"}
    assert conn.connect_kwargs["key_filename"] == [str(tmp_path / "id")]  # not the config's IdentityFile


def test_real_connection_attempt_goes_straight_to_port_22(hostile_home, tmp_path):
    """Nothing listens on 127.0.0.1:22 here, so the attempt must fail fast; the hostile config's port and proxy
    must see nothing."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 22)) == 0:
            pytest.skip("something listens on 127.0.0.1:22 on this machine")
    conn = ssh.connect("127.0.0.1", "azureuser", str(tmp_path / "id"), tmp_path / "known_hosts", timeout=2)
    try:
        conn.open()
        raise AssertionError("connected to something")
    except Exception as exc:  # refused by 127.0.0.1:22; anything else means we went elsewhere
        refused = isinstance(exc, OSError)
    conn.close()
    assert hostile_home["seen"] == [] and not hostile_home["marker"].exists() and refused
