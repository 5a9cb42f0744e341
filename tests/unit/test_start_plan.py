import stat
import subprocess

import pytest
import tomlkit
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from flwrazure.plan import services
from flwrazure.workstation import certs, flwrconfig

L = services.Layout("/home/azureuser")


def test_superlink_http_secure_flags():
    cmd = services.superlink_command("1.42.0", L, secure=True, runtime_deps=False)
    assert cmd[0] == "/home/azureuser/flwr-venv/bin/flower-superlink"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "8000"
    assert "--enable-supernode-auth" in cmd and "--insecure" not in cmd
    assert cmd[cmd.index("--ssl-certfile") + 1] == "/home/azureuser/flwrazure/server.pem"
    assert "--disable-runtime-dependency-installation" in cmd and "--database" in cmd


def test_seed_flags_for_grpc_insecure():
    link = services.superlink_command("1.34.0", L, secure=False, runtime_deps=True)
    assert "--insecure" in link and "--host" not in link and "--enable-supernode-auth" not in link
    node = services.supernode_command("1.34.0", L, "198.18.0.10", 0, 2, secure=False, runtime_deps=False)
    assert node[node.index("--superlink") + 1] == "198.18.0.10:9092"
    assert node[node.index("--node-config") + 1] == "partition-id=0 num-partitions=2"


def test_supernode_http_secure():
    node = services.supernode_command("1.42.0", L, "198.18.0.10", 1, 3, secure=True, runtime_deps=False)
    assert node[node.index("--superlink") + 1] == "198.18.0.10:8000" and node[node.index("--port") + 1] == "9094"
    assert node[node.index("--auth-supernode-private-key") + 1] == "/home/azureuser/flwrazure/supernode.key"


def _value(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


@pytest.mark.parametrize("version", ["1.21.0", "1.28.0", "1.29.0", "1.33.0", "1.34.0"])
def test_grpc_generation_internal_apis_on_loopback(version):
    """ServerAppIo (its default is 0.0.0.0:9091) and the SuperNode's ClientAppIo are for processes on the same VM;
    Fleet and Control keep their 0.0.0.0 defaults (measured per release: tests/integration/test_flower_versions)."""
    link = services.superlink_command(version, L, secure=True, runtime_deps=True)
    assert _value(link, "--serverappio-api-address") == "127.0.0.1:9091"
    assert "--fleet-api-address" not in link and "--control-api-address" not in link
    node = services.supernode_command(version, L, "198.18.0.10", 0, 2, secure=True, runtime_deps=True)
    assert _value(node, "--clientappio-api-address") == "127.0.0.1:9094" and "--host" not in node


@pytest.mark.parametrize("version", ["1.40.0", "1.42.0"])
def test_http_generation_runtime_api_on_loopback(version):
    """The SuperLink's one port serves Fleet, Control and its SuperExec's Runtime API (which connects to 127.0.0.1);
    the SuperNode's Runtime API gets --host 127.0.0.1 (its default, said so it cannot change under us)."""
    link = services.superlink_command(version, L, secure=True, runtime_deps=True)
    assert (_value(link, "--host"), _value(link, "--port")) == ("0.0.0.0", "8000")
    assert "--serverappio-api-address" not in link
    node = services.supernode_command(version, L, "198.18.0.10", 0, 2, secure=True, runtime_deps=True)
    assert (_value(node, "--host"), _value(node, "--port")) == ("127.0.0.1", "9094")
    assert "--clientappio-api-address" not in node


ALLOW, DISABLE = "--allow-runtime-dependency-installation", "--disable-runtime-dependency-installation"


@pytest.mark.parametrize("version, link_on, link_off, node_on", [
    ("1.21.0", [], [], []), ("1.28.0", [], [], []),  # no installer: nothing to turn on or off
    ("1.29.0", [ALLOW], [], [ALLOW]), ("1.31.0", [ALLOW], [], [ALLOW]),  # opt-in everywhere, no --disable-…
    ("1.32.1", [], [DISABLE], [ALLOW]), ("1.34.0", [], [DISABLE], [ALLOW]), ("1.42.0", [], [DISABLE], [ALLOW])])
def test_runtime_dependency_flags_per_release(version, link_on, link_off, node_on):
    def deps(cmd):
        return [a for a in cmd if a in (ALLOW, DISABLE)]

    assert deps(services.superlink_command(version, L, True, runtime_deps=True)) == link_on
    assert deps(services.superlink_command(version, L, True, runtime_deps=False)) == link_off
    assert deps(services.supernode_command(version, L, "198.18.0.10", 0, 1, True, runtime_deps=True)) == node_on
    assert deps(services.supernode_command(version, L, "198.18.0.10", 0, 1, True, runtime_deps=False)) == []


def test_unit_text():
    text = services.unit("Flower SuperLink", ["/v/bin/flower-superlink", "--node-config", "a=1 b=2"], L,
                         "azureuser", "http://198.18.0.1:47480/simple/")
    assert "Restart=on-failure" in text and "User=azureuser" in text and "WantedBy=multi-user.target" in text
    assert "EnvironmentFile=/home/azureuser/flwrazure/flower.env" in text and "Environment=" not in text
    assert 'ExecStart=/v/bin/flower-superlink --node-config "a=1 b=2"' in text
    env = services.env_file_text(services.environment(L, "http://198.18.0.1:47480/simple/"))
    assert "FLWR_TELEMETRY_ENABLED='0'" in env and "FLWR_DISABLE_UPDATE_CHECK='1'" in env
    assert "PATH='/home/azureuser/flwr-venv/bin:" in env and "UV_INSECURE_HOST='198.18.0.1'" in env


def test_index_credentials_stay_out_of_units_and_loop_scripts():
    """Unit files are world-readable: the index URL (with its token) is only in the 0600 environment file; the
    unit carries a digest, so a changed index still changes the unit (and restarts the service)."""
    index = "https://me:s3cr%40t@pkgs.example.org/simple/"
    text = services.unit("Flower SuperNode 1", ["/v/bin/flower-supernode"], L, "azureuser", index)
    loop = services.loop_script("Flower SuperNode 1", "flower-supernode", ["/v/bin/flower-supernode"], L, index)
    for shown in (text, loop):
        assert "s3cr" not in shown and "pkgs.example.org" not in shown
    assert services.unit("x", ["/v/bin/a"], L, "azureuser", index) != \
        services.unit("x", ["/v/bin/a"], L, "azureuser", index.replace("s3cr", "other"))
    env = services.env_file_text(services.environment(L, index))
    assert f"PIP_INDEX_URL='{index}'" in env and f"UV_DEFAULT_INDEX='{index}'" in env
    assert services.digest(index).startswith("sha256:") and "s3cr" not in services.digest(index)


def test_exec_start_escapes_what_systemd_would_expand():
    """systemd expands %-specifiers and $VARIABLES in ExecStart= and parses its own quotes: a value passes through
    as written only with % doubled, $ doubled and quotes/backslashes escaped inside double quotes."""
    text = services.unit("d%n", ["/v/bin/x", "--node-config", 'a=$HOME b=50%n c="q" d=\\'], L, "azureuser", None)
    assert 'ExecStart=/v/bin/x --node-config "a=$$HOME b=50%%n c=\\"q\\" d=\\\\"' in text
    assert "Description=d%%n (flwrazure)" in text
    assert services.exec_argument("plain-1.2:3/x=y") == "plain-1.2:3/x=y"
    with pytest.raises(ValueError):
        services.exec_argument("a\nExecStartPre=/bin/evil")


def test_environment_file_is_read_back_literally_by_sh(tmp_path):
    """The file is sourced by the restart loop and the bootstrap's pip: a value is data, never shell code."""
    value = "https://u:p$(touch${IFS}pwned)%n;`id`&x@h.example/simple/"
    path = tmp_path / "env"
    path.write_text(services.env_file_text({"PIP_INDEX_URL": value, "OTHER": "%%$HOME"}))
    out = subprocess.run(["sh", "-c", f'set -a; . {path}; set +a; printf "%s\\n%s\\n" "$PIP_INDEX_URL" "$OTHER"'],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [value, "%%$HOME"] and not (tmp_path / "pwned").exists()
    for bad in ("it's", "a\nB=1"):
        with pytest.raises(ValueError):
            services.env_file_text({"K": bad})
    with pytest.raises(ValueError):
        services.env_file_text({"K;x": "v"})


def test_certificates(tmp_path):
    crt, key = certs.ensure_server_cert(tmp_path, "c", ["198.18.0.10", "10.0.0.4"])
    assert certs.sans_of(crt) == {"127.0.0.1", "localhost", "198.18.0.10", "10.0.0.4"}
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate(crt.read_bytes())
    server.verify_directly_issued_by(ca)
    same, _ = certs.ensure_server_cert(tmp_path, "c", ["198.18.0.10", "10.0.0.4"])
    assert same.read_bytes() == crt.read_bytes()  # unchanged addresses: not re-issued
    certs.ensure_server_cert(tmp_path, "c", ["198.18.0.99", "10.0.0.4"])
    assert "198.18.0.99" in certs.sans_of(crt)


def test_supernode_key_is_openssh_p384(tmp_path):
    path, line = certs.ensure_supernode_key(tmp_path / "n1.key")
    assert line.startswith("ecdsa-sha2-nistp384 ") and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    key = serialization.load_ssh_private_key(path.read_bytes(), None)
    assert key.curve.name == "secp384r1"


def test_config_upsert_keeps_comments_and_entries():
    original = ('# my settings\n[superlink]\ndefault = "local"  # keep me\n\n[superlink.local]\n'
                'options.num-supernodes = 10\n')
    out = flwrconfig.upsert(original, "flower", "198.18.0.10:8000", "/abs/ca.crt")
    assert "# my settings" in out and "# keep me" in out and "num-supernodes = 10" in out
    doc = tomlkit.parse(out)
    assert doc["superlink"]["flower"]["address"] == "198.18.0.10:8000"
    assert doc["superlink"]["flower"]["root-certificates"] == "/abs/ca.crt"
    again = flwrconfig.upsert(out, "flower", "198.18.0.10:9093", None)
    assert tomlkit.parse(again)["superlink"]["flower"] == {"address": "198.18.0.10:9093", "insecure": True}
    fresh = tomlkit.parse(flwrconfig.upsert("", "c", "1.2.3.4:8000", None))
    assert fresh["superlink"]["default"] == "local"


def test_remove_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    flwrconfig.write_connection("a", "1.2.3.4:8000", None)
    flwrconfig.write_connection("b", "1.2.3.5:8000", None)
    assert flwrconfig.remove_connection("a") and not flwrconfig.remove_connection("a")
    assert set(tomlkit.parse((tmp_path / "config.toml").read_text())["superlink"]) == {"default", "b"}
