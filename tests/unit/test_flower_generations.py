"""What differs between Flower releases: who reads connections from where, which CLI commands exist, and the
service fallback for hosts without systemd (its shell loop is executed for real here)."""

import os
import subprocess
import time
from pathlib import Path

import pytest
import tomlkit

from flwrazure.commands.start import check
from flwrazure.errors import UsageError
from flwrazure.plan import admin, services, versions
from flwrazure.workstation import flwrconfig


@pytest.mark.parametrize("version, cli, toml", [("1.21.0", False, False), ("1.22.3", False, False),
                                                 ("1.23.0", True, False), ("1.25.0", True, False),
                                                 ("1.26.0", True, True), ("1.34.0", True, True),
                                                 ("1.42.0", True, True)])
def test_capabilities(version, cli, toml):
    assert versions.supernode_cli(version) is cli and versions.config_toml(version) is toml


@pytest.mark.parametrize("version, support", [
    ("1.21.0", versions.NO_INSTALLER), ("1.28.0", versions.NO_INSTALLER), ("1.29.0", versions.OPT_IN),
    ("1.31.0", versions.OPT_IN), ("1.32.0", versions.SUPERLINK_ON), ("1.34.0", versions.SUPERLINK_ON),
    ("1.42.0", versions.SUPERLINK_ON)])
def test_runtime_dependency_installer_per_release(version, support):
    """1.29 brought the installer (opt-in, `--allow-…` only); 1.32 turned it on in the SuperLink (`--disable-…`)."""
    assert versions.runtime_deps_support(version) == support


def test_same_minor():
    assert versions.same_minor("1.42.0", "1.42.3") and not versions.same_minor("1.41.0", "1.42.0")


def test_admin_connection_config_toml():
    files = admin.files("1.42.0", 8000, "/home/u/flwrazure/ca.crt")
    doc = tomlkit.parse(files["config.toml"])
    assert doc["superlink"]["default"] == "admin"
    assert dict(doc["superlink"]["admin"]) == {"address": "127.0.0.1:8000",
                                               "root-certificates": "/home/u/flwrazure/ca.crt"}
    assert admin.target("1.42.0", "/home/u/flwrazure/admin") == "admin"


def test_admin_connection_before_126_is_a_valid_app_pyproject():
    files = admin.files("1.25.0", 9093, None)
    doc = tomlkit.parse(files["pyproject.toml"])
    # the fields flwr 1.25 validates before any `flwr supernode` command
    assert doc["project"]["name"] and doc["project"]["version"]
    app = doc["tool"]["flwr"]["app"]
    assert app["publisher"] and app["components"]["serverapp"] and app["components"]["clientapp"]
    # 1.23 looks for the components' module in the app's folder and parses it for the attribute: it is there
    for ref in app["components"].values():
        module, attribute = ref.split(":")
        assert f"{attribute} = " in files[f"{module}.py"]
    feds = doc["tool"]["flwr"]["federations"]
    assert feds["default"] == "admin" and dict(feds["admin"]) == {"address": "127.0.0.1:9093", "insecure": True}
    assert admin.target("1.25.0", "/home/u/flwrazure/admin") == "/home/u/flwrazure/admin admin"


APP = '''# my app
[project]
name = "app"  # keep me
version = "1.0.0"

[tool.flwr.app]
publisher = "me"

[tool.flwr.federations]
default = "local-simulation"

[tool.flwr.federations.local-simulation]
options.num-supernodes = 10
'''


def test_federation_in_app_pyproject_keeps_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr"))
    (tmp_path / "pyproject.toml").write_text(APP)
    path = flwrconfig.write_federation(tmp_path, "exp", "198.18.0.10:9093", "/abs/ca.crt")
    text = path.read_text()
    assert text.startswith(APP.rstrip("\n")) and "# keep me" in text
    fed = tomlkit.parse(text)["tool"]["flwr"]["federations"]
    assert dict(fed["exp"]) == {"address": "198.18.0.10:9093", "root-certificates": "/abs/ca.crt"}
    assert fed["default"] == "local-simulation"
    assert flwrconfig.remove_connection("exp", str(path))
    assert path.read_text().rstrip() == APP.rstrip() and not flwrconfig.remove_connection("exp", str(path))


def test_federation_in_app_without_federations_table():
    out = flwrconfig.upsert_federation('[project]\nname = "a"\n', "c", "1.2.3.4:9093", None)
    assert tomlkit.parse(out)["tool"]["flwr"]["federations"]["c"]["insecure"] is True


def test_version_checks_before_anything_changes(tmp_path):
    with pytest.raises(UsageError, match="CSV key lists"):
        check("1.22.0", True, None)
    check("1.22.0", False, None)
    with pytest.raises(UsageError, match="no pyproject.toml"):
        check("1.25.0", True, tmp_path)
    check("1.42.0", True, tmp_path)  # config.toml: the app directory is only used for the printed command


def _wait(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end
        time.sleep(0.05)


def test_loop_restarts_on_failure_and_stops_on_success(tmp_path):
    """The no-systemd fallback, run by a real shell: the process fails twice, is restarted each time in the
    working directory with the unit's environment, then exits 0 and the loop ends."""
    layout = services.Layout(str(tmp_path))
    Path(layout.base).mkdir()
    count = tmp_path / "count"
    job = ("n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; "
           "echo \"$FLWR_TELEMETRY_ENABLED $PWD\" >> seen; [ $n -ge 2 ]")
    text = services.loop_script("Test", "job", ["sh", "-c", job], layout, None, restart_sec=0.1)
    Path(layout.path(services.ENV_FILE)).write_text(services.env_file_text(services.environment(layout, None)))
    script = tmp_path / "job.sh"
    script.write_text(text)
    proc = subprocess.Popen(["sh", str(script)], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out.splitlines() == [f"{services.RESTART_MARK} job exited with 1, restarting in 0.1 s"] * 2
    assert count.parent != Path(layout.base)  # the job ran in the working directory, not where it was started
    runs = (Path(layout.base) / "seen").read_text().splitlines()
    assert runs == [f"0 {layout.base}"] * 3
    assert (Path(layout.base) / "job.pid").read_text().strip() == str(proc.pid)


def test_loop_keeps_a_long_running_process_and_dies_with_its_group(tmp_path):
    layout = services.Layout(str(tmp_path))
    Path(layout.base).mkdir()
    index = "http://198.18.0.1:47480/simple/"
    text = services.loop_script("Test", "svc", ["sleep", "30"], layout, index)
    env = services.env_file_text(services.environment(layout, index))
    assert "UV_INSECURE_HOST='198.18.0.1'" in env and "PATH='" in env and index not in text
    Path(layout.path(services.ENV_FILE)).write_text(env)
    (tmp_path / "svc.sh").write_text(text)
    proc = subprocess.Popen(["setsid", "sh", str(tmp_path / "svc.sh")])
    pidfile = Path(layout.path("svc.pid"))
    _wait(pidfile.exists)
    pgid = int(pidfile.read_text())
    os.killpg(pgid, 15)
    assert proc.wait(timeout=10) != 0
    _wait(lambda: subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).returncode != 0)


def test_registration_answers():
    from flwrazure.errors import FlwrazureError
    from flwrazure.remote.flwradmin import parse_registrations

    out = ('@@c-client-1\nUsing SuperLink admin\n{"success": true, "node-id": 123}\n'
           '@@c-client-2\n{"success": false, "error-message": "Public key already in use"}\n')
    assert parse_registrations(out) == {"c-client-1": "123", "c-client-2": "registered"}
    with pytest.raises(FlwrazureError, match="c-client-3.*connection refused"):
        parse_registrations("@@c-client-3\nError: connection refused\n")


def test_supernodes_by_vm():
    from flwrazure.remote.flwradmin import by_vm

    listed = [{"node-id": "11", "status": "online"}, {"node-id": 12, "status": "offline"}]
    registered = {"c-client-1": "11", "c-client-2": "12", "c-client-3": "13"}
    assert by_vm(registered, listed, ["c-client-1", "c-client-2", "c-client-3", "c-client-4"]) == {
        "c-client-1": "online", "c-client-2": "offline", "c-client-3": "not seen", "c-client-4": "not registered"}
