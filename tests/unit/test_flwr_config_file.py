"""The user's flwr files (config.toml, an app's pyproject.toml): rewritten through a symlink, with the target's
mode kept, whole, by several processes at once without losing an entry; a file that is not TOML or holds a value
where a table belongs is one line naming it and stays as it was."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from flwrazure.errors import UsageError
from flwrazure.workstation import flwrconfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def flwr_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr"))
    (tmp_path / "flwr").mkdir()
    return tmp_path / "flwr"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_symlinked_config_stays_a_link_and_its_target_keeps_its_mode(flwr_home, tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "flwr-config.toml"
    target.write_text("# mine\n[superlink]\ndefault = \"local\"\n")
    target.chmod(0o640)
    (flwr_home / "config.toml").symlink_to(target)
    flwrconfig.write_connection("c", "1.2.3.4:8000", None)
    assert (flwr_home / "config.toml").is_symlink() and os.readlink(flwr_home / "config.toml") == str(target)
    assert tomlkit.parse(target.read_text())["superlink"]["c"]["address"] == "1.2.3.4:8000"
    assert "# mine" in target.read_text() and mode(target) == 0o640
    assert flwrconfig.remove_connection("c")
    assert (flwr_home / "config.toml").is_symlink() and "[superlink.c]" not in target.read_text()
    assert mode(target) == 0o640 and sorted(p.name for p in dotfiles.iterdir()) == ["flwr-config.toml"]


@pytest.mark.parametrize("before", [0o600, 0o644, 0o400])
def test_the_mode_is_kept(flwr_home, before):
    path = flwr_home / "config.toml"
    path.write_text("[superlink]\ndefault = \"local\"\n")
    path.chmod(before)
    flwrconfig.write_connection("c", "1.2.3.4:8000", "/ca.crt")
    assert mode(path) == before
    flwrconfig.remove_connection("c")
    assert mode(path) == before


def test_a_new_config_is_readable_by_its_owner_only(flwr_home):
    flwrconfig.write_connection("c", "1.2.3.4:8000", None)
    assert mode(flwr_home / "config.toml") == 0o600


def test_the_app_pyproject_keeps_its_mode_and_link(tmp_path):
    app, real = tmp_path / "app", tmp_path / "real.toml"
    app.mkdir()
    real.write_text('[project]\nname = "a"\n')
    real.chmod(0o664)
    (app / "pyproject.toml").symlink_to(real)
    flwrconfig.write_federation(app, "c", "1.2.3.4:9093", None)
    assert (app / "pyproject.toml").is_symlink() and mode(real) == 0o664
    assert tomlkit.parse(real.read_text())["tool"]["flwr"]["federations"]["c"]["insecure"] is True
    assert flwrconfig.remove_connection("c", str(app / "pyproject.toml")) and mode(real) == 0o664


@pytest.mark.parametrize("text, why", [
    ("superlink = 3\n", "`superlink = 3` where a table belongs"),
    ("[superlink\n", "not valid TOML"),
    ('superlink = "x"\n', "`superlink = \"x\"` where a table belongs"),
])
def test_a_config_that_cannot_take_the_connection_is_one_line_and_stays(flwr_home, text, why):
    path = flwr_home / "config.toml"
    path.write_text(text)
    for act in (lambda: flwrconfig.write_connection("c", "1.2.3.4:8000", None),
                lambda: flwrconfig.remove_connection("c"), lambda: flwrconfig.check(path)):
        with pytest.raises(UsageError) as err:
            act()
        assert str(err.value).startswith(f"{path}: ") and why in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == text and os.listdir(flwr_home) == ["config.toml"]


@pytest.mark.parametrize("text, why", [('tool = "x"\n', "`tool = \"x\"`"), ("[tool.flwr]\nfederations = 1\n",
                                                                          "`tool.flwr.federations = 1`")])
def test_an_app_pyproject_that_cannot_take_the_federation_is_one_line(tmp_path, text, why):
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(UsageError, match=why):
        flwrconfig.write_federation(tmp_path, "c", "1.2.3.4:9093", None)
    with pytest.raises(UsageError, match=why):
        flwrconfig.remove_connection("c", str(tmp_path / "pyproject.toml"))
    assert (tmp_path / "pyproject.toml").read_text() == text


def test_processes_writing_connections_at_once_lose_none(flwr_home):
    """start on two clusters ends at the same time: both connections stay."""
    code = ("import sys\nfrom flwrazure.workstation import flwrconfig\n"
            "for j in range(15):\n    flwrconfig.write_connection(f'{sys.argv[1]}-{j}', '1.2.3.4:8000', None)\n")
    env = {**os.environ, "FLWR_HOME": str(flwr_home), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{i}"], env=env, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    names = set(tomlkit.parse((flwr_home / "config.toml").read_text())["superlink"])
    assert names == {"default"} | {f"p{i}-{j}" for i in range(3) for j in range(15)}
    assert os.listdir(flwr_home) == ["config.toml"]


def test_a_config_whose_folder_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "afile" / "flwr"))
    path = tmp_path / "afile" / "flwr" / "config.toml"
    with pytest.raises(UsageError, match=f"{tmp_path / 'afile'} is not a folder"):
        flwrconfig.check(path)
    with pytest.raises(UsageError) as err:
        flwrconfig.write_connection("c", "1.2.3.4:8000", None)
    assert str(err.value).startswith(f"{path}: it cannot be written")


def test_an_app_without_federations_is_as_it_was_after_remove(tmp_path):
    """The example app has no [tool.flwr.federations]: start adds one, teardown leaves the file as it found it."""
    original = (REPO / "examples" / "numpy-app" / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(original)
    flwrconfig.write_federation(tmp_path, "flower", "198.18.0.10:9093", "/abs/ca.crt")
    assert tomlkit.parse((tmp_path / "pyproject.toml").read_text())["tool"]["flwr"]["federations"]["flower"]
    assert flwrconfig.remove_connection("flower", str(tmp_path / "pyproject.toml"))
    assert (tmp_path / "pyproject.toml").read_text().rstrip() == original.rstrip()
