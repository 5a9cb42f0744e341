"""publicIPAddresses: Standard/Static by default (Basic is retired), an address from the local cloud's public
range, the per-region count quota, and Azure's refusal to delete an address still attached to a NIC or a NAT
gateway (`ipConfiguration` / `natGateway`, read-only back-references)."""

from __future__ import annotations

import ipaddress

from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm import quota, validate
from flwrazure.localcloud.arm.common import Ctx, Resp
from flwrazure.localcloud.arm.errors import ArmError

PIP = "Microsoft.Network/publicIPAddresses"
PUBLIC_RANGE = ipaddress.ip_network("198.18.0.0/15")  # benchmarking range, never routed on the internet
SKUS = {"standard": "Standard", "basic": "Basic", "standardv2": "StandardV2"}
# TCP idle timeout of flows through the address: 4 minutes unless set, 4..30 accepted (Azure's documented range;
# the message is the one Azure returns for 32 in a public report, the code name is ours: the report omits it)
IDLE_DEFAULT, IDLE_MIN, IDLE_MAX = 4, 4, 30
METHODS = {"static": "Static", "dynamic": "Dynamic"}


def _allocate(ctx: Ctx) -> str:
    """The lowest free address of the public range past the offset (none ending in .0 or .255), among those of
    every subscription: the public range is the internet all tenants share. Integers, not
    ipaddress objects: walking the range as objects cost a millisecond per PUT with a hundred addresses taken."""
    used = {int(ipaddress.ip_address(a)) for rec in ctx.store.all_of_type(PIP)
            if (a := rec["body"]["properties"].get("ipAddress"))}
    base = int(PUBLIC_RANGE.network_address)
    for value in range(base + int(ctx.config.get("public_ip_offset", 10)), int(PUBLIC_RANGE.broadcast_address)):
        if value not in used and value & 0xFF not in (0, 255):
            return str(ipaddress.ip_address(value))
    raise ArmError(409, "PublicIPCountLimitReached", "The local cloud's public address range is exhausted.")


def put_pip(ctx: Ctx, rg: str, name: str) -> Resp:
    def build(rid_: str, existing: dict | None, loc: str) -> dict:
        body_in = ctx.body or {}
        props_in = body_in.get("properties") or {}
        sku = validate.enum((body_in.get("sku") or {}).get("name", "Standard"), SKUS, "PublicIPAddressSkuName",
                            "sku.name")
        method = validate.enum(props_in.get("publicIPAllocationMethod", "Static"), METHODS,
                               "IPAllocationMethod", "properties.publicIPAllocationMethod")
        tier = validate.enum((body_in.get("sku") or {}).get("tier", "Regional"), {"regional": "Regional",
                             "global": "Global"}, "PublicIPAddressSkuTier", "sku.tier")
        if sku == "Basic" and tier == "Global":
            raise ArmError(400, "GlobalPublicIPAddressNotSupportedForBasicPublicIpAddress",
                           "Global publicIP addresses are only supported for standard SKU public IP addresses. "
                           f"Public IP address {rid_} is not standard SKU.")
        if sku != "Basic" and method != "Static":
            raise ArmError(400, "StandardSkuPublicIPAddressesMustBeStatic",
                           f"Standard sku publicIp {rid_} must have AllocationMethod set to Static.")
        idle = props_in.get("idleTimeoutInMinutes", IDLE_DEFAULT)
        if isinstance(idle, bool) or not isinstance(idle, int) or not IDLE_MIN <= idle <= IDLE_MAX:
            raise ArmError(400, "PublicIPAddressInvalidIdleTimeout",
                           f"Public IP address {name} has invalid Idle Timeout. The value must be between "
                           f"{IDLE_MIN} and {IDLE_MAX}.", target="idleTimeoutInMinutes")
        old = (existing or {}).get("properties", {})
        if not existing:
            quota.check_public_ip(ctx, loc, {"sku": {"name": sku}, "properties": {"publicIPAllocationMethod": method}})
        props = {k: v for k, v in props_in.items()
                 if k not in ("provisioningState", "ipAddress", "ipConfiguration", "natGateway")}
        props.update({"publicIPAllocationMethod": method,
                      "publicIPAddressVersion": props_in.get("publicIPAddressVersion", "IPv4"),
                      "idleTimeoutInMinutes": idle,
                      "ipTags": props_in.get("ipTags", []),
                      "resourceGuid": old.get("resourceGuid") or net.new_guid()})
        if old.get("ipAddress") and method == "Static":
            props["ipAddress"] = old["ipAddress"]
        for back in ("ipConfiguration", "natGateway"):  # read-only: what uses the address
            if old.get(back):
                props[back] = old[back]
        out = {"sku": {"name": sku, "tier": tier}, "properties": props}
        if body_in.get("zones"):
            out["zones"] = body_in["zones"]
        return out

    def assign(rid_: str) -> None:
        """Azure: a static address appears once the operation has succeeded, not in the PUT's answer."""
        with ctx.store.lock:
            rec = ctx.store.get(rid_)
            props = rec["body"]["properties"] if rec else {}
            if rec and props.get("publicIPAllocationMethod") == "Static" and not props.get("ipAddress"):
                props["ipAddress"] = _allocate(ctx)
                ctx.store.mark_dirty(resource=rid_)

    return net.put(ctx, PIP, rg, name, build, validate.network_name, work=assign)


def _attached(body: dict) -> None:
    ref = body["properties"].get("ipConfiguration") or body["properties"].get("natGateway")
    if ref:
        raise ArmError(400, "PublicIPAddressCannotBeDeleted",
                       f"Public IP address {body['id']} can not be deleted since it is still allocated to resource "
                       f"{ref['id']}. In order to delete the public IP, disassociate/detach the Public IP address "
                       "from the resource.  To learn how to do this, see aka.ms/deletepublicip.")


def delete_pip(ctx: Ctx, rg: str, name: str) -> Resp:
    return net.delete(ctx, PIP, rg, name, _attached, lambda body: None)
