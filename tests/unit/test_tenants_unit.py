"""The pure parts of several tenants in one local cloud: RBAC's action and scope of a request, the identity
directory (creation, token endpoint answers) and the store's per-subscription view."""

from __future__ import annotations

import json

import pytest

from flwrazure.localcloud import identity as ids
from flwrazure.localcloud.arm import access
from flwrazure.localcloud.arm.store import Scoped, Store

S = "/subscriptions/11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize("method, path, action, scope", [
    ("GET", S, "Microsoft.Resources/subscriptions/read", S),
    ("GET", S + "/resourcegroups", "Microsoft.Resources/subscriptions/resourcegroups/read", S),
    ("PUT", S + "/resourcegroups/rg", "Microsoft.Resources/subscriptions/resourcegroups/write", S + "/resourcegroups/rg"),
    ("DELETE", S + "/resourcegroups/rg", "Microsoft.Resources/subscriptions/resourcegroups/delete",
     S + "/resourcegroups/rg"),
    ("GET", S + "/resourcegroups/rg/resources", "Microsoft.Resources/subscriptions/resourcegroups/resources/read",
     S + "/resourcegroups/rg"),
    ("GET", S + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
     "Microsoft.Network/virtualNetworks/subnets/read",
     S + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"),
    ("GET", S + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks",
     "Microsoft.Network/virtualNetworks/read", S + "/resourceGroups/rg"),
    ("POST", S + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/start",
     "Microsoft.Compute/virtualMachines/start/action",
     S + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"),
    ("POST", S + "/providers/Microsoft.Compute/register", "Microsoft.Compute/register/action", S),
    ("GET", S + "/providers/Microsoft.Compute/locations/eastus/usages", "Microsoft.Compute/locations/usages/read",
     S + "/providers/Microsoft.Compute/locations/eastus"),
])
def test_the_action_and_scope_rbac_checks(method, path, action, scope):
    assert access.action(method, path) == (action, scope)


def test_identities_are_created_once_0600_and_join_a_tenant_only_when_asked(tmp_path):
    own = ids.Identity.generate()
    b, created = ids.add(tmp_path, own, "hospital-b")
    assert created and b.tenant_id != own.tenant_id and b.subscription_id != own.subscription_id
    assert ids.add(tmp_path, own, "hospital-b") == (b, False)
    c, _ = ids.add(tmp_path, own, "audit", tenant_of="default")
    assert c.tenant_id == own.tenant_id and c.subscription_id != own.subscription_id
    assert (tmp_path / ids.IDENTITIES).stat().st_mode & 0o777 == 0o600
    assert set(json.loads((tmp_path / ids.IDENTITIES).read_text())) == {"hospital-b", "audit"}
    assert ids.add(tmp_path, own, "default")[0] == ids.default_principal(own)
    with pytest.raises(ValueError, match="no such identity"):
        ids.add(tmp_path, own, "x", tenant_of="nobody")
    with pytest.raises(ValueError, match="exists already, in another tenant"):
        ids.add(tmp_path, own, "hospital-b", tenant_of="default")
    with pytest.raises(ValueError, match="is not valid"):
        ids.add(tmp_path, own, "Hospital B")


def test_the_token_endpoint_knows_each_tenants_applications_only(tmp_path):
    own = ids.Identity.generate()
    directory = ids.Directory(own, tmp_path)
    b, _ = ids.add(tmp_path, own, "hospital-b")  # written after the directory was read: found on the next miss
    form = {"grant_type": "client_credentials", "client_id": b.client_id, "client_secret": b.client_secret}
    status, body = directory.token_response(b.tenant_id, form)
    assert status == 200
    code, claims = directory.verify(body["access_token"])
    assert code is None and (claims["tid"], claims["oid"]) == (b.tenant_id, b.object_id)
    assert directory.by_object(b.object_id) == b and directory.by_subscription(b.subscription_id.upper()) == b
    status, body = directory.token_response(own.tenant_id, form)
    assert (status, body["error"], body["error_codes"]) == (400, "unauthorized_client", [700016])
    assert f"was not found in the directory '{own.tenant_id}'" in body["error_description"]
    status, body = directory.token_response(ids.Identity.generate().tenant_id, form)
    assert (status, body["error_codes"]) == (400, [90002])
    status, body = directory.token_response(b.tenant_id, {**form, "client_secret": own.client_secret})
    assert (status, body["error_codes"]) == (401, [7000215])


def _group(sub: str, name: str) -> dict:
    return {"body": {"id": f"/subscriptions/{sub}/resourceGroups/{name}", "name": name,
                     "properties": {"provisioningState": "Succeeded"}}, "meta": {}}


def test_a_subscriptions_view_holds_its_groups_and_resources_only(tmp_path):
    store = Store()
    a, b = Scoped(store, "sub-a"), Scoped(store, "sub-b")
    a.groups["rg"], b.groups["rg"] = _group("sub-a", "rg"), _group("sub-b", "RG")
    for sub in ("sub-a", "sub-b"):
        store.put(f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
                  {"id": f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
                   "type": "Microsoft.Network/virtualNetworks"})
    assert list(a.groups) == ["rg"] and b.groups["rg"]["body"]["name"] == "RG" and len(store.groups) == 2
    assert [r["body"]["id"].split("/")[2] for r in a.of_type("Microsoft.Network/virtualNetworks", "rg")] == ["sub-a"]
    assert len(a.all_of_type("Microsoft.Network/virtualNetworks")) == 2
    assert [r["body"]["id"].split("/")[2] for r in b.in_group("rg")] == ["sub-b"]
    del a.groups["rg"]
    assert "rg" not in a.groups and "rg" in b.groups


def test_a_store_of_before_keys_its_groups_by_subscription(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"groups": {"rg": _group("sub-a", "rg")}, "resources": {}, "operations": {},
                                "counters": {}, "seq": 0}))
    store = Store(path)
    assert list(store.groups) == ["sub-a/rg"] and "rg" in Scoped(store, "sub-a").groups
    assert list(json.loads(path.read_text())["groups"]) == ["sub-a/rg"]  # written back at once
