"""The ARM application: one function from (method, path, headers, body) to a response. Authentication, the
request log, fault injection, routing, and ARM's response headers live here; resource logic lives in the
resource modules. The HTTPS server (localcloud.server) only moves bytes."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from urllib.parse import parse_qsl, quote, urlsplit

from flwrazure.localcloud.arm import (
    access,
    cloudmeta,
    extensions,
    groups,
    natgateways,
    nics,
    nsgs,
    pips,
    prices,
    quota,
    timing,
    vms,
    vnets,
)
from flwrazure.localcloud.arm import catalog as cat
from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm.common import Ctx, Resp
from flwrazure.localcloud.arm.conflicts import Busy
from flwrazure.localcloud.arm.errors import ArmError, render
from flwrazure.localcloud.arm.faults import Faults
from flwrazure.localcloud.arm.operations import Operations
from flwrazure.localcloud.arm.store import Scoped, Store
from flwrazure.localcloud.arm.throttle import Throttle
from flwrazure.localcloud.hosts import NullDriver
from flwrazure.localcloud.identity import DEFAULT, Directory, Identity, Principal

S = r"/subscriptions/(?P<sub>[^/]+)"
RG = S + r"/resourcegroups/(?P<rg>[^/]+)"
NW = RG + r"/providers/microsoft\.network"
CP = RG + r"/providers/microsoft\.compute"
N = r"(?P<name>[^/]+)"
_API = re.compile(r"\d{4}-\d{2}-\d{2}(-preview|-beta)?")
TOP_NETWORK = {"virtualnetworks": (vnets.VNET, vnets.put_vnet, vnets.delete_vnet),
               "networksecuritygroups": (nsgs.NSG, nsgs.put_nsg, nsgs.delete_nsg),
               "publicipaddresses": (pips.PIP, pips.put_pip, pips.delete_pip),
               "networkinterfaces": (nics.NIC, nics.put_nic, nics.delete_nic),
               "natgateways": (natgateways.NAT, natgateways.put_nat, natgateways.delete_nat)}
T = "(?P<type>virtualnetworks|networksecuritygroups|publicipaddresses|networkinterfaces|natgateways)"


def _op_status(ctx: Ctx, ns: str, loc: str, op_id: str) -> Resp:
    """An Azure-AsyncOperation status monitor, in its provider's shape (recordings): the network provider answers
    {"status"} (plus error), Compute {startTime, status, name} (plus endTime, error); Retry-After only while
    InProgress: 10 s on network polls, on Compute's first poll only (50 s for a VM create, else 30 s)."""
    op = groups.own_operation(ctx, op_id)
    compute = ns.lower() == "microsoft.compute"
    if compute and ctx.query.get("monitor") == "true":  # Compute's Location: 202 while running, then 200, empty
        if op["status"] == "InProgress":
            return Resp(202, None, {"Location": f"{ctx.base_url}{ctx.path}?p={op.get('p', '')}&monitor=true"
                                                f"&api-version={quote(ctx.api_version)}",
                                    **timing.retry_after(ctx.config, "compute_write")})
        return Resp(200)
    with ctx.store.lock:
        op["polls"] = op.get("polls", 0) + 1
        first = op["polls"] == 1
    headers: dict[str, str] = {}
    if compute:
        body = {"startTime": op["startTime"], "status": op["status"], "name": op["name"]}
        if "endTime" in op:
            body["endTime"] = op["endTime"]
        if op["status"] == "InProgress" and first:
            headers = timing.retry_after(ctx.config, "compute_first_poll_create" if op.get("create")
                                         else "compute_first_poll")
    else:
        body = {"status": op["status"]}
        if op["status"] == "InProgress":
            headers = timing.retry_after(ctx.config, "network_poll")
    if "error" in op:
        err = op["error"]
        body["error"] = render(err["code"], err["message"], err.get("target"), err.get("details") or [],
                               "compute" if compute else "network")
    return Resp(200, body, headers)


def _op_result(ctx: Ctx, ns: str, loc: str, op_id: str) -> Resp:
    return groups.operation_result(ctx, op_id)


ROUTES: list[tuple[str, re.Pattern, object]] = [(m, re.compile(p, re.I), h) for m, p, h in [
    ("GET", S + r"/resourcegroups", lambda c: groups.list_groups(c)),
    ("PUT", RG, lambda c, rg: groups.put_group(c, rg)),
    ("PATCH", RG, lambda c, rg: groups.patch_group(c, rg)),
    ("GET", RG, lambda c, rg: groups.get_group(c, rg)),
    ("HEAD", RG, lambda c, rg: groups.head_group(c, rg)),
    ("DELETE", RG, lambda c, rg: groups.delete_group(c, rg)),
    ("GET", RG + r"/resources", lambda c, rg: groups.list_resources(c, rg)),
    ("GET", S + r"/resources", lambda c: groups.list_resources(c)),
    ("GET", S + r"/operationresults/(?P<op>[^/]+)", lambda c, op: groups.operation_result(c, op)),
    ("GET", S + r"/providers", lambda c: groups.list_providers(c)),
    ("GET", S + r"/providers/(?P<ns>microsoft\.(compute|network))/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)",
     lambda c, ns, loc, op: _op_status(c, ns, loc, op)),
    ("GET", S + r"/providers/(?P<ns>microsoft\.(compute|network))/locations/(?P<loc>[^/]+)/operationresults/(?P<op>[^/]+)",
     lambda c, ns, loc, op: _op_result(c, ns, loc, op)),
    ("GET", S + r"/providers/microsoft\.compute/locations/(?P<loc>[^/]+)/usages", lambda c, loc: quota.compute_usages(c, loc)),
    ("GET", S + r"/providers/microsoft\.network/locations/(?P<loc>[^/]+)/usages", lambda c, loc: quota.network_usages(c, loc)),
    ("GET", S + r"/providers/microsoft\.compute/skus", lambda c: quota.skus(c)),
    ("GET", S + r"/providers/(?P<ns>[^/]+)", lambda c, ns: groups.get_provider(c, ns)),
    ("POST", S + r"/providers/(?P<ns>[^/]+)/register", lambda c, ns: groups.register_provider(c, ns)),
    # Microsoft.Network
    ("PUT", NW + "/" + T + "/" + N, lambda c, rg, type, name: TOP_NETWORK[type.lower()][1](c, rg, name)),
    ("GET", NW + "/" + T + "/" + N, lambda c, rg, type, name: net.get(c, TOP_NETWORK[type.lower()][0], rg, name)),
    ("DELETE", NW + "/" + T + "/" + N, lambda c, rg, type, name: TOP_NETWORK[type.lower()][2](c, rg, name)),
    ("GET", NW + "/" + T, lambda c, rg, type: net.list_(c, TOP_NETWORK[type.lower()][0], rg)),
    ("GET", S + r"/providers/microsoft\.network/" + T, lambda c, type: net.list_(c, TOP_NETWORK[type.lower()][0], None)),
    ("PUT", NW + r"/virtualnetworks/(?P<p>[^/]+)/subnets/" + N, lambda c, rg, p, name: vnets.put_subnet(c, rg, p, name)),
    ("GET", NW + r"/virtualnetworks/(?P<p>[^/]+)/subnets/" + N,
     lambda c, rg, p, name: net.child_get(c, vnets.VNET, "subnets", rg, p, name)),
    ("DELETE", NW + r"/virtualnetworks/(?P<p>[^/]+)/subnets/" + N, lambda c, rg, p, name: vnets.delete_subnet(c, rg, p, name)),
    ("GET", NW + r"/virtualnetworks/(?P<p>[^/]+)/subnets", lambda c, rg, p: net.child_list(c, vnets.VNET, "subnets", rg, p)),
    ("PUT", NW + r"/networksecuritygroups/(?P<p>[^/]+)/securityrules/" + N, lambda c, rg, p, name: nsgs.put_rule(c, rg, p, name)),
    ("GET", NW + r"/networksecuritygroups/(?P<p>[^/]+)/securityrules/" + N,
     lambda c, rg, p, name: net.child_get(c, nsgs.NSG, "securityRules", rg, p, name)),
    ("DELETE", NW + r"/networksecuritygroups/(?P<p>[^/]+)/securityrules/" + N,
     lambda c, rg, p, name: nsgs.delete_rule(c, rg, p, name)),
    ("GET", NW + r"/networksecuritygroups/(?P<p>[^/]+)/securityrules",
     lambda c, rg, p: net.child_list(c, nsgs.NSG, "securityRules", rg, p)),
    ("GET", NW + r"/networksecuritygroups/(?P<p>[^/]+)/defaultsecurityrules/" + N,
     lambda c, rg, p, name: net.child_get(c, nsgs.NSG, "defaultSecurityRules", rg, p, name)),
    ("GET", NW + r"/networksecuritygroups/(?P<p>[^/]+)/defaultsecurityrules",
     lambda c, rg, p: net.child_list(c, nsgs.NSG, "defaultSecurityRules", rg, p)),
    # Microsoft.Compute
    ("PUT", CP + r"/virtualmachines/" + N, lambda c, rg, name: vms.put_vm(c, rg, name)),
    ("GET", CP + r"/virtualmachines/" + N, lambda c, rg, name: vms.get_vm(c, rg, name)),
    ("DELETE", CP + r"/virtualmachines/" + N, lambda c, rg, name: vms.delete_vm(c, rg, name)),
    ("GET", CP + r"/virtualmachines/" + N + "/instanceview", lambda c, rg, name: vms.get_instance_view(c, rg, name)),
    ("GET", CP + r"/virtualmachines/" + N + r"/extensions/(?P<ext>[^/]+)",
     lambda c, rg, name, ext: extensions.get(c, rg, name, ext)),
    ("GET", CP + r"/virtualmachines/" + N + r"/extensions",
     lambda c, rg, name: extensions.list_(c, rg, name)),
    ("POST", CP + r"/virtualmachines/" + N + "/(?P<verb>start|deallocate|poweroff|restart)",
     lambda c, rg, name, verb: vms.action(c, rg, name, verb)),
    ("GET", CP + r"/virtualmachines", lambda c, rg: vms.list_vms(c, rg)),
    ("GET", S + r"/providers/microsoft\.compute/virtualmachines", lambda c: vms.list_vms(c, None)),
    ("GET", CP + r"/disks/" + N, lambda c, rg, name: vms.get_disk(c, rg, name)),
    ("DELETE", CP + r"/disks/" + N, lambda c, rg, name: vms.delete_disk(c, rg, name)),
    ("GET", CP + r"/disks", lambda c, rg: vms.list_disks(c, rg)),
    ("GET", S + r"/providers/microsoft\.compute/disks", lambda c: vms.list_disks(c, None)),
]]

groups.PURGE_HOOKS["microsoft.compute/virtualmachines"] = lambda ctx, rec: ctx.driver.delete(ctx, rec["body"])
groups.PURGE_HOOKS["microsoft.network/networkinterfaces"] = lambda ctx, rec: nics.unlink_nic(ctx, rec["body"])
groups.PURGE_HOOKS["microsoft.network/natgateways"] = lambda ctx, rec: natgateways.unlink_nat(ctx, rec["body"])

CONFIG_KEYS = {"latency", "latency_by_type", "page_size", "lro_retry_after", "public_ip_offset", "vm_updating",
               "conflicts", "conflict_window", "policy_extensions", "extension_failures",
               "unregistered_providers", "registration_seconds", "echo_address", "profile", "time_scale",
               "throttling", "resource_list_lag"}
OPERATOR_IP = "198.18.0.1"  # the host side of the public range: where VMs see the operator's traffic come from
PROFILES = (None, "none", "azure")


def _style_of(path: str) -> str:
    """Whose error envelope an error without a fixed style gets: the provider named in the path, else ARM's."""
    low = path.lower()
    if "/providers/microsoft.network/" in low:
        return "network"
    if "/providers/microsoft.compute/" in low:
        return "compute"
    return "arm"


class ArmApp:
    """The emulator behind the HTTPS endpoint; tests may also drive it in-process through `handle`."""

    def __init__(self, identity: Identity, store: Store, config: dict | None = None, driver=None,
                 faults: Faults | None = None, directory: Directory | None = None):
        self.identity, self.store = identity, store
        self.directory = directory or Directory(identity)  # every tenant, subscription and principal
        config = dict(config or {})
        self.catalog_overrides = dict(config.get("catalog") or {})
        config["catalog"] = cat.merged(self.catalog_overrides)
        self.config = config
        self.driver = driver or NullDriver()
        self.faults = faults or Faults()
        self.busy = Busy()
        self.ops = Operations(store)
        self.throttle = Throttle()
        self.requests: deque = deque(maxlen=200_000)
        self.base_url = ""
        self.lock = threading.Lock()

    # -- entry point -----------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, bytes]:
        start = time.perf_counter()
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        query = {k.lower(): v for k, v in parse_qsl(url.query, keep_blank_values=True)}
        metered: dict[str, str] = {}
        try:
            resp = self._dispatch(method.upper(), path, query, headers, raw, metered)
        except ArmError as exc:
            style = exc.style or _style_of(path)
            resp = Resp(exc.status, exc.body(style), dict(exc.headers))
            if style == "gateway":
                resp.headers["x-ms-failure-cause"] = "gateway"
                if method.upper() == "HEAD":
                    resp.body = None
        except Exception as exc:  # never a traceback to the client: a 500 with ARM's body
            resp = Resp(500, {"error": {"code": "InternalServerError", "message": f"{type(exc).__name__}: {exc}"}})
        for key, value in metered.items():  # rate-limit headers on every metered answer, errors included
            resp.headers.setdefault(key, value)
        elapsed = time.perf_counter() - start
        if not path.startswith("/_localcloud"):
            self.requests.append({"t": time.time(), "method": method.upper(), "path": path,
                                  "status": resp.status, "ms": round(elapsed * 1000, 3)})
        return self._encode(resp)

    def _encode(self, resp: Resp) -> tuple[int, dict, bytes]:
        headers = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-correlation-request-id": str(uuid.uuid4()),
                   "Cache-Control": "no-cache", **resp.headers}
        data = b""
        if isinstance(resp.body, str):  # plain text (the echo service)
            data = resp.body.encode()
            headers["Content-Type"] = "text/plain; charset=utf-8"
        elif resp.body is not None:
            data = json.dumps(resp.body).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        return resp.status, headers, data

    def _dispatch(self, method: str, path: str, query: dict, headers: dict, raw: bytes, metered: dict) -> Resp:
        low = path.lower()
        if low == "/_localcloud/health":
            return Resp(200, {"status": "ok", "subscription_id": self.identity.subscription_id})
        m = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", path)
        if m and method == "GET":
            return Resp(200, self.identity.openid_configuration(self.base_url, m.group(1)))
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", path)
        if m and method == "POST":
            status, body = self.directory.token_response(m.group(1), dict(parse_qsl(raw.decode())))
            return Resp(status, body)
        if low == "/common/discovery/instance":
            return Resp(200, {"tenant_discovery_endpoint": f"{self.base_url}/common/v2.0/.well-known/openid-configuration",
                              "api-version": "1.1", "metadata": []})
        if low == "/api/retail/prices" and method == "GET":  # Azure's public price list: no authentication
            return prices.retail_prices(self.config["catalog"], self.base_url, query)
        if low == "/_localcloud/echo" and method == "GET":  # an address-echo service, as operators use on Azure
            return Resp(200, str(self.config.get("echo_address") or OPERATOR_IP))
        if low == "/metadata/endpoints" and method == "GET":  # public on ARM: clients read it before signing in
            return Resp(200, cloudmeta.metadata(self.base_url))
        caller, claims = self._authenticate(headers, path)
        if low.startswith("/_localcloud/"):
            if caller.name != DEFAULT:  # the cloud's own knobs and request log: its operator's only
                raise ArmError(403, "AuthorizationFailed", f"The client '{caller.client_id}' with object id "
                               f"'{caller.object_id}' does not have authorization to use the local cloud's admin "
                               f"endpoint '{path}'.", style="gateway")
            return self._admin(method, low, query, raw)
        body = self._json(raw) if method in ("PUT", "PATCH", "POST") and raw else None
        api = query.get("api-version")
        if not api:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if not _API.fullmatch(api):
            raise ArmError(400, "InvalidApiVersionParameter",
                           f"The api-version '{api}' is invalid. The supported versions are 'yyyy-mm-dd'.")
        if low.startswith("/subscriptions/"):
            sub = path.split("/")[2]
            access.check(self.directory, caller, claims.get("iss", ""), sub, method, path, self.base_url)
            # ARM's buckets are per subscription and principal (and Compute's per subscription)
            metered.update(self.throttle.charge(self.config, sub, caller.client_id, method, path))
        fault = self.faults.http_failure(method, path)
        if fault is not None:
            raise fault
        if method == "GET" and low in ("/subscriptions", "/tenants"):  # what the signed-in identity may use
            item = cloudmeta.subscription(caller) if low == "/subscriptions" else cloudmeta.tenant(caller)
            return Resp(200, {"value": [item]})
        if method == "GET" and re.fullmatch(r"/subscriptions/[^/]+", low):  # access.check let it through: its own
            return Resp(200, cloudmeta.subscription(caller))
        for route_method, pattern, handler in ROUTES:
            m = pattern.fullmatch(path)
            if m is None or route_method != method:
                continue
            groups_ = m.groupdict()
            sub = groups_.pop("sub", None)
            ctx = Ctx(method, path, query, body, self.base_url, sub, Scoped(self.store, sub), self.ops, self.config,
                      self.driver, self.faults, self.busy)
            groups.require_registered(ctx)
            return handler(ctx, **groups_)
        if any(p.fullmatch(path) for _, p, _ in ROUTES):
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed for '{path}'.",
                           style="gateway")
        raise ArmError(400, "InvalidResourceType", f"The resource type for path '{path}' could not be found for "
                       f"api version '{api}'.", style="gateway")

    @staticmethod
    def _json(raw: bytes) -> dict:
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be "
                           f"deserialized: '{exc}'.") from None
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body

    def _authenticate(self, headers: dict, path: str) -> tuple[Principal, dict]:
        """The principal the bearer token names, and its claims; else ARM's 401. The challenge names the tenant of
        the subscription in the path when there is one (ARM's way of telling a client where to sign in), else the
        cloud's own."""
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        parts = path.split("/")
        owner = self.directory.by_subscription(parts[2]) if len(parts) > 2 and parts[1].lower() == "subscriptions" \
            else None
        challenge = access.challenge(self.base_url, (owner or self.directory.principals[DEFAULT]).tenant_id,
                                     "The authentication failed")
        if not value:
            raise ArmError(401, "AuthenticationFailed",
                           "Authentication failed. The 'Authorization' header is missing.", headers=challenge)
        if not value.startswith("Bearer "):
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                           "provided in an invalid format.", headers=challenge)
        code, claims = self.directory.verify(value[7:].strip())
        if code == "ExpiredAuthenticationToken":
            raise ArmError(401, code, "The access token expiry UTC time is earlier than current UTC time.",
                           headers=challenge)
        principal = self.directory.by_object(claims.get("oid", "")) if not code else None
        if principal is None or principal.tenant_id != claims.get("tid"):
            raise ArmError(401, code or "InvalidAuthenticationToken", "The access token is invalid.",
                           headers=challenge)
        return principal, claims

    # -- admin: request log, faults, knobs -----------------------------------------------------------------
    def _admin(self, method: str, path: str, query: dict, raw: bytes) -> Resp:
        if path == "/_localcloud/requests":
            if method == "DELETE":
                self.requests.clear()
                return Resp(204)
            since = float(query.get("since", 0))
            return Resp(200, {"value": [r for r in list(self.requests) if r["t"] >= since]})
        if path == "/_localcloud/faults":
            if method == "DELETE":
                self.faults.clear()
                return Resp(204)
            if method in ("POST", "PUT"):
                try:
                    rules = self._json_any(raw)
                    added = [self.faults.add(r) for r in (rules if isinstance(rules, list) else [rules])]
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ArmError(400, "InvalidFault", str(exc)) from None
                return Resp(200, {"value": added})
            return Resp(200, {"value": self.faults.rules})
        if path == "/_localcloud/config":
            if method in ("PATCH", "PUT"):
                change = self._json(raw)
                unknown = set(change) - CONFIG_KEYS - {"catalog"}
                if unknown:
                    raise ArmError(400, "InvalidConfig", f"Unknown settings: {', '.join(sorted(unknown))}.")
                vms.updating_seconds(change)
                extensions.check_config(change.get("policy_extensions"))
                extensions.check_failures(change.get("extension_failures"))
                if change.get("profile", None) not in PROFILES:
                    raise ArmError(400, "InvalidConfig", "profile must be 'azure' or 'none'.")
                if "time_scale" in change and not (isinstance(change["time_scale"], (int, float))
                                                   and 0 < change["time_scale"] <= 100):
                    raise ArmError(400, "InvalidConfig", "time_scale must be a number in (0, 100].")
                if "resource_list_lag" in change and not (isinstance(change["resource_list_lag"], (int, float))
                                                          and change["resource_list_lag"] >= 0):
                    raise ArmError(400, "InvalidConfig", "resource_list_lag must be a number of seconds >= 0.")
                if "throttling" in change:
                    self.throttle.reset()
                with self.lock:
                    for key, value in change.items():
                        if key != "catalog":
                            self.config[key] = value
                        elif method == "PATCH":
                            self.catalog_overrides = cat.deep_merge(self.catalog_overrides, value)
                        else:
                            self.catalog_overrides = dict(value)
                    self.config["catalog"] = cat.merged(self.catalog_overrides)
                admin_ctx = Ctx(method, path, query, None, self.base_url, self.identity.subscription_id,
                                self.store, self.ops, self.config, self.driver, self.faults)
                if change.get("vm_updating"):
                    vms.start_updating_all(admin_ctx)
                if change.get("extension_failures"):
                    extensions.apply_failures(admin_ctx)
            return Resp(200, self.config)
        raise ArmError(404, "NotFound", f"No admin endpoint {path}.")

    @staticmethod
    def _json_any(raw: bytes):
        return json.loads(raw or b"null")

    def close(self) -> None:
        self.ops.shutdown()
        self.driver.close()
        self.store.flush()
