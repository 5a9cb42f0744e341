import os

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
# one VM image for every test and run (built once, ~1 min, then kept where this machine keeps caches)
os.environ.setdefault("FLWRAZURE_IMAGES", os.path.join(os.environ.get(
    "FLWRAZURE_TEST_CACHE", os.path.expanduser("~/.cache/flwrazure-tests")), "images"))


@pytest.fixture
def cloud(tmp_path):
    from tests.helpers.cloud import start_cloud

    c = start_cloud(tmp_path / "local")
    yield c
    c.server.stop()


@pytest.fixture
def net_stack(cloud):
    """A resource group with a VNet/subnet and an NSG; returns a dict of their ids."""
    from tests.helpers import arm

    cloud.resources.resource_groups.create_or_update("rg", {"location": "eastus"})
    v = cloud.network.virtual_networks.begin_create_or_update("rg", "vnet", arm.vnet()).result()
    nsg = cloud.network.network_security_groups.begin_create_or_update("rg", "nsg", {"location": "eastus"}).result()
    return {"subnet": v.subnets[0].id, "nsg": nsg.id, "vnet": v.id}


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def product_cloud(home):
    """A local cloud the product's commands reach through $FLWRAZURE_HOME/local/server.json."""
    from tests.helpers.cloud import publish, start_cloud

    c = start_cloud(home / "local")
    publish(c, home)
    yield c
    c.server.stop()


@pytest.fixture(scope="session", autouse=True)
def nothing_leaks():
    """After the whole suite: no namespace, link, overlay mount or host process of any test's local cloud."""
    yield
    import re
    import subprocess

    ours = re.compile(r"^(fz[0-9a-f]{4}-|f[vp][0-9a-f]{12}$|fb[0-9a-f]{4}(pub|[0-9a-f]{8})$)")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = [line.split(":")[1].strip().split("@")[0] for line in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()]
    mounts = [line.split()[1] for line in open("/proc/mounts") if "/pytest-of-" in line.split()[1]]
    procs = subprocess.run(["pgrep", "-f", "systemd-nspawn -D /tmp/pytest-of-"], capture_output=True,
                           text=True).stdout.split()
    leaked = {"netns": [n for n in netns if ours.match(n)], "links": [n for n in links if ours.match(n)],
              "mounts": mounts, "processes": procs}
    assert leaked == {"netns": [], "links": [], "mounts": [], "processes": []}, leaked
