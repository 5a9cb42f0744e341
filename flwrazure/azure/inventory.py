"""What exists in a cluster's resource group, read with one list call per resource kind."""

from __future__ import annotations

from collections.abc import Callable

from flwrazure import workers
from flwrazure.azure.target import Target

KINDS = ("vnet", "nsg", "pip", "nic", "vm")
LABELS = {"nat": "NAT gateway", "vnet": "virtual network", "nsg": "network security group", "pip": "public IP", "nic": "network interface",
          "vm": "virtual machine", "disk": "disk", "rg": "resource group"}


def _as_dicts(pager) -> list[dict]:
    return [item.as_dict() for item in pager]


# The REST API versions flwrazure reads and writes raw JSON with: GA versions Azure serves in every public region;
# the fields read here are stable across them. (Compute's disks and SKUs have API versions of their own.)
NETWORK_API, COMPUTE_API = "2024-05-01", "2024-07-01"
API = {"Microsoft.Network": NETWORK_API, "Microsoft.Compute": COMPUTE_API}

# kind -> (provider type, API version, extra query). Lists are read as raw JSON through the resource client's
# pipeline (ARM routes any resource URL; credential, pacing and retries all apply): the SDK's model round trip cost
# ~0.35 ms of CPU per VM per list, which made waiting for 100 VMs CPU-bound (5.7 s of CPU in a 6 s create-cluster),
# and a command that only reads (teardown, status) need not import the network and compute SDKs (~0.35 s).
_LISTS = {"vnet": ("Microsoft.Network/virtualNetworks", NETWORK_API, {}),
          "nsg": ("Microsoft.Network/networkSecurityGroups", NETWORK_API, {}),
          "pip": ("Microsoft.Network/publicIPAddresses", NETWORK_API, {}),
          "nat": ("Microsoft.Network/natGateways", NETWORK_API, {}),
          "nic": ("Microsoft.Network/networkInterfaces", NETWORK_API, {}),
          "vm": ("Microsoft.Compute/virtualMachines", COMPUTE_API, {}),
          "vmview": ("Microsoft.Compute/virtualMachines", COMPUTE_API, {"$expand": "instanceView"}),
          "disk": ("Microsoft.Compute/disks", "2024-03-02", {})}


def _send(client, request, **kwargs):
    """One request through the client's pipeline, its body read. Streamed, so that the body is decoded once (by
    the caller; the pipeline would decode it too, a cost on big lists) — except when the provider-registration
    policy stepped in (409 MissingSubscriptionRegistration: it registers the provider and reads its own answers,
    which a streamed request leaves unread): then the request is sent again unstreamed."""
    from azure.core.exceptions import ResponseNotReadError

    send = getattr(client, "send_request", None) or client._send_request  # older SDKs: _send_request
    try:
        response = send(request, stream=True, **kwargs)
    except ResponseNotReadError:
        response = send(request, **kwargs)
    response.read()
    return response


def _raise_unless(response, ok: tuple[int, ...]) -> None:
    """An answer outside `ok` raised as the SDK's own operations raise it: ResourceNotFoundError for 404,
    ResourceExistsError for 409, ClientAuthenticationError for 401, else HttpResponseError with ARM's error code."""
    if response.status_code in ok:
        return
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        map_error,
    )
    from azure.mgmt.core.exceptions import ARMErrorFormat

    map_error(response.status_code, response, {401: ClientAuthenticationError, 404: ResourceNotFoundError,
                                                409: ResourceExistsError})
    raise HttpResponseError(response=response, error_format=ARMErrorFormat)


def list_raw(client, path: str, params: dict) -> list[dict]:
    """Every item of an ARM list (following nextLink) as its REST JSON; errors raised as the SDK raises them."""
    from azure.core.rest import HttpRequest

    items: list[dict] = []
    request: HttpRequest | None = HttpRequest("GET", path, params=params)
    while request is not None:
        response = _send(client, request)
        _raise_unless(response, (200,))
        body = response.json()
        items.extend(body.get("value") or [])
        request = HttpRequest("GET", body["nextLink"]) if body.get("nextLink") else None
    return items


def put_raw(client, resource_id: str, body: dict, raw_response_hook=None) -> dict:
    """PUT one resource's REST JSON and return the answer's body, through `client`'s pipeline (credential, pacing,
    retries), without waiting for it to finish (the Waiter does); errors raised as the SDK's own PUTs raise them.
    The SDK's models would cost the same round trip as on lists, and importing the network and compute SDKs
    (~0.4 s of CPU) was in front of create-cluster's first write."""
    from azure.core.rest import HttpRequest

    provider = resource_id.split("/providers/", 1)[1].split("/", 1)[0]
    request = HttpRequest("PUT", resource_id, params={"api-version": API[provider]}, json=body)
    kwargs = {"raw_response_hook": raw_response_hook} if raw_response_hook else {}
    response = _send(client, request, **kwargs)
    _raise_unless(response, (200, 201))
    return response.json() if response.content else {}


def listers(target: Target, rg: str) -> dict[str, Callable[[], list[dict]]]:
    def lister(kind: str) -> Callable[[], list[dict]]:
        rtype, api, extra = _LISTS[kind]
        path = f"/subscriptions/{target.subscription}/resourceGroups/{rg}/providers/{rtype}"
        return lambda: list_raw(target.resources, path, {"api-version": api, **extra})

    return {kind: lister(kind) for kind in _LISTS}


def snapshot(target: Target, rg: str, kinds: tuple[str, ...] = KINDS) -> dict[str, dict[str, dict]]:
    """{kind: {lower-case name: body}} for each kind, read in parallel (one list call each)."""
    fns = listers(target, rg)
    with workers.pool(len(kinds)) as pool:
        results = dict(zip(kinds, pool.map(lambda k: fns[k](), kinds), strict=True))
    return {kind: {item["name"].lower(): item for item in items} for kind, items in results.items()}


def group(target: Target, rg: str) -> dict | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return target.resources.resource_groups.get(rg).as_dict()
    except ResourceNotFoundError:
        return None


def tagged(target: Target, rg: str, cluster: str, cluster_id: str | None) -> list[dict]:
    """What in the cluster's resource group still carries its identity (one filtered list, each entry confirmed by
    its provider's GET: the list lags deletions; a group that is gone holds nothing). Never the whole subscription:
    another cluster of the same name elsewhere is not ours."""
    from azure.core.exceptions import ResourceNotFoundError

    from flwrazure.plan import names

    tag, value = (names.TAG_ID, cluster_id) if cluster_id else (names.TAG_CLUSTER, cluster)
    try:
        found = _as_dicts(target.resources.resources.list_by_resource_group(
            rg, filter=f"tagName eq '{tag}' and tagValue eq '{value}'"))
    except ResourceNotFoundError:
        return []
    return still_there(target, [r for r in found if names.is_ours(r.get("tags"), cluster, cluster_id)])


# API versions for a GET by id, by lower-case resource type (the kinds flwrazure creates and what Azure adds to them)
_GET_API = {"microsoft.compute/disks": _LISTS["disk"][1]}


def _get_api(resource_id: str) -> str | None:
    after = resource_id.split("/providers/", 1)[1].split("/") if "/providers/" in resource_id else []
    rtype = "/".join([after[0], *after[1::2]]).lower() if after else ""
    provider = next((p for p in API if p.lower() == rtype.split("/", 1)[0]), None)
    return _GET_API.get(rtype) or (API[provider] if provider else None)


def still_there(target: Target, items: list[dict]) -> list[dict]:
    """Those of `items` (generic-list entries with an id) that their provider's GET still finds. ARM's generic
    lists (`/resources`) come from a cache that lags deletions (Azure/azure-rest-api-specs#21221): a resource
    deleted moments ago can still be listed while its provider answers 404. A resource of a type whose API version
    flwrazure does not know is kept (it cannot be confirmed gone)."""
    from azure.core.rest import HttpRequest

    def found(item: dict) -> bool:
        api = _get_api(item["id"])
        if api is None:
            return True
        response = _send(target.resources, HttpRequest("GET", item["id"], params={"api-version": api}))
        if response.status_code == 404:
            return False
        _raise_unless(response, (200,))
        return True

    if not items:
        return []
    with workers.pool(min(16, len(items))) as pool:
        return [item for item, there in zip(items, pool.map(found, items), strict=True) if there]


def power_state(vm: dict) -> str:
    """What the VM is doing: its power state (running, deallocated, …), except while it is being created or
    deleted. A running VM whose provisioningState is Updating (an extension that Azure Policy or Defender adds) or
    Failed (e.g. such an extension failed) is running: its Flower services are there to be used."""
    props = vm.get("properties", {})
    statuses = (props.get("instanceView") or {}).get("statuses") or []
    power = next((s["code"].split("/", 1)[1] for s in statuses if s.get("code", "").startswith("PowerState/")), None)
    state = str(props.get("provisioningState", "")).lower()
    if state in ("creating", "deleting") or (power is None and state):
        return state
    return power or "unknown"


def provisioning(vm: dict | None) -> str | None:
    """The VM's provisioningState when it is not Succeeded (updating, failed, …), for display next to the power."""
    state = str(((vm or {}).get("properties") or {}).get("provisioningState", "")).lower()
    return state if state and state != "succeeded" else None


def vm_rows(snap: dict[str, dict[str, dict]], vms: list) -> list[dict]:
    """One row per planned VM: name, role, public IP, private IP, size, state ('missing' when absent)."""
    rows = []
    for v in vms:
        vm = snap.get("vmview", snap.get("vm", {})).get(v.vm.lower())
        nic = snap.get("nic", {}).get(v.nic.lower())
        pip = snap.get("pip", {}).get(v.public_ip.lower())
        private = None
        if nic:
            cfg = nic["properties"]["ipConfigurations"][0]["properties"]
            private = cfg.get("privateIPAddress")
        rows.append({"vm": v.vm, "role": v.role, "public_ip": (pip or {}).get("properties", {}).get("ipAddress"),
                     "private_ip": private,
                     "size": (vm or {}).get("properties", {}).get("hardwareProfile", {}).get("vmSize"),
                     "state": power_state(vm) if vm else "missing", "provisioning": provisioning(vm),
                     "spot": ((vm or {}).get("properties") or {}).get("priority") in ("Spot", "Low")})
    return rows
