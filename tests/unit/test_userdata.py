"""The VMs' cloud-init user data (plan.userdata): what it runs, its size against Azure's limit, nothing secret in
it, and how start reads cloud-init's verdict (fallback_reason)."""

from __future__ import annotations

import base64
import json
import shlex

import pytest

from flwrazure.plan import bootstrap, userdata
from flwrazure.plan.resources import vm


def _config(text: str) -> dict:
    head, body = text.split("\n", 1)
    assert head == "#cloud-config"
    return json.loads(body)  # JSON is YAML: cloud-init reads it as its cloud-config


def test_cloud_config_installs_flower_into_the_venv_without_apt():
    """A venv without ensurepip, uv (out of its wheel on the index) installing flwr, the extras and pip."""
    text = userdata.cloud_config("1.42.0", ["numpy", "scikit-learn>=1.3"], "azureuser")
    config = _config(text)
    assert "packages" not in config  # nothing waits for the first-boot apt job
    files = {f["path"]: f for f in config["write_files"]}
    assert set(files) == {userdata.SCRIPT, userdata.INSTALLER} and config["runcmd"] == [[userdata.SCRIPT]]
    script = files[userdata.SCRIPT]["content"]
    assert files[userdata.SCRIPT]["permissions"] == "0755" and script.startswith("#!/bin/sh\n")
    assert "set -eu\n" in script  # one failing step fails the runcmd, and cloud-init says so
    assert "python3 -m venv --without-pip /home/azureuser/flwr-venv\n" in script
    assert f"python3 {userdata.INSTALLER} /home/azureuser/flwr-venv '' flwr==1.42.0 numpy 'scikit-learn>=1.3'\n" \
        in script
    marker = bootstrap.marker_text("1.42.0", ["numpy", "scikit-learn>=1.3"], None)
    assert f"printf %s {shlex.quote(marker)} > /home/azureuser/flwrazure/installed.json\n" in script
    assert "chown -R azureuser: /home/azureuser/flwrazure /home/azureuser/flwr-venv\n" in script
    compile(files[userdata.INSTALLER]["content"], userdata.INSTALLER, "exec")


def test_marker_is_the_one_the_ssh_bootstrap_writes():
    assert bootstrap.marker_text("1.42.0", ["b", "a"], None) == \
        '{"extra": ["a", "b"], "flwr": "1.42.0", "index": null}\n'


def test_index_url_without_credentials_is_used_and_digested():
    text = userdata.cloud_config("1.42.0", [], "u", index_url="https://mirror.example/simple/")
    script = next(f["content"] for f in _config(text)["write_files"] if f["path"] == userdata.SCRIPT)
    assert "PIP_INDEX_URL=https://mirror.example/simple/ " in script
    assert '"index": "sha256:' in script  # the marker names the index as start's does


@pytest.mark.parametrize("extra, index, ok", [
    ([], None, True),
    (["numpy"], "https://mirror.example/simple/", True),
    ([], "https://user:token@mirror.example/simple/", False),  # a token stays out of customData
    (["pkg @ https://user:token@files.example/pkg.whl"], None, False),
])
def test_nothing_secret_goes_into_user_data(extra, index, ok):
    assert userdata.eligible(extra, index) is ok


def test_apt_packages_only_when_asked_and_validated():
    assert _config(userdata.cloud_config("1.42.0", [], "u", apt=("python3-venv",)))["packages"] == ["python3-venv"]
    with pytest.raises(ValueError):
        userdata.cloud_config("1.42.0", [], "u", apt=("x; reboot",))


def test_size_stays_under_azure_limit_and_is_refused_above():
    text = userdata.cloud_config("1.42.0", [f"package-{i}>=1.0" for i in range(100)], "azureuser")
    encoded = userdata.custom_data(text)
    assert len(text.encode()) < 8 * 1024 < userdata.MAX_BYTES
    assert base64.b64decode(encoded).decode() == text
    assert len(userdata.custom_data("x" * userdata.MAX_BYTES)) == 87380  # the compute API's limit in characters
    with pytest.raises(ValueError, match="65535"):
        userdata.custom_data("x" * (userdata.MAX_BYTES + 1))


def test_vm_body_carries_custom_data_only_when_given():
    args = ("eastus", {}, "Standard_D2s_v3", "vm", "azureuser", "ssh-ed25519 AAAA", "/nic", "disk")
    assert "customData" not in vm(*args)["properties"]["osProfile"]
    assert vm(*args, custom_data="I2Nsb3Vk")["properties"]["osProfile"]["customData"] == "I2Nsb3Vk"


ERROR = json.dumps({"status": "error", "errors": [
    "('package_update_upgrade_install', RuntimeError(\"Failed to install packages: ['no-such']\"))"]})


@pytest.mark.parametrize("code, out, script, marker, expect", [
    (0, '{"status": "done"}', True, True, None),  # the user data installed Flower
    (2, '{"status": "done"}', True, True, None),  # done with recoverable errors
    (0, "none\n", False, True, None),  # no cloud-init (--host machine), installed by an earlier start
    (0, "none\n", False, False, "no cloud-init on this machine"),
    (1, ERROR, True, True, "its user data failed (cloud-init status: error in package_update_upgrade_install"),
    (124, "", True, False, "cloud-init was still running after 900 s"),
    (0, '{"status": "done"}', False, False, "it has no flwrazure user data"),
    (0, '{"status": "done"}', False, True, None),  # a VM created before: an earlier start installed it
    (1, ERROR, False, True, None),  # cloud-init failed in something not ours, and Flower is there
    (0, '{"status": "done"}', True, False, "its user data did not install Flower"),
])
def test_fallback_reason(code, out, script, marker, expect):
    got = userdata.fallback_reason(code, out, script, marker, 900)
    assert (got is None) if expect is None else (got or "").startswith(expect), got


def test_create_sends_user_data_unless_a_secret_would_go_in(tmp_path, monkeypatch):
    """create-cluster's customData: up's --extra-pip (else what start was last given, for scale), none with an
    index URL carrying credentials; on Azure pip itself comes from pip's own default index."""
    from flwrazure.commands import create
    from flwrazure.errors import UsageError
    from flwrazure.spec import ClusterSpec
    from flwrazure.workstation import state

    monkeypatch.setenv("FLWRAZURE_HOME", str(tmp_path))
    monkeypatch.delenv("FLWRAZURE_USER_DATA_APT", raising=False)

    def script(spec, *args) -> str:
        text = base64.b64decode(create.user_data(spec, *args)).decode()
        return "\n".join(f["content"] for f in _config(text)["write_files"] if f["path"] == userdata.SCRIPT)

    local, azure = ClusterSpec(cloud="local", flwr_version="1.42.0"), ClusterSpec(flwr_version="1.42.0")
    assert f"{userdata.INSTALLER} /home/azureuser/flwr-venv '' flwr==1.42.0 numpy\n" in script(local, ["numpy"], None)
    assert f"{userdata.INSTALLER} /home/azureuser/flwr-venv '' flwr" in script(local, [], None)  # the VM's pip.conf
    from pip._internal.models.index import PyPI

    assert f"{userdata.INSTALLER} /home/azureuser/flwr-venv {PyPI.simple_url} flwr" in script(azure, [], None)
    assert create.user_data(local, [], "https://u:secret@mirror.example/simple/") is None
    state.save("flower", {"cluster": "flower", "cloud": "local", "subscription": "s", "resource_group": "flower-rg",
                          "location": "eastus", "clients": 2, "flwr_version": "1.42.0", "admin_user": "azureuser",
                          "ssh_private_key": str(tmp_path / "k"),
                          "start_options": {"extra_pip": ["scipy"], "index_url": None}})
    assert " flwr==1.42.0 scipy\n" in script(local, None, None)  # scale: what start was given
    monkeypatch.setenv("FLWRAZURE_USER_DATA_APT", "bad;name")
    with pytest.raises(UsageError, match="FLWRAZURE_USER_DATA_APT"):
        create.user_data(local, [], None)


def _wheel(scripts_uv: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("uv-0.0.data/scripts/uv", scripts_uv)
    return buf.getvalue()


@pytest.mark.parametrize("tamper", [False, True])
def test_installer_takes_the_newest_uv_for_this_machine_and_installs_with_it(tmp_path, tamper):
    """The user data's installer against a local index: the newest manylinux uv wheel of this machine's
    architecture (0.10 over 0.9; not musllinux, not another architecture), its sha256 checked, uv's binary run
    with the venv, the index and the requirements plus pip."""
    import hashlib
    import http.server
    import os
    import platform
    import subprocess
    import sys
    import threading

    out = tmp_path / "args"
    good = _wheel(f"#!/bin/sh\necho \"$@\" > {out}\n")
    other = _wheel("#!/bin/sh\nexit 3\n")
    arch = platform.machine()
    files = {f"uv-0.9.0-py3-none-manylinux_2_17_{arch}.whl": other,
             f"uv-0.10.0-py3-none-manylinux_2_17_{arch}.manylinux2014_{arch}.whl": good,
             f"uv-0.11.0-py3-none-musllinux_1_1_{arch}.whl": other,
             "uv-0.12.0-py3-none-manylinux_2_17_riscv99.whl": other}
    digest = {n: hashlib.sha256(b"x" if tamper and d is good else d).hexdigest() for n, d in files.items()}
    page = "".join(f'<a href="../../files/{n}#sha256={digest[n]}">{n}</a>\n' for n in files).encode()

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = page if self.path == "/simple/uv/" else files.get(self.path.rsplit("/", 1)[-1])
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    installer = tmp_path / "install.py"
    installer.write_text(userdata._INSTALLER)
    index = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    try:
        proc = subprocess.run([sys.executable, str(installer), "/v", "", "flwr==1.42.0", "numpy>=2"],
                              env={**os.environ, "PIP_INDEX_URL": index}, capture_output=True, text=True,
                              timeout=60)
    finally:
        server.shutdown()
    if tamper:
        assert proc.returncode != 0 and "sha256 mismatch" in proc.stderr and not out.exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert out.read_text().split() == ["pip", "install", "-q", "--no-cache", "--python", "/v/bin/python",
                                           "--index-url", index, "--", "flwr==1.42.0", "numpy>=2", "pip"]
