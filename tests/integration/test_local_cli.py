"""`flwrazure local up/status/down` from a shell, as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import contract

# `local up` as a user types it, with --hosts auto: as root, with the VM image there, a local cloud with sandbox hosts
pytestmark = pytest.mark.vms


def _run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLWRAZURE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "flwrazure", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def _our_servers(home: Path) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "flwrazure.localcloud" in cmd and str(home) in cmd:
            out.append(cmd)
    return out


def test_up_status_down_twice_leaves_no_process(tmp_path):
    home = tmp_path / "home"
    endpoints = []
    try:
        for _ in range(2):
            up = _run(home, "local", "up", "--port", "0")
            assert up.returncode == 0, up.stderr
            again = _run(home, "local", "up", "--port", "0")
            assert "already running" in again.stdout
            status = _run(home, "local", "status", "--json")
            assert status.returncode == 0, status.stderr
            info = json.loads(status.stdout)
            assert {"endpoint", "ca_bundle", "tenant_id", "subscription_id", "client_id", "client_secret"} <= set(info)
            assert contract.check("local status", info) == []  # docs/json.md
            assert info["endpoint"].startswith("https://127.0.0.1:")
            endpoints.append(info)
            assert _run(home, "local", "down").returncode == 0
            assert _our_servers(home) == []
    finally:  # a failed check must not leave its local cloud holding the public range for the VM tests after it
        _run(home, "local", "down")
    assert endpoints[0]["subscription_id"] == endpoints[1]["subscription_id"]  # identity persists
    stopped = _run(home, "local", "status")
    assert stopped.returncode == 1 and "not running" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert _run(home, "local", "down").returncode == 0  # idempotent
    secret = home / "local" / "identity.json"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_state_survives_down_and_up_and_reset_wipes_it(tmp_path):
    from azure.identity import ClientSecretCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    home = tmp_path / "home"

    def client():
        info = json.loads(_run(home, "local", "status", "--json").stdout)
        cred = ClientSecretCredential(info["tenant_id"], info["client_id"], info["client_secret"],
                                      authority=info["endpoint"], disable_instance_discovery=True,
                                      connection_verify=info["ca_bundle"])
        return ResourceManagementClient(cred, info["subscription_id"], base_url=info["endpoint"],
                                        connection_verify=info["ca_bundle"])
    try:
        _run(home, "local", "up", "--port", "0")
        client().resource_groups.create_or_update("kept", {"location": "eastus"})
        _run(home, "local", "down")
        _run(home, "local", "up", "--port", "0")
        assert [g.name for g in client().resource_groups.list()] == ["kept"]
        refused = _run(home, "local", "reset", "--yes")
        assert refused.returncode == 2 and "stop it first" in refused.stderr
        _run(home, "local", "down")
        assert _run(home, "local", "reset", "--yes").returncode == 0
        _run(home, "local", "up", "--port", "0")
        assert list(client().resource_groups.list()) == []
    finally:
        _run(home, "local", "down")
    assert _our_servers(home) == []


def test_bad_input_is_one_line_exit_2(tmp_path):
    home = tmp_path / "home"
    for args in (["local", "up", "--faults", str(tmp_path / "missing.json")],
                 ["local", "up", "--latency", "-1"],
                 ["local", "up", "--port", "99999"]):
        result = _run(home, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 3
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _run(home, "local", "up", "--catalog", str(bad))
    assert result.returncode == 2 and "not valid JSON" in result.stderr
    assert _our_servers(home) == []
