"""natGateways: the Standard SKU NAT gateway, its public IPv4 addresses (Standard, static, same region, not used by
anything else), the subnets using it (a read-only back-reference the subnet PUT maintains), and Azure's refusal to
delete one still associated with a subnet.

Evidence: the NatGateway schema of azure-rest-api-specs (network, stable 2025-05-01: sku Standard|StandardV2,
idleTimeoutInMinutes, publicIpAddresses, publicIpPrefixes, read-only subnets, resourceGuid, provisioningState; PUT
final-state-via azure-async-operation, DELETE via location). The idle timeout is 4 minutes unless set and at most
120 (Azure's NAT gateway documentation). Error codes: InUseNatGatewayCannotBeDeleted (the code other Azure emulators
reproduce, in Azure's InUse*CannotBeDeleted family), PublicIPAddressInUse (as for a NIC); the messages are ours,
shaped like Azure's for NSGs and public IPs, and so are the codes NatGatewayInvalidIdleTimeout,
NatGatewayPublicIpAddressSkuNotSupported and NatGatewayPublicIpPrefixesNotSupported (nothing recorded)."""

from __future__ import annotations

from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm import validate
from flwrazure.localcloud.arm.common import Ctx, Resp
from flwrazure.localcloud.arm.errors import ArmError, invalid_reference

NAT = "Microsoft.Network/natGateways"
PIP = "Microsoft.Network/publicIPAddresses"
SKUS = {"standard": "Standard", "standardv2": "StandardV2"}
IDLE_DEFAULT, IDLE_MIN, IDLE_MAX = 4, 4, 120


def _public_ips(ctx: Ctx, rid_: str, loc: str, given) -> list[str]:
    """The ids of the public IPs a NAT gateway PUT names, each checked as Azure checks them."""
    if given is None:
        return []
    if not isinstance(given, list):
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request.",
                       details=[{"code": "InvalidJson", "message": "properties.publicIpAddresses must be an array."}])
    ids: list[str] = []
    for ref in given:
        pip_id = net.reference(ctx, ref, rid_, "publicIPAddresses")
        body = net.locate(ctx, pip_id)
        if body["location"] != loc:
            raise invalid_reference(pip_id, rid_)
        props = body.get("properties", {})
        if (body.get("sku") or {}).get("name", "Standard") != "Standard" or props.get(
                "publicIPAllocationMethod") != "Static" or props.get("publicIPAddressVersion", "IPv4") != "IPv4":
            raise ArmError(400, "NatGatewayPublicIpAddressSkuNotSupported",
                           f"Nat Gateway {rid_} cannot use public IP address {pip_id}: a NAT gateway of SKU Standard "
                           "takes Standard SKU, static, IPv4 public IP addresses only.")
        holder = (props.get("ipConfiguration") or props.get("natGateway") or {}).get("id", "")
        if holder and holder.lower() != rid_.lower():
            raise ArmError(400, "PublicIPAddressInUse",
                           f"Resource {rid_} is referencing public IP address {pip_id} that is already allocated "
                           f"to resource {holder}.")
        if pip_id.lower() not in (i.lower() for i in ids):
            ids.append(pip_id)
    return ids


def put_nat(ctx: Ctx, rg: str, name: str) -> Resp:
    def build(rid_: str, existing: dict | None, loc: str) -> dict:
        body_in = ctx.body or {}
        props_in = body_in.get("properties") or {}
        sku = validate.enum((body_in.get("sku") or {}).get("name", "Standard"), SKUS, "NatGatewaySkuName",
                            "sku.name")
        idle = props_in.get("idleTimeoutInMinutes", IDLE_DEFAULT)
        if isinstance(idle, bool) or not isinstance(idle, int) or not IDLE_MIN <= idle <= IDLE_MAX:
            raise ArmError(400, "NatGatewayInvalidIdleTimeout",
                           f"Nat Gateway {name} has invalid Idle Timeout {idle}. The value must be between "
                           f"{IDLE_MIN} and {IDLE_MAX}.", target="idleTimeoutInMinutes")
        if props_in.get("publicIpPrefixes"):
            raise ArmError(400, "NatGatewayPublicIpPrefixesNotSupported",
                           "The local cloud does not emulate public IP prefixes; give publicIpAddresses.")
        old = (existing or {}).get("properties", {})
        ips = _public_ips(ctx, rid_, loc, props_in.get("publicIpAddresses"))
        before = [r["id"] for r in old.get("publicIpAddresses", [])]
        for pip_id in before:
            if pip_id.lower() not in (i.lower() for i in ips):
                net.link(ctx, pip_id, "natGateway", rid_, add=False, single=True)
        for pip_id in ips:
            net.link(ctx, pip_id, "natGateway", rid_, add=True, single=True)
        props = {k: v for k, v in props_in.items()
                 if k not in ("provisioningState", "subnets", "resourceGuid", "publicIpAddresses")}
        props.update({"idleTimeoutInMinutes": idle, "publicIpAddresses": [{"id": i} for i in ips],
                      "resourceGuid": old.get("resourceGuid") or net.new_guid()})
        if old.get("subnets"):
            props["subnets"] = old["subnets"]
        out = {"sku": {"name": sku}, "properties": props}
        if body_in.get("zones"):
            out["zones"] = body_in["zones"]
        return out

    return net.put(ctx, NAT, rg, name, build, validate.network_name)


def _in_use(body: dict) -> None:
    users = [r["id"] for r in body["properties"].get("subnets", [])]
    if users:
        raise ArmError(400, "InUseNatGatewayCannotBeDeleted",
                       f"Nat Gateway {body['id']} cannot be deleted because it is in use by the following resources: "
                       f"{', '.join(users)}. In order to delete the Nat Gateway, remove the association with the "
                       "resource(s).")


def unlink_nat(ctx: Ctx, body: dict) -> None:
    """The NAT gateway goes: its public IPs are free again (also for a resource group purge)."""
    for ref in body["properties"].get("publicIpAddresses", []):
        net.link(ctx, ref["id"], "natGateway", body["id"], add=False, single=True)


def delete_nat(ctx: Ctx, rg: str, name: str) -> Resp:
    return net.delete(ctx, NAT, rg, name, _in_use, lambda body: unlink_nat(ctx, body))


def subnet_reference(ctx: Ctx, subnet_id: str, vnet_location: str, given) -> str:
    """A subnet's `natGateway: {id}`: an existing NAT gateway of the VNet's region."""
    nat_id = net.reference(ctx, given, subnet_id, "natGateways")
    body = net.locate(ctx, nat_id)
    if body["location"] != vnet_location:
        raise invalid_reference(nat_id, subnet_id)
    return nat_id
