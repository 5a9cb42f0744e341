"""networkInterfaces: ipConfigurations bound to a subnet (private address allocated there, Azure's first four
and the last address reserved), an optional public IP (one NIC at a time) and NSG; a NIC held by a VM cannot
be deleted (NicInUse)."""

from __future__ import annotations

import ipaddress

from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm import validate
from flwrazure.localcloud.arm.common import Ctx, Resp
from flwrazure.localcloud.arm.conflicts import RETRYABLE
from flwrazure.localcloud.arm.errors import ArmError, invalid_reference

NIC = "Microsoft.Network/networkInterfaces"
IPCONFIG = "Microsoft.Network/networkInterfaces/ipConfigurations"
METHODS = {"static": "Static", "dynamic": "Dynamic"}


def _used_blocks(ctx: Ctx, subnet_id: str, skip_nic: str) -> list[tuple[int, int]]:
    """The addresses other NICs hold in the subnet, as (first, last) integers (parsing each as a network cost
    more than the rest of a NIC PUT once a subnet held a hundred NICs)."""
    used = []
    for rec in ctx.store.of_type(NIC):
        if rec["body"]["id"].lower() == skip_nic.lower():
            continue
        for cfg in rec["body"]["properties"].get("ipConfigurations", []):
            props = cfg["properties"]
            if (props.get("subnet") or {}).get("id", "").lower() == subnet_id.lower() and props.get("privateIPAddress"):
                used.append(_span(props["privateIPAddress"]))
    return used


def _span(addr: str) -> tuple[int, int]:
    """An address (or a block written with its prefix length) as (first, last) integers."""
    if "/" not in addr:
        value = int(ipaddress.ip_address(addr))
        return value, value
    block = ipaddress.ip_network(addr, strict=False)
    return int(block.network_address), int(block.broadcast_address)


def _allocate(subnet_net, used: list[tuple[int, int]], prefix_len: int | None):
    """Lowest free address (or aligned block) in the subnet, skipping Azure's reserved addresses. One pass over
    the used ranges in order (testing every candidate against every used address made a NIC PUT cost O(n^2))."""
    size = 2 ** (subnet_net.max_prefixlen - (prefix_len or subnet_net.max_prefixlen))
    start = int(subnet_net.network_address) + 4
    last = int(subnet_net.broadcast_address) - 1
    cand = ((start + size - 1) // size) * size
    for lo, hi in sorted(used):
        if hi < cand:
            continue
        if lo > cand + size - 1:
            break  # the candidate block ends before this used range: free
        cand = ((hi + 1 + size - 1) // size) * size
    if cand + size - 1 <= last:
        return ipaddress.ip_network(f"{ipaddress.ip_address(cand)}/{prefix_len or subnet_net.max_prefixlen}")
    return None


def put_nic(ctx: Ctx, rg: str, name: str) -> Resp:
    def build(rid_: str, existing: dict | None, loc: str) -> dict:
        props_in = (ctx.body or {}).get("properties") or {}
        configs_in = props_in.get("ipConfigurations") or []
        if not configs_in:
            raise ArmError(400, "NicMustHaveAtLeastOneIpConfiguration",
                           f"Network interface {rid_} must have one or more IP configurations.")
        old = (existing or {}).get("properties", {})
        old_cfgs = {c["name"].lower(): c for c in old.get("ipConfigurations", [])}
        primary_subnet = None
        configs = []
        new_pips: dict[str, str] = {}
        for i, given in enumerate(configs_in):
            cname = given.get("name") or ""
            validate.network_name(cname, IPCONFIG)
            cid = f"{rid_}/ipConfigurations/{cname}"
            gp = given.get("properties") or {}
            if gp.get("subnet"):
                subnet_id = net.reference(ctx, gp["subnet"], rid_, "virtualNetworks/subnets")
            elif primary_subnet:
                subnet_id = primary_subnet
            else:
                raise ArmError(400, "IpConfigurationMustHaveSubnet",
                               f"IP configuration {cid} must reference a subnet.")
            vnet = ctx.store.get(net.split_child(subnet_id)[0])["body"]
            _provisioned(vnet, subnet_id, rid_)
            if vnet["location"] != loc:
                raise invalid_reference(subnet_id, rid_)
            primary_subnet = primary_subnet or subnet_id
            props = {k: v for k, v in gp.items() if k not in ("provisioningState", "subnet", "publicIPAddress")}
            props["subnet"] = {"id": subnet_id}
            props["primary"] = gp.get("primary", i == 0)
            props["privateIPAddressVersion"] = gp.get("privateIPAddressVersion", "IPv4")
            method = validate.enum(gp.get("privateIPAllocationMethod", "Dynamic"), METHODS, "IPAllocationMethod",
                                   f"properties.ipConfigurations[{i}].properties.privateIPAllocationMethod")
            props["privateIPAllocationMethod"] = method
            subnet = net.locate(ctx, subnet_id)
            subnet_net = ipaddress.ip_network(subnet["properties"].get("addressPrefix")
                                              or subnet["properties"]["addressPrefixes"][0])
            used = _used_blocks(ctx, subnet_id, rid_) + [_span(c["properties"]["privateIPAddress"]) for c in configs]
            prev = old_cfgs.get(cname.lower(), {}).get("properties", {})
            prefix_len = gp.get("privateIPAddressPrefixLength")
            if method == "Static":
                addr = validate.required(gp.get("privateIPAddress"), "privateIPAddress", f"{cid}.properties")
                try:
                    block = ipaddress.ip_network(addr, strict=False)
                except ValueError:
                    raise ArmError(400, "InvalidRequestFormat", f"Private IP address {addr} is not valid.") from None
                if not block.subnet_of(subnet_net):
                    raise ArmError(400, "PrivateIPAddressNotInSubnet",
                                   f"IP configuration {cid} is referencing a private IP address {addr} that is not in "
                                   f"the address range of subnet {subnet_id}.")
                lo, hi = int(block.network_address), int(block.broadcast_address)
                if any(u_lo <= hi and lo <= u_hi for u_lo, u_hi in used):
                    raise ArmError(400, "PrivateIPAddressInUse",
                                   f"IP configuration {cid} is using the private IP address {addr} which is already "
                                   "allocated to another resource.")
                props["privateIPAddress"] = addr
            elif prev.get("privateIPAddress") and (prev.get("subnet") or {}).get("id", "").lower() == subnet_id.lower():
                props["privateIPAddress"] = prev["privateIPAddress"]
            else:
                block = _allocate(subnet_net, used, prefix_len)
                if block is None:
                    raise ArmError(400, "SubnetIsFull", f"Subnet {net.short(subnet_id)} with address prefix "
                                   f"{subnet_net} does not have enough capacity for 1 IP addresses.")
                props["privateIPAddress"] = str(block.network_address) if prefix_len is None else str(block)
            if gp.get("publicIPAddress"):
                pip_id = net.reference(ctx, gp["publicIPAddress"], rid_, "publicIPAddresses")
                pip = net.locate(ctx, pip_id)
                _provisioned(pip, pip_id, rid_)
                holder = (pip["properties"].get("ipConfiguration") or pip["properties"].get("natGateway")
                          or {}).get("id", "")
                if holder and holder.lower() != cid.lower():
                    raise ArmError(400, "PublicIPAddressInUse",
                                   f"Resource {cid} is referencing public IP address {pip_id} that is already "
                                   f"allocated to resource {holder}.")
                if pip["location"] != loc:
                    raise invalid_reference(pip_id, rid_)
                props["publicIPAddress"] = {"id": pip_id}
                new_pips[cid] = pip_id
            props["provisioningState"] = "Succeeded"
            configs.append({"name": cname, "id": cid, "type": IPCONFIG, "properties": props})
        nsg_id = None
        if props_in.get("networkSecurityGroup"):
            nsg_id = net.reference(ctx, props_in["networkSecurityGroup"], rid_, "networkSecurityGroups")
            _provisioned(net.locate(ctx, nsg_id), nsg_id, rid_)
        joined = [c["properties"]["subnet"]["id"] for c in configs]
        ctx.claim(joined, "PutNetworkInterfaceOperation", RETRYABLE, loc, extend=False)
        # from here on nothing fails: move the back-references
        _unlink_all(ctx, existing)
        for cfg in configs:
            net.link(ctx, cfg["properties"]["subnet"]["id"], "ipConfigurations", cfg["id"], add=True)
        for cid, pip_id in new_pips.items():
            net.link(ctx, pip_id, "ipConfiguration", cid, add=True, single=True)
        if nsg_id:
            net.link(ctx, nsg_id, "networkInterfaces", rid_, add=True)
        props = {k: v for k, v in props_in.items()
                 if k not in ("ipConfigurations", "provisioningState", "virtualMachine", "networkSecurityGroup")}
        props.update({"ipConfigurations": configs, "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
                      "enableAcceleratedNetworking": props_in.get("enableAcceleratedNetworking", False),
                      "enableIPForwarding": props_in.get("enableIPForwarding", False),
                      "nicType": "Standard", "vnetEncryptionSupported": False,
                      "resourceGuid": old.get("resourceGuid") or net.new_guid()})
        if nsg_id:
            props["networkSecurityGroup"] = {"id": nsg_id}
        for keep in ("virtualMachine", "macAddress", "primary"):
            if old.get(keep) is not None:
                props[keep] = old[keep]
        return {"properties": props}

    # Azure: a NIC's PUT answers Succeeded at once, its private address already assigned (network-nic-put.json)
    return net.put(ctx, NIC, rg, name, build, validate.network_name, initial_state="Succeeded",
                   retry="network_put_nic")


def _provisioned(body: dict, ref: str, referrer: str) -> None:
    """Azure refuses to build on a resource whose own operation has not finished."""
    state = body.get("properties", {}).get("provisioningState", "Succeeded")
    if state != "Succeeded":
        raise ArmError(400, "ReferencedResourceNotProvisioned",
                       f"Cannot proceed with operation because resource {ref} used by resource {referrer} is not in "
                       f"Succeeded state. Resource is in {state} state and the last operation that updated/is "
                       "updating the resource is PutOperation.")


def _unlink_all(ctx: Ctx, body: dict | None) -> None:
    if not body:
        return
    for cfg in body["properties"].get("ipConfigurations", []):
        props = cfg["properties"]
        if props.get("subnet"):
            net.link(ctx, props["subnet"]["id"], "ipConfigurations", cfg["id"], add=False)
        if props.get("publicIPAddress"):
            net.link(ctx, props["publicIPAddress"]["id"], "ipConfiguration", cfg["id"], add=False, single=True)
    nsg = body["properties"].get("networkSecurityGroup")
    if nsg:
        net.link(ctx, nsg["id"], "networkInterfaces", body["id"], add=False)


def _in_use(body: dict) -> None:
    vm = body["properties"].get("virtualMachine")
    if vm:
        raise ArmError(400, "NicInUse",
                       f"Network Interface {body['id']} is used by existing resource {vm['id']}. In order to delete "
                       "the network interface, it must be dissociated from the resource. To learn more, see "
                       "aka.ms/deletenic.")


def delete_nic(ctx: Ctx, rg: str, name: str) -> Resp:
    return net.delete(ctx, NIC, rg, name, _in_use, lambda body: _unlink_all(ctx, body))


def unlink_nic(ctx: Ctx, body: dict) -> None:
    """For cascades (VM deleteOption, resource group purge)."""
    _unlink_all(ctx, body)
