"""What every resource handler needs: the request context, responses, LRO headers, paging, shared checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from flwrazure.localcloud.arm import catalog as cat
from flwrazure.localcloud.arm import timing
from flwrazure.localcloud.arm.errors import ArmError, rg_not_found
from flwrazure.localcloud.arm.operations import Operations
from flwrazure.localcloud.arm.store import Store


@dataclass
class Resp:
    status: int
    body: dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    """One request, plus the emulator's parts it may touch."""

    method: str
    path: str
    query: dict[str, str]
    body: dict | None
    base_url: str
    sub: str
    store: Store
    ops: Operations
    config: dict
    driver: object
    faults: object
    busy: object = None  # conflicts.Busy: which network resources a write is updating right now

    held: float = 0.0  # this write's claim: its operation lasts at least that long (busy == in progress)

    def claim(self, resource_ids: list[str], operation: str, answer: str, location: str, hold: float = 0.0,
              extend: bool = True) -> None:
        """Refuse this write as Azure's network provider would if another write holds one of these resources.
        With `extend`, this write's own operation lasts as long as its claim, so a client that waits for the
        operation to end finds the resource free again."""
        if self.busy is not None:
            held = self.busy.claim(self.config, self.base_url, self.sub, location, resource_ids, operation, answer,
                                   hold, self.api_version)
            if extend:
                self.held = max(self.held, held)

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    @property
    def catalog(self) -> dict:
        return self.config["catalog"]

    def latency(self, arm_type: str, operation: str = "PUT") -> float:
        """Seconds the operation takes (the latency profile, `latency`, `latency_by_type`, the time scale), and at
        least as long as this write's claim on the resource."""
        return max(timing.duration(self.config, arm_type, operation), self.held)


def rid(sub: str, rg: str, ns_type: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns_type}/{name}"


def require_group(ctx: Ctx, rg: str, for_write: bool = False) -> dict:
    rec = ctx.store.groups.get(rg.lower())
    if rec is None:
        raise rg_not_found(rg)
    if for_write and rec["body"]["properties"]["provisioningState"] == "Deleting":
        raise ArmError(409, "ResourceGroupBeingDeleted",
                       f"The resource group '{rec['body']['name']}' is in deprovisioning state and cannot perform "
                       "this operation.")
    return rec


def location(ctx: Ctx, value: str | None, arm_type: str) -> str:
    if not value:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    loc = cat.normalize_location(ctx.catalog, value)
    if loc is None:
        allowed = ",".join(ctx.catalog["locations"].values())
        raise ArmError(400, "LocationNotAvailableForResourceType",
                       f"The provided location '{value}' is not available for resource type '{arm_type}'. "
                       f"List of available regions for the resource type is '{allowed.lower()}'.")
    return loc


def same_location(existing: dict | None, loc: str, name: str, rg: str) -> None:
    if existing and existing["body"].get("location") != loc:
        raise ArmError(400, "InvalidResourceLocation",
                       f"The resource '{name}' already exists in location '{existing['body']['location']}' in "
                       f"resource group '{rg}'. A resource with the same name cannot be created in location "
                       f"'{loc}'. Please select a new resource name.")


def tags(body: dict) -> dict:
    value = body.get("tags") or {}
    if not isinstance(value, dict) or len(value) > 50:
        raise ArmError(400, "InvalidTag", "The tags must be an object of at most 50 name/value pairs.")
    for key, val in value.items():
        if len(key) > 512 or len(str(val)) > 256 or any(c in key for c in "<>%&\\?/"):
            raise ArmError(400, "InvalidTagNameCharacters",
                           f"The tag names '{key}' have reserved characters '<,>,%,&,\\,?,/' or control "
                           "characters.")
    return dict(value)


def async_headers(ctx: Ctx, namespace: str, loc: str, op: dict, with_location: bool = False,
                  retry: str | None = None) -> dict[str, str]:
    """The LRO headers each provider sends (recordings): Microsoft.Network: Azure-AsyncOperation on PUT, plus a
    Location to operationResults on DELETE; Microsoft.Compute: an Azure-AsyncOperation URL carrying `p=`, plus the
    same URL with `monitor=true` as Location on POST actions and DELETE. Both add Azure-AsyncNotification and the
    profile's Retry-After (`retry` names it, see timing.AZURE_RETRY_AFTER)."""
    base = f"{ctx.base_url}/subscriptions/{ctx.sub}/providers/{namespace}/locations/{loc}"
    api = quote(ctx.api_version)
    headers = {"Azure-AsyncNotification": "Enabled"}
    if namespace == "Microsoft.Compute":
        url = f"{base}/operations/{op['name']}?p={op['p']}&api-version={api}"
        headers["Azure-AsyncOperation"] = url
        if with_location:
            headers["Location"] = url.replace("&api-version=", "&monitor=true&api-version=")
    else:
        headers["Azure-AsyncOperation"] = f"{base}/operations/{op['name']}?api-version={api}"
        if with_location:
            headers["Location"] = f"{base}/operationResults/{op['name']}?api-version={api}"
    if retry is None:
        retry = ("compute_write" if namespace == "Microsoft.Compute" else
                 "network_delete" if with_location else "network_put")
    headers.update(timing.retry_after(ctx.config, retry))
    return headers


def page(ctx: Ctx, items: list[dict]) -> Resp:
    """ARM list paging: `value` plus a `nextLink` (with api-version) while more remain."""
    size = int(ctx.config.get("page_size", 100))
    start = int(ctx.query.get("$skiptoken", "0") or 0)
    chunk = items[start:start + size]
    body: dict = {"value": chunk}
    if start + size < len(items):
        body["nextLink"] = (f"{ctx.base_url}{ctx.path}?api-version={quote(ctx.api_version)}"
                            f"&$skiptoken={start + size}")
    return Resp(200, body)


def clone(obj):
    return json.loads(json.dumps(obj))


def provisioning_state(rec: dict) -> str:
    return rec["body"].get("properties", {}).get("provisioningState", "Succeeded")


def set_state(ctx: Ctx, rid_: str, state: str) -> None:
    with ctx.store.lock:
        rec = ctx.store.get(rid_)
        if rec is not None:
            rec["body"].setdefault("properties", {})["provisioningState"] = state
            ctx.store.mark_dirty(resource=rid_)
