"""What the Microsoft.Network resource types share: PUT/GET/DELETE/list with Azure's LRO shape (201/200 +
Azure-AsyncOperation, 202 + Location on delete, 204 for a missing resource), nested child resources
(subnets, security rules) kept inside their parent as ARM returns them, and back-references."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flwrazure.localcloud.arm.common import (
    Ctx,
    Resp,
    async_headers,
    clone,
    location,
    page,
    provisioning_state,
    require_group,
    rid,
    same_location,
    set_state,
    tags,
)
from flwrazure.localcloud.arm.conflicts import IN_PROGRESS, operation_name
from flwrazure.localcloud.arm.errors import ArmError, not_found
from flwrazure.localcloud.arm.store import group_of, name_of

NS = "Microsoft.Network"
CHILD_LISTS = {"subnets": "subnets", "securityrules": "securityRules", "defaultsecurityrules": "defaultSecurityRules",
               "ipconfigurations": "ipConfigurations"}


def split_child(ref: str) -> tuple[str, str, str] | None:
    """'/…/virtualNetworks/v/subnets/s' -> (parent id, list key, child name)."""
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 11 and parts[-2].lower() in CHILD_LISTS:
        return "/".join(parts[:-2]), CHILD_LISTS[parts[-2].lower()], parts[-1]
    return None


def locate(ctx: Ctx, ref: str) -> dict | None:
    """The body of a top-level resource or of a child inside its parent; None when absent."""
    if not isinstance(ref, str) or not ref.startswith("/subscriptions/"):
        return None
    child = split_child(ref)
    if child is None:
        rec = ctx.store.get(ref)
        return rec["body"] if rec else None
    parent = ctx.store.get(child[0])
    if parent is None:
        return None
    return next((c for c in parent["body"]["properties"].get(child[1], [])
                 if c["name"].lower() == child[2].lower()), None)


def link(ctx: Ctx, target: str, field: str, ref: str, add: bool, single: bool = False) -> None:
    """Maintain a back-reference (subnet.ipConfigurations, publicIP.ipConfiguration, …) on `target`."""
    body = locate(ctx, target)
    if body is None:
        return
    props = body.setdefault("properties", {})
    if single:
        if add:
            props[field] = {"id": ref}
        elif props.get(field, {}).get("id", "").lower() == ref.lower():
            props.pop(field, None)
    else:
        refs = [r for r in props.get(field, []) if r["id"].lower() != ref.lower()]
        if add:
            refs.append({"id": ref})
        if refs:
            props[field] = refs
        else:
            props.pop(field, None)
    ctx.store.mark_dirty(resource=(split_child(target) or (target,))[0])


def reference(ctx: Ctx, ref_obj, referrer: str, kind: str) -> str:
    """Check that `{"id": …}` points at an existing resource of `kind` (e.g. 'virtualNetworks/subnets')."""
    ref = (ref_obj or {}).get("id") if isinstance(ref_obj, dict) else None
    want = kind.split("/")
    parts = (ref or "").rstrip("/").split("/")
    ok_shape = ref and len(parts) >= 9 and [p.lower() for p in parts[-2 * len(want)::2]] == [w.lower() for w in want]
    if not ok_shape:
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request.", details=[{
            "code": "InvalidJsonReferenceFormat",
            "message": f"Reference Id {ref} is not formatted correctly. The Id is expected to reference resources "
                       f"of type {kind}."}])
    if locate(ctx, ref) is None:
        from flwrazure.localcloud.arm.errors import invalid_reference

        raise invalid_reference(ref, referrer)
    return ref


def notify(ctx: Ctx) -> None:
    """Rules or associations changed: the host driver re-applies packet filters (takes effect at once)."""
    ctx.driver.network_changed(ctx)


def new_guid() -> str:
    return str(uuid.uuid4())


def put(ctx: Ctx, arm_type: str, rg: str, name: str, build: Callable[[str, dict | None, str], dict],
        validate_name: Callable[[str, str], None], initial_state: str = "Updating",
        work: Callable[[str], None] | None = None, retry: str = "network_put") -> Resp:
    """PUT of a top-level network resource: validate, store in its initial state (Azure: Updating, a NIC already
    Succeeded), finish as an LRO that runs `work(resource id)` first."""
    require_group(ctx, rg, for_write=True)
    validate_name(name, arm_type)
    canon_rg = ctx.store.groups[rg.lower()]["body"]["name"]
    rid_ = rid(ctx.sub, canon_rg, arm_type, name)
    body_in = ctx.body or {}
    loc = location(ctx, body_in.get("location"), arm_type)
    with ctx.store.lock:
        existing = ctx.store.get(rid_)
        same_location(existing, loc, name, canon_rg)
        if existing and provisioning_state(existing) == "Deleting":
            raise ArmError(409, "AnotherOperationInProgress",
                           f"Another operation on this or dependent resource is in progress. To retrieve status of "
                           f"the operation use uri: {rid_}.")
        body = build(rid_, clone(existing["body"]) if existing else None, loc)
        updated = [rid_] + [s["id"] for s in body["properties"].get("subnets", [])]
        ctx.claim(updated, operation_name("Put", arm_type), IN_PROGRESS, loc, ctx.latency(arm_type),
                  extend=arm_type != "Microsoft.Network/networkInterfaces")
        body.update({"name": name, "id": rid_, "type": arm_type, "location": loc})
        tag = tags(body_in)
        if tag:
            body["tags"] = tag
        else:
            body.pop("tags", None)
        body["etag"] = f'W/"{new_guid()}"'
        body["properties"]["provisioningState"] = initial_state
        ctx.store.put(rid_, body)
        response = clone(body)
    op = start_op(ctx, arm_type, rid_, loc, (lambda: work(rid_)) if work else None,
                  "UPDATE" if existing else "PUT")
    return Resp(200 if existing else 201, response, async_headers(ctx, NS, loc, op, retry=retry))


def start_op(ctx: Ctx, arm_type: str, rid_: str, loc: str, work: Callable[[], None] | None = None,
             operation: str = "PUT") -> dict:
    def finish() -> None:
        if work:
            work()
        set_state(ctx, rid_, "Succeeded")
        notify(ctx)
        # children created with the parent follow it
        with ctx.store.lock:
            rec = ctx.store.get(rid_)
            for key in ("subnets", "securityRules"):
                for child in (rec["body"]["properties"].get(key, []) if rec else []):
                    child["properties"]["provisioningState"] = "Succeeded"

    return ctx.ops.start(provider=NS, location=loc, resource_id=rid_, latency=ctx.latency(arm_type, operation),
                         work=finish,
                         on_fail=lambda exc: set_state(ctx, rid_, "Failed"),
                         fail_with=ctx.faults.lro_failure(ctx.method, arm_type, rid_))


def get(ctx: Ctx, arm_type: str, rg: str, name: str) -> Resp:
    require_group(ctx, rg)
    rec = ctx.store.get(rid(ctx.sub, rg, arm_type, name))
    if rec is None:
        raise not_found(arm_type, name, rg)
    return Resp(200, rec["body"])


def list_(ctx: Ctx, arm_type: str, rg: str | None) -> Resp:
    if rg is not None:
        require_group(ctx, rg)
    return page(ctx, [rec["body"] for rec in ctx.store.of_type(arm_type, rg)])


def delete(ctx: Ctx, arm_type: str, rg: str, name: str, check: Callable[[dict], None],
           cleanup: Callable[[dict], None]) -> Resp:
    """DELETE: 204 when absent; in-use checks (400, Azure's codes); else 202 and finish as an LRO."""
    require_group(ctx, rg)
    rid_ = rid(ctx.sub, rg, arm_type, name)
    with ctx.store.lock:
        rec = ctx.store.get(rid_)
        if rec is None:
            return Resp(204)
        check(rec["body"])
        rec["body"]["properties"]["provisioningState"] = "Deleting"
        ctx.store.mark_dirty(resource=rid_)
        loc = rec["body"]["location"]

    def finish() -> None:
        with ctx.store.lock:
            current = ctx.store.get(rid_)
            if current is not None:
                cleanup(current["body"])
                ctx.store.delete(rid_)
        notify(ctx)

    op = ctx.ops.start(provider=NS, location=loc, resource_id=rid_, latency=ctx.latency(arm_type, "DELETE"),
                       work=finish, on_fail=lambda exc: set_state(ctx, rid_, "Failed"),
                       fail_with=ctx.faults.lro_failure("DELETE", arm_type, rid_))
    return Resp(202, None, async_headers(ctx, NS, loc, op, with_location=True))


# -- children (subnets, security rules) ------------------------------------------------------------------
def parent_or_404(ctx: Ctx, parent_type: str, rg: str, parent: str) -> dict:
    require_group(ctx, rg)
    rec = ctx.store.get(rid(ctx.sub, rg, parent_type, parent))
    if rec is None:
        raise not_found(parent_type, parent, rg)
    return rec


def child_get(ctx: Ctx, parent_type: str, key: str, rg: str, parent: str, name: str) -> Resp:
    rec = parent_or_404(ctx, parent_type, rg, parent)
    child = next((c for c in rec["body"]["properties"].get(key, []) if c["name"].lower() == name.lower()), None)
    if child is None:
        raise ArmError(404, "NotFound", f"Resource {rec['body']['id']}/{key}/{name} not found.")
    return Resp(200, child)


def child_list(ctx: Ctx, parent_type: str, key: str, rg: str, parent: str) -> Resp:
    rec = parent_or_404(ctx, parent_type, rg, parent)
    return page(ctx, list(rec["body"]["properties"].get(key, [])))


def child_put(ctx: Ctx, parent_type: str, key: str, child_type: str, rg: str, parent: str, name: str,
              build: Callable[[dict, str, dict | None], dict], validate_name: Callable[[str, str], None]) -> Resp:
    require_group(ctx, rg, for_write=True)
    validate_name(name, child_type)
    with ctx.store.lock:
        rec = parent_or_404(ctx, parent_type, rg, parent)
        items = rec["body"]["properties"].setdefault(key, [])
        existing = next((c for c in items if c["name"].lower() == name.lower()), None)
        child_id = f"{rec['body']['id']}/{key}/{existing['name'] if existing else name}"
        child = build(rec["body"], child_id, clone(existing) if existing else None)
        ctx.claim([rec["body"]["id"], child_id], operation_name("Put", child_type), IN_PROGRESS,
                  rec["body"]["location"], ctx.latency(child_type))
        child.update({"name": existing["name"] if existing else name, "id": child_id, "type": child_type,
                      "etag": f'W/"{new_guid()}"'})
        child["properties"]["provisioningState"] = "Updating"
        if existing:
            items[items.index(existing)] = child
        else:
            items.append(child)
        ctx.store.mark_dirty(resource=rec["body"]["id"])
        loc, response = rec["body"]["location"], clone(child)

    def finish() -> None:
        with ctx.store.lock:
            body = locate(ctx, child_id)
            if body is not None:
                body["properties"]["provisioningState"] = "Succeeded"
                ctx.store.mark_dirty(resource=split_child(child_id)[0])
        notify(ctx)

    op = ctx.ops.start(provider=NS, location=loc, resource_id=child_id,
                       latency=ctx.latency(child_type, "UPDATE" if existing else "PUT"),
                       work=finish, fail_with=ctx.faults.lro_failure(ctx.method, child_type, child_id))
    return Resp(200 if existing else 201, response, async_headers(ctx, NS, loc, op))


def child_delete(ctx: Ctx, parent_type: str, key: str, child_type: str, rg: str, parent: str, name: str,
                 check: Callable[[dict], None], cleanup: Callable[[dict], None]) -> Resp:
    with ctx.store.lock:
        rec = parent_or_404(ctx, parent_type, rg, parent)
        items = rec["body"]["properties"].get(key, [])
        child = next((c for c in items if c["name"].lower() == name.lower()), None)
        if child is None:
            return Resp(204)
        check(child)
        ctx.claim([rec["body"]["id"], child["id"]], operation_name("Delete", child_type), IN_PROGRESS,
                  rec["body"]["location"], ctx.latency(child_type))
        child["properties"]["provisioningState"] = "Deleting"
        loc, child_id = rec["body"]["location"], child["id"]

    def finish() -> None:
        with ctx.store.lock:
            parent_rec = ctx.store.get(split_child(child_id)[0])
            if parent_rec is None:
                return
            lst = parent_rec["body"]["properties"].get(key, [])
            for c in [c for c in lst if c["id"].lower() == child_id.lower()]:
                cleanup(c)
                lst.remove(c)
            ctx.store.mark_dirty(resource=parent_rec["body"]["id"])
        notify(ctx)

    op = ctx.ops.start(provider=NS, location=loc, resource_id=child_id, latency=ctx.latency(child_type, "DELETE"),
                       work=finish, fail_with=ctx.faults.lro_failure("DELETE", child_type, child_id))
    return Resp(202, None, async_headers(ctx, NS, loc, op, with_location=True))


def rg_of(ref: str) -> str:
    return group_of(ref)


def short(ref: str) -> str:
    return name_of(ref)
