"""Outbound paths of VMs without a public IP: what Azure's NAT gateway (and its default outbound access) is, as a
pure plan of small namespaces ("egress gateways") and their packet filters.

A VM without a public IP has no public interface here; it gets one route, for the public range (never a default
route), via its subnet's first host address (x.x.x.1, the address Azure reserves as the subnet's gateway). An egress
gateway answers on that address when the subnet has a way out:
- the subnet's NAT gateway: one gateway per NAT gateway, its public leg holding the NAT gateway's (first) public IP,
  with a leg on each VNet bridge whose subnets use it; the VMs' packets leave source-NATed to that address;
- Azure's default outbound access (a subnet whose `defaultOutboundAccess` is unset or true, without a NAT gateway):
  one gateway per subnet with an implicit address Azure would own (here from the top of the public range, never one
  a public IP resource gets);
- a private subnet (`defaultOutboundAccess: false`) without a NAT gateway: no gateway, so nothing answers on x.x.x.1
  and the VM cannot reach the public range (connections fail: host unreachable), as on Azure.
Only subnets with a running VM without a public IP get a gateway (VMs with a public IP leave through it, as before).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

# the implicit addresses of default outbound access: the top /20 of the public range (public IP resources are
# handed out from its bottom up, so they meet only after some 130 000 addresses)
IMPLICIT = ipaddress.ip_network("198.19.240.0/20")
PUBLIC_IF = "pub"


@dataclass(frozen=True)
class PrivateHost:
    """A running VM without a public IP, as the plan needs it."""
    subnet_id: str
    vnet_id: str


@dataclass(frozen=True)
class Egress:
    key: str  # "nat|<NAT gateway id>" or "doa|<subnet id>" (lower case)
    public_ip: str
    legs: tuple[tuple[str, tuple[str, ...]], ...]  # (VNet id, gateway addresses with prefix length), sorted
    sources: tuple[str, ...]  # the subnet prefixes it takes packets from


def gateway_address(prefix: str) -> str:
    """The subnet's gateway address with its prefix length: 10.0.1.0/24 -> 10.0.1.1/24 (pure)."""
    net = ipaddress.ip_network(prefix, strict=False)
    return f"{net.network_address + 1}/{net.prefixlen}"


def subnet_prefix(subnet: dict) -> str:
    props = subnet.get("properties", {})
    return props.get("addressPrefix") or props["addressPrefixes"][0]


def mode(subnet: dict) -> str:
    """"nat", "default" (default outbound access) or "none" (a private subnet without a NAT gateway) (pure)."""
    props = subnet.get("properties", {})
    if (props.get("natGateway") or {}).get("id"):
        return "nat"
    return "none" if props.get("defaultOutboundAccess") is False else "default"


def implicit_address(subnet_id: str, taken: set[str]) -> str:
    """A stable address for a subnet's default outbound access, not in `taken` (pure)."""
    size = IMPLICIT.num_addresses
    start = int(hashlib.sha1(subnet_id.lower().encode()).hexdigest(), 16) % size
    for step in range(size):
        value = int(IMPLICIT.network_address) + (start + step) % size
        if value & 0xFF not in (0, 255) and str(ipaddress.ip_address(value)) not in taken:
            return str(ipaddress.ip_address(value))
    raise ValueError("no implicit address left")


def plan(hosts: list[PrivateHost], subnets: dict[str, dict], nat_addresses: dict[str, str | None]) -> dict[str, Egress]:
    """The egress gateways the running VMs without public IPs need: `subnets` by lower-case id (their ARM bodies),
    `nat_addresses` the public address of each NAT gateway by lower-case id (None: it has none yet) (pure)."""
    groups: dict[str, dict] = {}
    for host in hosts:
        subnet = subnets.get(host.subnet_id.lower())
        if subnet is None:
            continue
        how = mode(subnet)
        if how == "none":
            continue
        if how == "nat":
            key = "nat|" + subnet["properties"]["natGateway"]["id"].lower()
            public = nat_addresses.get(key[4:])
            if not public:
                continue  # a NAT gateway without a public IP: no way out
        else:
            key, public = "doa|" + host.subnet_id.lower(), None
        group = groups.setdefault(key, {"public": public, "legs": {}, "sources": set()})
        prefix = subnet_prefix(subnet)
        group["legs"].setdefault(host.vnet_id, set()).add(gateway_address(prefix))
        group["sources"].add(str(ipaddress.ip_network(prefix, strict=False)))
    taken = {g["public"] for g in groups.values() if g["public"]}
    out = {}
    for key in sorted(groups):
        group = groups[key]
        if group["public"] is None:
            group["public"] = implicit_address(key[4:], taken)
            taken.add(group["public"])
        out[key] = Egress(key, group["public"],
                          tuple(sorted((v, tuple(sorted(a))) for v, a in group["legs"].items())),
                          tuple(sorted(group["sources"])))
    return out


def ruleset(egress: Egress, leg_ifs: list[str]) -> str:
    """iptables-restore input for a gateway's namespace: forward only from its subnets out of its public leg,
    source-NATed to its public address, and the replies back; nothing from the public side gets in (pure)."""
    forward = [f"-A FORWARD -i {leg} -o {PUBLIC_IF} -s {src} -j ACCEPT" for leg in leg_ifs for src in egress.sources]
    return "\n".join([
        "*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
        "-A INPUT -i lo -j ACCEPT", "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        *[f"-A INPUT -i {leg} -p icmp -j ACCEPT" for leg in leg_ifs],
        "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", *forward, "COMMIT",
        "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]", f"-A POSTROUTING -o {PUBLIC_IF} -j SNAT --to-source {egress.public_ip}",
        "COMMIT", ""])
