"""--client-data refused before anything is created, copied or started (API-only local cloud, real CLI): a
missing DIR, missing DIR/<i> (all named in one line), a name that may not travel to a VM; and scale and resume,
which re-run start with the recorded DIR, refuse before they create or start a VM."""

import json
import time

from tests.helpers.cloud import flwrazure
from tests.integration.test_bad_input import assert_one_line_exit_2

UP = ("up", "--cloud", "local", "--insecure")


def _dirs(root, *names):
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    return root


def test_up_refuses_bad_client_data_before_creating_anything(product_cloud, home, tmp_path):
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, *UP, "--client-data", str(tmp_path / "nope")), "no such directory")
    data = _dirs(tmp_path / "d", "1", "x")
    assert_one_line_exit_2(flwrazure(home, *UP, "--clients", "3", "--client-data", str(data)),
                           f"no directory for client(s) 2, 3 ({data}/2, {data}/3 missing)")
    _dirs(data, "2")
    (data / "2" / "bad\nname.csv").write_text("x")
    assert_one_line_exit_2(flwrazure(home, *UP, "--client-data", str(data)), "is not allowed")
    assert product_cloud.writes(since) == [] and list(product_cloud.resources.resource_groups.list()) == []
    assert not any((home / "clusters").glob("*/state.json"))


def test_start_scale_and_resume_refuse_missing_client_dirs_first(product_cloud, home, tmp_path):
    assert flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "2").returncode == 0
    path = home / "clusters" / "flower" / "state.json"
    before = path.read_text()
    since = time.time()
    data = _dirs(tmp_path / "d", "1")
    assert_one_line_exit_2(flwrazure(home, "start", "--client-data", str(data)), "no directory for client(s) 2")
    assert path.read_text() == before
    # a started cluster whose start was given DIR (API-only VMs cannot run Flower: the record is written here)
    _dirs(data, "2")
    st = json.loads(before)
    path.write_text(json.dumps({**st, "started": True, "secure": False,
                                "start_options": {"extra_pip": [], "client_data": str(data)}}))
    assert_one_line_exit_2(flwrazure(home, "scale", "--clients", "3"), "no directory for client(s) 3")
    (data / "2").rmdir()
    assert_one_line_exit_2(flwrazure(home, "resume"), "start runs again with the --client-data it was given")
    assert product_cloud.writes(since) == []
    assert len(list(product_cloud.compute.virtual_machines.list("flower-rg"))) == 3
