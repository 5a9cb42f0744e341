"""Microsoft.Resources: resource groups (sync PUT, 202+Location DELETE that removes everything inside),
generic resource listing with $filter, and resource providers (which regions each type is offered in)."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import quote

from flwrazure.localcloud.arm import timing, validate
from flwrazure.localcloud.arm.common import Ctx, Resp, location, page, require_group, tags
from flwrazure.localcloud.arm.errors import ArmError, rg_not_found

RG_TYPE = "Microsoft.Resources/resourceGroups"
# Deleting a group removes what is inside in dependency order (VMs before the NICs they hold, NICs before IPs).
PURGE_ORDER = ["microsoft.compute/virtualmachines/extensions", "microsoft.compute/virtualmachines", "microsoft.compute/disks",
               "microsoft.network/networkinterfaces", "microsoft.network/natgateways",
               "microsoft.network/publicipaddresses", "microsoft.network/networksecuritygroups",
               "microsoft.network/virtualnetworks"]
PURGE_HOOKS: dict[str, object] = {}  # lower-case type -> fn(ctx, rec) run before a record is dropped

PROVIDER_TYPES = {
    "Microsoft.Compute": ["virtualMachines", "disks", "locations", "locations/operations", "locations/usages",
                          "skus"],
    "Microsoft.Network": ["virtualNetworks", "networkSecurityGroups", "publicIPAddresses", "networkInterfaces",
                          "natGateways", "locations", "locations/operations", "locations/operationResults", "locations/usages"],
    "Microsoft.Resources": ["resourceGroups", "subscriptions", "operationresults"],
}


def _rg_body(ctx: Ctx, name: str, loc: str, tag: dict, state: str = "Succeeded") -> dict:
    body = {"id": f"/subscriptions/{ctx.sub}/resourceGroups/{name}", "name": name, "type": RG_TYPE,
            "location": loc, "properties": {"provisioningState": state}}
    if tag:
        body["tags"] = tag
    return body


def put_group(ctx: Ctx, rg: str) -> Resp:
    validate.resource_group_name(rg)
    body = ctx.body or {}
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    try:
        loc = location(ctx, body.get("location"), RG_TYPE)
    except ArmError:
        raise ArmError(400, "LocationNotAvailableForResourceGroup",
                       f"The provided location '{body.get('location')}' is not available for resource group. "
                       f"List of available regions is '{','.join(ctx.catalog['locations'])}'.") from None
    tag = tags(body)
    with ctx.store.lock:
        rec = ctx.store.groups.get(rg.lower())
        if rec is not None:
            old = rec["body"]
            if old["properties"]["provisioningState"] == "Deleting":
                require_group(ctx, rg, for_write=True)
            if old["location"] != loc:
                raise ArmError(409, "InvalidResourceGroupLocation",
                               f"Invalid resource group location '{loc}'. The Resource group already exists in "
                               f"location '{old['location']}'.")
            rec["body"] = _rg_body(ctx, old["name"], loc, tag)
            ctx.store.mark_dirty(group=rg)
            return Resp(200, rec["body"])
        ctx.store.groups[rg.lower()] = {"body": _rg_body(ctx, rg, loc, tag), "meta": {}}
        ctx.store.mark_dirty(group=rg)
        return Resp(201, ctx.store.groups[rg.lower()]["body"])


def patch_group(ctx: Ctx, rg: str) -> Resp:
    rec = require_group(ctx, rg, for_write=True)
    if "tags" in (ctx.body or {}):
        with ctx.store.lock:
            rec["body"]["tags"] = tags(ctx.body)
            ctx.store.mark_dirty(group=rg)
    return Resp(200, rec["body"])


def get_group(ctx: Ctx, rg: str) -> Resp:
    return Resp(200, require_group(ctx, rg)["body"])


def head_group(ctx: Ctx, rg: str) -> Resp:
    if rg.lower() in ctx.store.groups:
        return Resp(204)
    return Resp(404, None, {"x-ms-failure-cause": "gateway"})  # as recorded: empty body, ARM's gateway answers


def list_groups(ctx: Ctx) -> Resp:
    items = [rec["body"] for rec in ctx.store.groups.values()]
    return page(ctx, _filtered(ctx, items))


def delete_group(ctx: Ctx, rg: str) -> Resp:
    with ctx.store.lock:
        rec = ctx.store.groups.get(rg.lower())
        if rec is None:
            raise rg_not_found(rg)
        if rec["meta"].get("op") and rec["body"]["properties"]["provisioningState"] == "Deleting":
            op = ctx.ops.get(rec["meta"]["op"])
        else:
            rec["body"]["properties"]["provisioningState"] = "Deleting"
            blocked = ctx.faults.lro_failure("DELETE", RG_TYPE, rec["body"]["id"])
            op = ctx.ops.start(provider="Microsoft.Resources", location=rec["body"]["location"],
                               resource_id=rec["body"]["id"], latency=ctx.latency(RG_TYPE, "DELETE"),
                               work=lambda: purge_group(ctx, rg, blocked))
            rec["meta"]["op"] = op["name"]
            ctx.store.mark_dirty(group=rg)
    url = (f"{ctx.base_url}/subscriptions/{ctx.sub}/operationresults/{op['name']}"
           f"?api-version={quote(ctx.api_version)}")
    return Resp(202, None, {"Location": url, **timing.retry_after(ctx.config, "group_delete")})


def purge_group(ctx: Ctx, rg: str, blocked: ArmError | None = None) -> None:
    """Remove everything in the group (children before what they hold), then the group itself.

    `blocked` (an injected fault) makes the deletion fail as Azure's does when a resource cannot be deleted: what
    came before the blocker is gone, the blocker stays, the group rolls back to Succeeded, and the operation ends
    with 409 ResourceGroupDeletionBlocked naming the blocker (its own error in `details`)."""
    def rank(rec: dict) -> int:
        kind = rec["body"]["type"].lower()
        return PURGE_ORDER.index(kind) if kind in PURGE_ORDER else len(PURGE_ORDER)

    with ctx.store.lock:
        records = sorted(ctx.store.in_group(rg), key=rank)
    blocker = records.pop() if blocked is not None and records else None
    for rec in records:
        hook = PURGE_HOOKS.get(rec["body"]["type"].lower())
        if hook:
            hook(ctx, rec)
        ctx.store.delete(rec["body"]["id"])
    if blocked is not None:
        raise _rollback(ctx, rg, blocked, blocker)
    with ctx.store.lock:
        ctx.store.groups.pop(rg.lower(), None)
        ctx.store.mark_dirty(group=rg)


def _rollback(ctx: Ctx, rg: str, cause: ArmError, blocker: dict | None) -> ArmError:
    with ctx.store.lock:
        rec = ctx.store.groups.get(rg.lower())
        name = rec["body"]["name"] if rec else rg
        if rec is not None:
            rec["body"]["properties"]["provisioningState"] = "Succeeded"
            ctx.store.mark_dirty(group=rg)
    inner = json.dumps({"error": {"code": cause.code, "message": cause.message}})
    what = ""
    details = []
    if blocker is not None:
        body = blocker["body"]
        what = f" as resources with identifiers '{body['type']}/{body['name']}' could not be deleted"
        details = [{"target": body["id"], "message": inner}]
    return ArmError(409, "ResourceGroupDeletionBlocked",
                    f"Deletion of resource group '{name}' failed{what}. The provisioning state of the resource group "
                    f"will be rolled back. The tracking Id is '{uuid.uuid4()}'. Please check audit logs for more "
                    "details.", details=details)


def own_operation(ctx: Ctx, op_id: str) -> dict:
    """An operation of the request's subscription (another subscription's is not found from here, as on Azure)."""
    op = ctx.ops.get(op_id)
    if op is None or not (op.get("resourceId") or "").lower().startswith(f"/subscriptions/{ctx.sub.lower()}/"):
        raise ArmError(404, "NotFound", f"The operation '{op_id}' could not be found.")
    return op


def operation_result(ctx: Ctx, op_id: str) -> Resp:
    op = own_operation(ctx, op_id)
    group = op.get("provider") == "Microsoft.Resources"
    if op["status"] == "InProgress":
        headers = {"Location": f"{ctx.base_url}{ctx.path}?api-version={quote(ctx.api_version)}",
                   **timing.retry_after(ctx.config, "group_delete" if group else "network_poll")}
        return Resp(202, None, headers)
    if op["status"] == "Failed":
        err = op["error"]
        raise ArmError(409 if group else 400, err["code"], err["message"], err.get("target"),
                       err.get("details") or [], style="arm" if group else "network")
    return Resp(200)


# -- generic resources -----------------------------------------------------------------------------------
_FILTER = re.compile(r"(\w+)\s+eq\s+'([^']*)'", re.I)


def _filtered(ctx: Ctx, items: list[dict]) -> list[dict]:
    text = ctx.query.get("$filter")
    if not text:
        return items
    clauses = {k.lower(): v for k, v in _FILTER.findall(text)}
    if not clauses or set(clauses) - {"tagname", "tagvalue", "resourcetype", "name", "location"}:
        raise ArmError(400, "InvalidFilterInQueryString", f"Invalid $filter '{text}' specified in the query string.")
    out = []
    for body in items:
        tag_map = body.get("tags") or {}
        if "tagname" in clauses:
            name = next((k for k in tag_map if k.lower() == clauses["tagname"].lower()), None)
            if name is None or ("tagvalue" in clauses and tag_map[name] != clauses["tagvalue"]):
                continue
        if "resourcetype" in clauses and body.get("type", "").lower() != clauses["resourcetype"].lower():
            continue
        if "name" in clauses and body.get("name", "").lower() != clauses["name"].lower():
            continue
        if "location" in clauses and body.get("location") != clauses["location"]:
            continue
        out.append(body)
    return out


def _generic(body: dict) -> dict:
    out = {k: body[k] for k in ("id", "name", "type", "location", "tags", "sku", "managedBy") if k in body}
    nested = body.get("type", "").count("/") - 1  # a child resource is listed as parent/child, as ARM lists it
    if nested > 0:
        parts = body["id"].split("/")
        out["name"] = "/".join(parts[-2 * nested - 1::2])
    return out


def list_resources(ctx: Ctx, rg: str | None = None) -> Resp:
    """ARM's generic list (`/resources`, a group's `/resources`). On Azure it is served from a cache that lags
    deletions: a resource whose DELETE has finished (its provider's GET answers 404) can still be listed for a while
    (a known caching issue, Azure/azure-rest-api-specs#21221; terraform's azurerm provider GETs each listed resource
    before calling a group non-empty). `resource_list_lag` (seconds) keeps deleted resources in these lists that
    long; the providers' own lists and GETs never show them."""
    if rg is not None:
        require_group(ctx, rg)
        bodies = [rec["body"] for rec in ctx.store.in_group(rg)]
    else:
        bodies = [rec["body"] for rec in ctx.store.every_resource()]
    bodies += ctx.store.lagging(float(ctx.config.get("resource_list_lag") or 0), rg)
    return page(ctx, _filtered(ctx, [_generic(body) for body in bodies]))


# -- providers ---------------------------------------------------------------------------------------------
def _provider(ctx: Ctx, namespace: str) -> dict:
    canon = next((ns for ns in PROVIDER_TYPES if ns.lower() == namespace.lower()), None)
    if canon is None:
        raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
    regions = list(ctx.catalog["locations"].values())
    return {"id": f"/subscriptions/{ctx.sub}/providers/{canon}", "namespace": canon,
            "registrationState": registration_state(ctx, canon), "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [{"resourceType": t, "locations": [] if t.startswith("operation") else regions,
                               "apiVersions": [ctx.api_version or "2025-04-01"]} for t in PROVIDER_TYPES[canon]]}


# -- provider registration -------------------------------------------------------------------------------------
# A new subscription has most resource providers unregistered: ARM answers 409 MissingSubscriptionRegistration to
# every request for their resource types until POST .../providers/{ns}/register, after which the provider is
# Registering for a while, then Registered. Knobs: `unregistered_providers` (namespaces), `registration_seconds`.
_NS_PATH = re.compile(r"/subscriptions/[^/]+(?:/resourcegroups/[^/]+)?/providers/([^/]+)/(.+)", re.I)


def registration_state(ctx: Ctx, namespace: str) -> str:
    low = namespace.lower()
    unregistered = {n.lower() for n in ctx.config.get("unregistered_providers") or []}
    registering = ctx.config.setdefault("_registering", {})
    if low in registering:
        if time.time() < registering[low]:
            return "Registering"
        registering.pop(low)
        ctx.config["unregistered_providers"] = [n for n in ctx.config.get("unregistered_providers") or []
                                                if n.lower() != low]
        return "Registered"
    return "NotRegistered" if low in unregistered else "Registered"


def require_registered(ctx: Ctx) -> None:
    """409 MissingSubscriptionRegistration for a request to a resource type of an unregistered provider."""
    m = _NS_PATH.fullmatch(ctx.path)
    if m is None or not ctx.config.get("unregistered_providers") or m.group(2).lower() == "register":
        return
    canon = next((ns for ns in PROVIDER_TYPES if ns.lower() == m.group(1).lower()), m.group(1))
    if registration_state(ctx, canon) != "Registered":
        message = (f"The subscription is not registered to use namespace '{canon}'. See "
                   "https://aka.ms/rps-not-found for how to register subscriptions.")
        raise ArmError(409, "MissingSubscriptionRegistration", message,
                       details=[{"code": "MissingSubscriptionRegistration", "target": canon, "message": message}])


def register_provider(ctx: Ctx, namespace: str) -> Resp:
    body = _provider(ctx, namespace)
    if body["registrationState"] != "Registered":
        ctx.config.setdefault("_registering", {}).setdefault(
            body["namespace"].lower(), time.time() + float(ctx.config.get("registration_seconds", 2)))
        body = _provider(ctx, namespace)
    return Resp(200, body)


def get_provider(ctx: Ctx, namespace: str) -> Resp:
    return Resp(200, _provider(ctx, namespace))


def list_providers(ctx: Ctx) -> Resp:
    return page(ctx, [_provider(ctx, ns) for ns in PROVIDER_TYPES])
