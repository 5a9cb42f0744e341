import os
from pathlib import Path

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


# Tests that boot sandbox VMs (a local cloud with nspawn hosts). Only one such local cloud can run on a machine:
# each puts the public gateway 198.18.0.1/15 on a bridge of this machine (the route to every VM's public IP, the
# operator address VMs see, the address its package mirror listens on), and each hands out public IPs from the
# same 198.18.0.0/15; a second refuses to start ("another local cloud with sandbox hosts is running"). So under
# pytest-xdist (`make test`: -n 2 --dist loadgroup) they form one group that one worker runs, one after another,
# while the other workers run everything else. Everything under tests/e2e is such a test; elsewhere a module says
# so with `pytestmark = pytest.mark.vms` (a local cloud started with --hosts auto counts: as root it has hosts).
VMS = "vms"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{VMS}: boots sandbox VMs; all of them run on one xdist worker, one at a time")


@pytest.hookimpl(tryfirst=True)  # before xdist names the groups in the test ids
def pytest_collection_modifyitems(config, items):
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in Path(item.fspath).parents:
            item.add_marker(VMS)
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker(VMS):
            item.add_marker(pytest.mark.xdist_group(VMS))
        elif _shares_a_fixture(item):  # its module's tests together: the fixture is set up once, on one worker
            item.add_marker(pytest.mark.xdist_group(Path(item.fspath).stem))


def _shares_a_fixture(item) -> bool:
    """Whether the test uses a module- or class-scoped fixture (e.g. the Flower version matrix, 2 min to make)."""
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(d.scope in ("module", "class", "package") for fixture in defs.values() for d in fixture)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and not item.get_closest_marker(VMS) and "another local cloud with sandbox hosts" in \
            report.longreprtext:
        report.sections.append(("sandbox VMs", f"{item.nodeid} boots sandbox VMs but is not marked so: add "
                                "`pytestmark = pytest.mark.vms` to its module (tests/conftest.py, VMS)"))
    return report


LEAK_CHECK = "tests/conftest.py::nothing_leaks"
_ran = []  # whether a test ran (here, or in an xdist worker: the controller sees every worker's reports)


def pytest_runtest_logreport(report):
    if report.when == "call" and not _ran:
        _ran.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """After the whole suite (under xdist: in the controller, once every worker has finished): no namespace, link,
    overlay mount or host process of any test's local cloud. A leak fails the run as an error of its own."""
    if hasattr(session.config, "workerinput") or not _ran or exitstatus not in (
            pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return
    leaked = leftovers()
    if any(leaked.values()):
        report = pytest.TestReport(LEAK_CHECK, ("tests/conftest.py", 0, "nothing_leaks"), {}, "failed",
                                   f"left behind after the suite: {leaked}", "teardown")
        session.config.hook.pytest_runtest_logreport(report=report)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def leftovers() -> dict:
    import re
    import subprocess

    ours = re.compile(r"^(fz[0-9a-f]{4}-|f[vp][0-9a-f]{12}$|fb[0-9a-f]{4}(pub|[0-9a-f]{8})$)")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = [line.split(":")[1].strip().split("@")[0] for line in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()]
    mounts = [line.split()[1] for line in open("/proc/mounts") if "/pytest-of-" in line.split()[1]]
    procs = subprocess.run(["pgrep", "-f", "systemd-nspawn -D /tmp/pytest-of-"], capture_output=True,
                           text=True).stdout.split()
    return {"netns": [n for n in netns if ours.match(n)], "links": [n for n in links if ours.match(n)],
            "mounts": mounts, "processes": procs}
