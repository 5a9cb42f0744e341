import os

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")


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
