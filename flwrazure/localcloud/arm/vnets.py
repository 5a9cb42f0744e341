"""virtualNetworks and their subnets. A VNet PUT states its subnets in full, as on Azure: a subnet left out is
deleted, and one still used by a NIC makes the PUT fail (InUseSubnetCannotBeDeleted)."""

from __future__ import annotations

import ipaddress

from flwrazure.localcloud.arm import natgateways, validate
from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm.common import Ctx, Resp, clone
from flwrazure.localcloud.arm.errors import ArmError

VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"


def _spaces(vnet: dict) -> list:
    return [ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]


def _subnet_prefixes(subnet: dict) -> list[str]:
    props = subnet.get("properties", {})
    return props.get("addressPrefixes") or ([props["addressPrefix"]] if props.get("addressPrefix") else [])


def build_subnet(ctx: Ctx, vnet: dict, subnet_id: str, existing: dict | None, given: dict, siblings: list[dict]) -> dict:
    props_in = given.get("properties") or {}
    prefixes = props_in.get("addressPrefixes") or ([props_in["addressPrefix"]] if props_in.get("addressPrefix") else [])
    if not prefixes:
        raise ArmError(400, "NetcfgInvalidSubnet", f"Subnet {subnet_id} is not valid in virtual network "
                       f"{vnet['id']}: an addressPrefix is required.")
    nets = [validate.cidr(p, subnet_id) for p in prefixes]
    for n in nets:
        if not any(n.version == s.version and n.subnet_of(s) for s in _spaces(vnet)):
            raise ArmError(400, "NetcfgSubnetRangeOutsideVnet",
                           f"Subnet '{net.short(subnet_id)}' is not valid because its IP address range is outside "
                           f"the IP address range of virtual network '{vnet['name']}'.")
        for sib in siblings:
            if sib["name"].lower() == net.short(subnet_id).lower():
                continue
            for p in _subnet_prefixes(sib):
                if n.overlaps(ipaddress.ip_network(p)):
                    raise ArmError(400, "NetcfgSubnetRangesOverlap",
                                   f"Subnet '{net.short(subnet_id)}' is not valid in virtual network "
                                   f"'{vnet['name']}' because its IP address range overlaps with that of an "
                                   f"existing subnet in virtual network.")
    old_props = (existing or {}).get("properties", {})
    if old_props.get("ipConfigurations") and sorted(_subnet_prefixes(existing)) != sorted(prefixes):
        raise ArmError(400, "InUseSubnetCannotBeUpdated",
                       f"Subnet {net.short(subnet_id)} is in use and cannot be updated.")
    props = {k: v for k, v in props_in.items() if k not in ("provisioningState", "ipConfigurations")}
    props.setdefault("privateEndpointNetworkPolicies", "Disabled")
    props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
    props.setdefault("delegations", [])
    if old_props.get("ipConfigurations"):
        props["ipConfigurations"] = old_props["ipConfigurations"]
    old_nsg = (old_props.get("networkSecurityGroup") or {}).get("id")
    new_nsg = None
    if props_in.get("networkSecurityGroup"):
        new_nsg = net.reference(ctx, props_in["networkSecurityGroup"], subnet_id, "networkSecurityGroups")
        props["networkSecurityGroup"] = {"id": new_nsg}
    if old_nsg and (not new_nsg or old_nsg.lower() != new_nsg.lower()):
        net.link(ctx, old_nsg, "subnets", subnet_id, add=False)
    if new_nsg:
        net.link(ctx, new_nsg, "subnets", subnet_id, add=True)
    _nat_association(ctx, vnet, subnet_id, props_in, old_props, props)
    _default_outbound(ctx, existing, props_in, props)
    return {"name": net.short(subnet_id), "id": subnet_id, "type": SUBNET, "properties": props}


def _nat_association(ctx: Ctx, vnet: dict, subnet_id: str, props_in: dict, old_props: dict, props: dict) -> None:
    """`natGateway: {id}`: a NAT gateway of the VNet's region; its `subnets` back-reference follows."""
    old_nat = (old_props.get("natGateway") or {}).get("id")
    new_nat = None
    if props_in.get("natGateway"):
        new_nat = natgateways.subnet_reference(ctx, subnet_id, vnet["location"], props_in["natGateway"])
        props["natGateway"] = {"id": new_nat}
    else:
        props.pop("natGateway", None)
    if old_nat and (not new_nat or old_nat.lower() != new_nat.lower()):
        net.link(ctx, old_nat, "subnets", subnet_id, add=False)
    if new_nat:
        net.link(ctx, new_nat, "subnets", subnet_id, add=True)


# Azure retires default outbound access: subnets created with an API version released after 2026-03-31 (2025-07-01
# and later) are private unless they say otherwise (`defaultOutboundAccess: false`); older API versions leave the
# property unset, which means default outbound access (an implicit public address) for VMs without explicit outbound
PRIVATE_BY_DEFAULT_SINCE = "2025-07-01"


def _default_outbound(ctx: Ctx, existing: dict | None, props_in: dict, props: dict) -> None:
    value = props_in.get("defaultOutboundAccess")
    if value is not None and not isinstance(value, bool):
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request.", details=[{
            "code": "InvalidJsonValue", "message": "properties.defaultOutboundAccess must be true or false."}])
    if value is None:
        old = (existing or {}).get("properties", {})
        if "defaultOutboundAccess" in old:
            value = old["defaultOutboundAccess"]
        elif existing is None and (ctx.api_version or "")[:10] >= PRIVATE_BY_DEFAULT_SINCE:
            value = False
    if value is None:
        props.pop("defaultOutboundAccess", None)
    else:
        props["defaultOutboundAccess"] = value


def _check_subnet_free(subnet: dict) -> None:
    if subnet.get("properties", {}).get("ipConfigurations"):
        users = ", ".join(c["id"] for c in subnet["properties"]["ipConfigurations"])
        raise ArmError(400, "InUseSubnetCannotBeDeleted",
                       f"Subnet {subnet['name']} is in use by {users} and cannot be deleted. In order to delete the "
                       "subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.")


def _unlink_subnet(ctx: Ctx, subnet: dict) -> None:
    nsg = (subnet.get("properties", {}).get("networkSecurityGroup") or {}).get("id")
    if nsg:
        net.link(ctx, nsg, "subnets", subnet["id"], add=False)
    nat = (subnet.get("properties", {}).get("natGateway") or {}).get("id")
    if nat:
        net.link(ctx, nat, "subnets", subnet["id"], add=False)


def put_vnet(ctx: Ctx, rg: str, name: str) -> Resp:
    def build(rid_: str, existing: dict | None, loc: str) -> dict:
        props_in = (ctx.body or {}).get("properties") or {}
        space = (props_in.get("addressSpace") or {}).get("addressPrefixes") or []
        if not space:
            raise ArmError(400, "InvalidAddressSpace", f"Virtual network {rid_} must have an address space "
                           "(properties.addressSpace.addressPrefixes).")
        nets = [validate.cidr(p, rid_) for p in space]
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a.overlaps(b):
                    raise ArmError(400, "VnetAddressSpacesOverlap",
                                   f"Cannot create or update virtual network {rid_} because its address spaces "
                                   f"{a} and {b} overlap.")
        props = {k: v for k, v in props_in.items() if k not in ("subnets", "provisioningState")}
        props.setdefault("virtualNetworkPeerings", [])
        props.setdefault("enableDdosProtection", False)
        props["resourceGuid"] = (existing or {}).get("properties", {}).get("resourceGuid") or net.new_guid()
        shell = {"id": rid_, "name": net.short(rid_), "location": loc, "properties": props}
        old = {s["name"].lower(): s for s in (existing or {}).get("properties", {}).get("subnets", [])}
        wanted = props_in.get("subnets") or []
        new_subnets: list[dict] = []
        for given in wanted:
            sname = given.get("name") or ""
            validate.network_name(sname, SUBNET)
            sid = f"{rid_}/subnets/{sname}"
            sub = build_subnet(ctx, shell, sid, old.get(sname.lower()), given, new_subnets)
            sub["properties"]["provisioningState"] = "Updating"
            new_subnets.append(sub)
        kept = {s["name"].lower() for s in new_subnets}
        for lname, sub in old.items():
            if lname not in kept:
                _check_subnet_free(sub)
        for lname, sub in old.items():
            if lname not in kept:
                _unlink_subnet(ctx, sub)
        for sub in old.values():  # a shrunk address space must still hold every subnet
            for p in _subnet_prefixes(sub):
                if sub["name"].lower() in kept and not any(
                        ipaddress.ip_network(p).subnet_of(s) for s in nets if s.version == ipaddress.ip_network(p).version):
                    raise ArmError(400, "NetcfgSubnetRangeOutsideVnet",
                                   f"Subnet '{sub['name']}' is not valid because its IP address range is outside the "
                                   f"IP address range of virtual network '{net.short(rid_)}'.")
        props["subnets"] = new_subnets
        return {"properties": props}

    return net.put(ctx, VNET, rg, name, build, validate.network_name)


def delete_vnet(ctx: Ctx, rg: str, name: str) -> Resp:
    def check(body: dict) -> None:
        for sub in body["properties"].get("subnets", []):
            _check_subnet_free(sub)

    def cleanup(body: dict) -> None:
        for sub in body["properties"].get("subnets", []):
            _unlink_subnet(ctx, sub)

    return net.delete(ctx, VNET, rg, name, check, cleanup)


def put_subnet(ctx: Ctx, rg: str, vnet: str, name: str) -> Resp:
    def build(parent: dict, sid: str, existing: dict | None) -> dict:
        siblings = [s for s in parent["properties"].get("subnets", [])]
        return build_subnet(ctx, parent, sid, existing, clone(ctx.body or {}), siblings)

    return net.child_put(ctx, VNET, "subnets", SUBNET, rg, vnet, name, build, validate.network_name)


def delete_subnet(ctx: Ctx, rg: str, vnet: str, name: str) -> Resp:
    return net.child_delete(ctx, VNET, "subnets", SUBNET, rg, vnet, name, _check_subnet_free,
                            lambda sub: _unlink_subnet(ctx, sub))
