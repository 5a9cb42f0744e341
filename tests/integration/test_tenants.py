"""Several organisations in one local cloud (issue 24): each identity's tenant, subscription and service principal,
reached with the real SDK over HTTPS. A token of one cannot read or change another's resources (ARM's own codes
for each case), each sees only its subscription, and quotas, throttling and resource groups are per subscription,
while the public address range is shared."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential

from flwrazure.localcloud import identity as ids
from tests.helpers.cloud import Cloud, clients_for, flwrazure

LOC = "eastus"
VNET = {"location": LOC, "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}
NOBODY = "00000000-0000-0000-0000-000000000000"


def as_identity(cloud: Cloud, principal: ids.Principal) -> Cloud:
    """SDK clients signed in as another identity of the same local cloud."""
    info = {**cloud.info, "tenant_id": principal.tenant_id, "subscription_id": principal.subscription_id,
            "client_id": principal.client_id, "client_secret": principal.client_secret}
    return clients_for(None, info=info)


def on_subscription(cloud: Cloud, sub: str) -> Cloud:
    """`cloud`'s credential, pointed at subscription `sub`."""
    return clients_for(None, info={**cloud.info, "subscription_id": sub})


def add(cloud: Cloud, name: str, tenant_of: str | None = None) -> ids.Principal:
    return ids.add(cloud.server.state_dir, cloud.server.identity, name, tenant_of)[0]


def code_of(call) -> tuple[int, str, str]:
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value.status_code, err.value.error.code, err.value.error.message


@pytest.fixture
def b_with_a_network(cloud):
    """Identity B (a tenant of its own) with a resource group and a VNet in its subscription."""
    b = as_identity(cloud, add(cloud, "hospital-b"))
    b.resources.resource_groups.create_or_update("b-rg", {"location": LOC})
    b.network.virtual_networks.begin_create_or_update("b-rg", "b-vnet", VNET).result()
    return b


def test_a_token_of_another_tenant_can_neither_list_nor_read_nor_delete_its_groups(cloud, b_with_a_network):
    b = b_with_a_network
    a_on_b = on_subscription(cloud, b.sub)
    for call in (lambda: list(a_on_b.resources.resource_groups.list()),
                 lambda: a_on_b.resources.resource_groups.get("b-rg"),
                 lambda: a_on_b.resources.resource_groups.begin_delete("b-rg").result(),
                 lambda: a_on_b.network.virtual_networks.get("b-rg", "b-vnet"),
                 lambda: a_on_b.network.virtual_networks.begin_delete("b-rg", "b-vnet").result()):
        status, code, message = code_of(call)
        assert (status, code) == (401, "InvalidAuthenticationTokenTenant")
        assert f"It must match the tenant 'https://sts.localcloud/{b.info['tenant_id']}/'" in message
        assert f"'https://sts.localcloud/{cloud.info['tenant_id']}/'" in message  # the token's own issuer
    raw = cloud.raw("GET", f"/subscriptions/{b.sub}/resourcegroups")
    assert raw.status_code == 401 and raw.headers["x-ms-failure-cause"] == "gateway"
    assert f'authorization_uri="{cloud.info["endpoint"]}/{b.info["tenant_id"]}"' in raw.headers["WWW-Authenticate"]
    # and the other way round: B cannot list A's groups
    cloud.resources.resource_groups.create_or_update("a-rg", {"location": LOC})
    status, code, _ = code_of(lambda: list(on_subscription(b, cloud.sub).resources.resource_groups.list()))
    assert (status, code) == (401, "InvalidAuthenticationTokenTenant")
    # nothing of B's was touched, and each lists only its own
    assert [g.name for g in b.resources.resource_groups.list()] == ["b-rg"]
    assert b.network.virtual_networks.get("b-rg", "b-vnet").provisioning_state == "Succeeded"
    assert [g.name for g in cloud.resources.resource_groups.list()] == ["a-rg"]
    # the generic list (`/resources`, subscription-wide and a group's) too: the silo e2e found B listing C's VNet
    assert [r.name for r in b.resources.resources.list()] == ["b-vnet"]
    assert list(cloud.resources.resources.list()) == list(cloud.resources.resources.list_by_resource_group("a-rg")) \
        == []


def test_the_same_tenant_without_a_role_is_authorization_failed_naming_action_and_scope(cloud):
    c = as_identity(cloud, add(cloud, "audit", tenant_of="default"))
    assert c.info["tenant_id"] == cloud.info["tenant_id"] and c.sub != cloud.sub
    c.resources.resource_groups.create_or_update("c-rg", {"location": LOC})
    c.network.virtual_networks.begin_create_or_update("c-rg", "c-vnet", VNET).result()
    a_on_c = on_subscription(cloud, c.sub)
    oid = cloud.info["client_id"]  # the cloud's own principal: object id = client id
    cases = [(lambda: list(a_on_c.resources.resource_groups.list()),
              "Microsoft.Resources/subscriptions/resourcegroups/read", f"/subscriptions/{c.sub}"),
             (lambda: a_on_c.resources.resource_groups.get("c-rg"),
              "Microsoft.Resources/subscriptions/resourcegroups/read", f"/subscriptions/{c.sub}/resourcegroups/c-rg"),
             (lambda: a_on_c.resources.resource_groups.begin_delete("c-rg").result(),
              "Microsoft.Resources/subscriptions/resourcegroups/delete",
              f"/subscriptions/{c.sub}/resourcegroups/c-rg"),
             (lambda: a_on_c.network.virtual_networks.get("c-rg", "c-vnet"), "Microsoft.Network/virtualNetworks/read",
              f"/subscriptions/{c.sub}/resourceGroups/c-rg/providers/Microsoft.Network/virtualNetworks/c-vnet")]
    for call, action, scope in cases:
        status, code, message = code_of(call)
        assert (status, code) == (403, "AuthorizationFailed")
        assert message == (f"The client '{cloud.info['client_id']}' with object id '{oid}' does not have "
                           f"authorization to perform action '{action}' over scope '{scope}' or the scope is "
                           "invalid. If access was recently granted, please refresh your credentials.")
    assert [g.name for g in c.resources.resource_groups.list()] == ["c-rg"]


def test_an_unknown_subscription_is_not_found_and_each_lists_only_its_own(cloud):
    b = as_identity(cloud, add(cloud, "hospital-b"))
    for who in (cloud, b):
        nowhere = on_subscription(who, NOBODY)
        status, code, message = code_of(nowhere.resources.resource_groups.list().next)
        assert (status, code, message) == (404, "SubscriptionNotFound",
                                           f"The subscription '{NOBODY}' could not be found.")
        subs = who.raw("GET", "/subscriptions", api="2022-12-01").json()["value"]
        assert [(s["subscriptionId"], s["tenantId"]) for s in subs] == [(who.sub, who.info["tenant_id"])]
        tenants = who.raw("GET", "/tenants", api="2022-12-01").json()["value"]
        assert [t["tenantId"] for t in tenants] == [who.info["tenant_id"]]
        assert who.raw("GET", f"/subscriptions/{who.sub}", api="2022-12-01").json()["subscriptionId"] == who.sub
    # the cloud's knobs and request log are its operator's
    assert b.admin("GET", "requests").status_code == 403


def test_a_client_id_of_another_tenant_gets_no_token_there(cloud):
    b = add(cloud, "hospital-b")
    cred = ClientSecretCredential(cloud.info["tenant_id"], b.client_id, b.client_secret,
                                  authority=cloud.info["endpoint"], disable_instance_discovery=True,
                                  connection_verify=cloud.info["ca_bundle"])
    with pytest.raises(ClientAuthenticationError) as err:
        cred.get_token("https://management.azure.com/.default")
    assert "AADSTS700016" in str(err.value) and f"directory '{cloud.info['tenant_id']}'" in str(err.value)


def test_groups_of_one_name_quotas_and_throttling_are_per_subscription_the_public_range_is_shared(cloud):
    b = as_identity(cloud, add(cloud, "hospital-b"))
    cloud.admin("PATCH", "config", {"catalog": {"quotas": {"PublicIPAddresses": 1}}})
    pip = {"location": LOC, "sku": {"name": "Standard"}, "public_ip_allocation_method": "Static"}
    addresses = []
    for who in (cloud, b):
        who.resources.resource_groups.create_or_update("rg", {"location": LOC, "tags": {"owner": who.sub}})
        addresses.append(who.network.public_ip_addresses.begin_create_or_update("rg", "ip", pip).result().ip_address)
    assert len(set(addresses)) == 2  # one internet: no address handed out twice
    status, code, _ = code_of(lambda: cloud.network.public_ip_addresses.begin_create_or_update("rg", "ip2", pip)
                              .result())
    assert (status, code) == (400, "PublicIPCountLimitReached")
    for who in (cloud, b):
        used = {u.name.value: u.current_value for u in who.network.usages.list(LOC)}
        assert used["PublicIPAddresses"] == 1
        assert who.resources.resource_groups.get("rg").tags == {"owner": who.sub}
    cloud.resources.resource_groups.begin_delete("rg").result()
    assert b.network.public_ip_addresses.get("rg", "ip").ip_address == addresses[1]
    # ARM's read bucket of A's subscription empty: B's is full
    cloud.admin("PATCH", "config", {"throttling": {"reads": {"burst": 3, "rate": 0.01}}})
    a_reads = [cloud.raw("GET", f"/subscriptions/{cloud.sub}/resourcegroups").status_code for _ in range(4)]
    assert a_reads[-1] == 429
    b_read = b.raw("GET", f"/subscriptions/{b.sub}/resourcegroups")
    assert b_read.status_code == 200 and b_read.headers["x-ms-ratelimit-remaining-subscription-reads"] == "2"


def test_identities_and_their_groups_outlive_a_restart(tmp_path):
    from tests.helpers.cloud import start_cloud

    first = start_cloud(tmp_path / "local")
    try:
        b = as_identity(first, add(first, "hospital-b"))
        for who in (first, b):
            who.resources.resource_groups.create_or_update("same", {"location": LOC, "tags": {"owner": who.sub}})
        mode = stat.S_IMODE(os.stat(tmp_path / "local" / ids.IDENTITIES).st_mode)
        assert mode == 0o600
    finally:
        first.server.stop()
    again = start_cloud(tmp_path / "local")
    try:
        b = as_identity(again, add(again, "hospital-b"))  # added again: the same identity
        assert b.sub == json.loads((tmp_path / "local" / ids.IDENTITIES).read_text())["hospital-b"][
            "subscription_id"]
        for who in (again, b):
            assert [(g.name, g.tags) for g in who.resources.resource_groups.list()] == [("same", {"owner": who.sub})]
    finally:
        again.server.stop()


@pytest.fixture
def daemon_home(home):
    """`flwrazure local up` (API only) in the operator's home, stopped with `local down`."""
    up = flwrazure(home, "local", "up", "--port", "0", "--hosts", "none")
    assert up.returncode == 0, up.stderr
    try:
        yield home
    finally:
        assert flwrazure(home, "local", "down").returncode == 0


def test_local_use_makes_another_homes_cloud_local_that_identity(daemon_home, tmp_path):
    a_home, b_home = daemon_home, tmp_path / "silo"
    a_info = json.loads(flwrazure(a_home, "local", "status", "--json").stdout)
    added = flwrazure(a_home, "local", "identity", "add", "hospital-b", "--json")
    assert added.returncode == 0, added.stderr
    b_file = tmp_path / "b.json"
    b_file.write_text(added.stdout)
    b_info = json.loads(added.stdout)
    assert set(b_info) == set(a_info) - {"pid"}  # the keys of `local status --json`
    assert b_info["tenant_id"] != a_info["tenant_id"] and b_info["subscription_id"] != a_info["subscription_id"]
    again = json.loads(flwrazure(a_home, "local", "identity", "add", "hospital-b", "--json").stdout)
    assert again == b_info  # idempotent
    listed = flwrazure(a_home, "local", "identity", "list")
    assert "hospital-b" in listed.stdout and b_info["client_secret"] not in listed.stdout

    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**b_info, "client_secret": "not-it"}))
    refused = flwrazure(b_home, "local", "use", str(tampered))
    assert refused.returncode == 2 and "AADSTS7000215" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (b_home / "local" / "connection.json").exists() and not (b_home / "local" / "ca.pem").exists()
    used = flwrazure(b_home, "local", "use", str(b_file))
    assert used.returncode == 0, used.stderr
    status = json.loads(flwrazure(b_home, "local", "status", "--json").stdout)
    assert (status["subscription_id"], status["client_id"]) == (b_info["subscription_id"], b_info["client_id"])
    created = flwrazure(b_home, "create-cluster", "--cloud", "local", "--clients", "1")
    assert created.returncode == 0, created.stderr
    b = clients_for(None, info=status)
    assert [g.name for g in b.resources.resource_groups.list()] == ["flower-rg"]
    a = clients_for(None, info=a_info)
    assert list(a.resources.resource_groups.list()) == []
    cores = {who: next(u.current_value for u in c.compute.usage.list(LOC) if u.name.value == "cores")
             for who, c in (("a", a), ("b", b))}
    assert cores == {"a": 0, "b": 4}  # vCPU quota is per subscription: B's two D2s_v3 count in B's only
    # nothing of A's credentials in B's home, and B's secret only in files only B can read
    for f in b_home.rglob("*"):
        if f.is_file():
            assert a_info["client_secret"] not in f.read_text(errors="replace"), f
            if b_info["client_secret"] in f.read_text(errors="replace"):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # the home that uses another's cloud neither starts nor stops one
    for args in (("local", "up", "--hosts", "none"), ("local", "down")):
        refused = flwrazure(b_home, *args)
        assert refused.returncode == 2 and "local use --forget" in refused.stderr, refused.stderr
    assert flwrazure(b_home, "teardown", "--cluster", "flower", "--yes").returncode == 0
    assert list(b.resources.resource_groups.list()) == []


@pytest.mark.parametrize("content, said", [
    (None, "no such file"),
    ("{", "not a JSON file"),
    ('{"endpoint": "https://127.0.0.1:1"}', "tenant_id, subscription_id, client_id, client_secret missing"),
    (json.dumps({"endpoint": "https://example.org", "tenant_id": NOBODY, "subscription_id": NOBODY,
                 "client_id": NOBODY, "client_secret": "x"}), "is not a local cloud's"),
])
def test_local_use_refuses_what_is_not_an_identity_in_one_line(home, tmp_path, content, said):
    f = tmp_path / "id.json"
    if content is not None:
        f.write_text(content)
    result = flwrazure(home, "local", "use", str(f))
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (home / "local" / "connection.json").exists()


def test_identity_names_are_checked_before_anything_is_created(home):
    result = flwrazure(home, "local", "identity", "add", "Bad_Name")
    assert result.returncode == 2 and "is not valid" in result.stderr
    assert not (home / "local").exists()


def test_the_azure_cli_of_a_home_that_uses_an_identity_sees_only_its_subscription(daemon_home, tmp_path):
    from flwrazure.localcloud import azcli as azsetup
    from tests.helpers import azcli

    az_bin = azcli.install()
    a_info = json.loads(flwrazure(daemon_home, "local", "status", "--json").stdout)
    clients_for(None, info=a_info).resources.resource_groups.create_or_update("a-rg", {"location": LOC})
    b_home, b_file = tmp_path / "silo", tmp_path / "b.json"
    b_file.write_text(flwrazure(daemon_home, "local", "identity", "add", "hospital-b", "--json").stdout)
    assert flwrazure(b_home, "local", "use", str(b_file)).returncode == 0
    b_info = json.loads(b_file.read_text())
    clients_for(None, info={**b_info, "ca_bundle": a_info["ca_bundle"]}).resources.resource_groups \
        .create_or_update("b-rg", {"location": LOC})
    printed = flwrazure(b_home, "local", "az")
    assert printed.returncode == 0, printed.stderr
    config_dir = b_home / "local" / "az"
    azcli.seed_version_check(az_bin, config_dir)
    tripwire = azcli.Tripwire()
    base_env = {**os.environ, "PATH": f"{az_bin}{os.pathsep}{os.environ['PATH']}", **tripwire.env}
    setup = subprocess.run(["bash", "-ec", printed.stdout], env=base_env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    assert setup.returncode == 0, setup.stderr
    env = {**base_env, **azsetup.environment({"ca_bundle": str(b_home / "local" / "ca.pem")}, str(config_dir))}

    def az(*args: str):
        result = subprocess.run(["az", *args, "--only-show-errors"], env=env, capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL)
        return result.returncode, result.stdout, result.stderr

    started = time.monotonic()
    rc, out, err = az("account", "list")
    assert rc == 0, err
    assert [(s["id"], s["tenantId"]) for s in json.loads(out)] == [(b_info["subscription_id"], b_info["tenant_id"])]
    rc, out, err = az("group", "list")
    assert rc == 0 and [g["name"] for g in json.loads(out)] == ["b-rg"], err
    rc, out, err = az("group", "list", "--subscription", a_info["subscription_id"])
    assert rc != 0 and a_info["subscription_id"] in err  # az knows no such subscription for this sign-in
    assert tripwire.seen == [], tripwire.seen
    assert time.monotonic() - started < 60


def test_an_operation_of_another_subscription_is_not_found_from_ones_own(cloud):
    b = as_identity(cloud, add(cloud, "hospital-b"))
    cloud.resources.resource_groups.create_or_update("rg", {"location": LOC})
    put = cloud.raw("PUT", f"{cloud.rg_path('rg')}/providers/Microsoft.Network/virtualNetworks/v", VNET)
    url = put.headers["Azure-AsyncOperation"]
    assert cloud.raw("GET", url.replace(cloud.info["endpoint"], ""), api=None).status_code == 200
    mine = url.replace(cloud.info["endpoint"], "").replace(cloud.sub, b.sub)
    answer = b.raw("GET", mine, api=None)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NotFound"
