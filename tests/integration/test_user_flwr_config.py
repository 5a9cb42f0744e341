"""The user's ~/.flwr/config.toml as the real CLI meets it (API-only local cloud): a file start could not write
the connection into is refused before anything happens; teardown removes the connection before it forgets the
cluster's record, so a teardown stopped there finishes on re-run; a symlinked config stays a link."""

import os
import time

from tests.helpers.cloud import flwrazure


def one_line(result, code: int, *needles: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code and "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def test_up_and_start_refuse_a_config_they_could_not_write_before_anything_happens(product_cloud, home, tmp_path):
    config = tmp_path / "flwr" / "config.toml"
    config.parent.mkdir()
    config.write_text("superlink = 3\n")
    env = {"FLWR_HOME": str(config.parent)}
    since = time.time()
    one_line(flwrazure(home, "up", "--cloud", "local", "--clients", "1", env=env), 2, str(config),
             "`superlink = 3` where a table belongs")
    assert product_cloud.writes(since) == [] and not (home / "clusters").exists()
    assert flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1").returncode == 0
    one_line(flwrazure(home, "start", env=env), 2, str(config), "`superlink = 3` where a table belongs")
    assert config.read_text() == "superlink = 3\n"


def test_teardown_removes_the_connection_before_it_forgets_the_cluster(product_cloud, home, tmp_path):
    flwr_home = tmp_path / "flwr"
    flwr_home.mkdir()
    env = {"FLWR_HOME": str(flwr_home)}
    assert flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1").returncode == 0
    record = home / "clusters" / "flower" / "state.json"
    (flwr_home / "config.toml").write_text("[superlink\n")  # broken while the cluster ran
    stopped = flwrazure(home, "teardown", "--yes", env=env)  # after its progress line, one error line
    assert stopped.returncode == 2 and "Traceback" not in stopped.stderr, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {flwr_home / 'config.toml'}: it is not valid TOML"), last
    assert record.exists()  # the cloud side is gone, the record is not: a re-run finds the cluster
    assert product_cloud.resources.resource_groups.check_existence("flower-rg") is False
    # fixed, and kept as a link to the user's dotfiles with its mode
    target = tmp_path / "dotfiles.toml"
    target.write_text('[superlink]\ndefault = "local"\n\n[superlink.flower]\naddress = "198.18.0.1:8000"\n'
                      'insecure = true\n\n[superlink.other]\naddress = "203.0.113.1:8000"\ninsecure = true\n')
    target.chmod(0o600)
    (flwr_home / "config.toml").unlink()
    (flwr_home / "config.toml").symlink_to(target)
    result = flwrazure(home, "teardown", "--yes", env=env)
    assert result.returncode == 0, result.stderr
    assert not record.exists()
    assert (flwr_home / "config.toml").is_symlink() and os.stat(target).st_mode & 0o777 == 0o600
    assert "[superlink.flower]" not in target.read_text() and "[superlink.other]" in target.read_text()
