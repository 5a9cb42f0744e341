"""Inbound rules, least privilege: SSH only from the operator, the Fleet port only from the client VMs, the
Control port only from the given source. Fixed names and priorities, so re-running converges and --close finds
them.

Azure's default rule AllowVnetInBound (priority 65000) admits every VM of the VNet on every port. Where the
Control API has a port of its own (Flower 1.21-1.34: 9093), a Deny from 'VirtualNetwork' to the server's private
address closes that port to the client VMs: a compromised client cannot submit runs (run code on every VM). Its
priority is below (numerically above) the product's Allow rules, so an operator source admitted by the Control
rule still gets in, and above Azure's defaults, so it comes before AllowVnetInBound. From 1.40 Fleet and Control
share one port, which the client VMs must reach: there is nothing to deny."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from flwrazure.errors import UsageError
from flwrazure.plan.versions import PortPlan

SSH, FLEET, CONTROL = "flwrazure-ssh", "flwrazure-fleet", "flwrazure-control"
CONTROL_VNET_DENY = "flwrazure-control-vnet-deny"
PRIORITY = {SSH: 1000, FLEET: 1010, CONTROL: 1020, CONTROL_VNET_DENY: 4000}
VNET = "VirtualNetwork"  # Azure's service tag: the VNet's address space (and what is peered or connected to it)


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    port: int
    sources: tuple[str, ...]
    destination: str
    description: str
    access: str = "Allow"

    @property
    def is_open_to_any(self) -> bool:
        return "*" in self.sources


ME = "me"  # open-ports --source me: the operator's detected address


def parse_sources(text: str, flag: str, allow_me: bool = False) -> tuple[str, ...]:
    """'203.0.113.7', '198.51.100.0/24', 'any', or a comma-separated list of them -> ARM address prefixes.
    allow_me: 'me' stays in the list, for the caller to replace with the detected address."""
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag} is empty: give an IPv4 address, a CIDR such as 198.51.100.0/24, or 'any'.")
    out: list[str] = []
    for item in items:
        if item.lower() == "any":
            return ("*",)
        if allow_me and item.lower() == ME:
            out.append(ME)
            continue
        try:
            if "/" in item:
                net = ipaddress.ip_network(item, strict=False)
                if str(net) != item:
                    raise UsageError(f"{flag} {item}: host bits are set; did you mean {net}?")
                value = str(net)
            else:
                net = ipaddress.ip_network(item)
                value = str(net.network_address)
        except ValueError:
            raise UsageError(f"{flag} {item!r} is not an IPv4 address or CIDR (e.g. 203.0.113.7 or "
                             "198.51.100.0/24), nor 'any'.") from None
        if net.version != 4:
            raise UsageError(f"{flag} {item}: only IPv4 sources are supported.")
        if net.prefixlen == 0:
            raise UsageError(f"{flag} {item} opens the port to everyone: spell it out as 'any' if you mean it.")
        out.append(value)
    return tuple(sorted(set(out)))


def ssh_rule(sources: tuple[str, ...], subnet_prefix: str) -> Rule:
    return Rule(SSH, PRIORITY[SSH], 22, sources, subnet_prefix, "SSH from the operator (flwrazure)")


def flower_rules(plan: PortPlan, client_ips: list[str], control_sources: tuple[str, ...],
                 server_private_ip: str) -> list[Rule]:
    """Fleet port from the client VMs only (their public IPs, or the subnet for private clients: plan.layout) and
    admitted silos; Control port from the operator's sources only; where Control has a port of its own, that port
    closed to the VNet (see control_vnet_deny)."""
    if not client_ips:
        raise ValueError("a cluster without client addresses cannot have a fleet rule")
    deny = control_vnet_deny(plan, server_private_ip)
    return [Rule(FLEET, PRIORITY[FLEET], plan.fleet, tuple(sorted(client_ips)), server_private_ip,
                 "Flower Fleet API: SuperNodes on the client VMs (flwrazure)"),
            Rule(CONTROL, PRIORITY[CONTROL], plan.control, control_sources, server_private_ip,
                 "Flower Control API: flwr CLI of the operator (flwrazure)"),
            *([deny] if deny else [])]


def control_vnet_deny(plan: PortPlan, server_private_ip: str) -> Rule | None:
    """The Deny that overrides AllowVnetInBound for the Control port, or None where Control shares the Fleet
    port (1.40+: the client VMs must reach it). Kept by `open-ports --close`: it never opens anything, and
    without it the VNet would reach the Control port again."""
    if plan.control == plan.fleet:
        return None
    return Rule(CONTROL_VNET_DENY, PRIORITY[CONTROL_VNET_DENY], plan.control, (VNET,), server_private_ip,
                "Flower Control API closed to the VNet's VMs (flwrazure)", access="Deny")


PUBLIC_CONTROL_FLAG = "--allow-public-control"


def check_control_sources(sources: tuple[str, ...], allow_public: bool, port: int, flag: str) -> None:
    """The open-source Control API has no user authentication: whoever reaches it submits runs, i.e. runs code
    on every VM. Open to any address only when the operator says so."""
    if "*" in sources and not allow_public:
        raise UsageError(f"{flag} any would let anyone who reaches port {port} submit runs, i.e. run code on "
                         f"every VM of the cluster: give your address or CIDR, or pass {PUBLIC_CONTROL_FLAG} if "
                         "you mean it.")


def parse_control_source(text: str | None, flag: str) -> tuple[str, ...] | None:
    """Like parse_sources, plus 'me' (and no value): None, i.e. the operator's detected address."""
    if text is None or text.strip().lower() == ME:
        return None
    if ME in [t.strip().lower() for t in text.split(",")]:
        raise UsageError(f"{flag} me stands alone: give 'me' (your detected address) or a list of IPv4 "
                         "addresses/CIDRs.")
    return parse_sources(text, flag)


def rule_body(rule: Rule) -> dict:
    props = {"description": rule.description, "protocol": "Tcp", "access": rule.access, "direction": "Inbound",
             "priority": rule.priority, "sourcePortRange": "*", "destinationPortRange": str(rule.port),
             "destinationAddressPrefix": rule.destination}
    if len(rule.sources) == 1:
        props["sourceAddressPrefix"] = rule.sources[0]
    else:
        props["sourceAddressPrefixes"] = list(rule.sources)
    return {"properties": props}


def matches(rule: Rule, existing: dict | None) -> bool:
    """True when an existing rule (ARM JSON) already says what `rule` says: then nothing is written."""
    if not existing:
        return False
    p = existing.get("properties", existing)
    sources = tuple(sorted(p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix")]))
    return (p.get("access") == rule.access and p.get("direction") == "Inbound" and p.get("protocol") == "Tcp"
            and int(p.get("priority", 0)) == rule.priority and str(p.get("destinationPortRange")) == str(rule.port)
            and p.get("destinationAddressPrefix") == rule.destination and sources == tuple(sorted(rule.sources)))
