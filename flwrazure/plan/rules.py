"""Inbound rules, least privilege: SSH only from the operator, the Fleet port only from the client VMs, the
Control port only from the given source. Fixed names and priorities, so re-running converges and --close finds
them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from flwrazure.errors import UsageError
from flwrazure.plan.versions import PortPlan

SSH, FLEET, CONTROL = "flwrazure-ssh", "flwrazure-fleet", "flwrazure-control"
PRIORITY = {SSH: 1000, FLEET: 1010, CONTROL: 1020}


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    port: int
    sources: tuple[str, ...]
    destination: str
    description: str

    @property
    def is_open_to_any(self) -> bool:
        return "*" in self.sources


def parse_sources(text: str, flag: str) -> tuple[str, ...]:
    """'203.0.113.7', '198.51.100.0/24', 'any', or a comma-separated list of them -> ARM address prefixes."""
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag} is empty: give an IPv4 address, a CIDR such as 198.51.100.0/24, or 'any'.")
    out: list[str] = []
    for item in items:
        if item.lower() == "any":
            return ("*",)
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
    """Fleet port from the client VMs' public IPs only; Control port from the operator's sources only."""
    if not client_ips:
        raise ValueError("a cluster without client public IPs cannot have a fleet rule")
    return [Rule(FLEET, PRIORITY[FLEET], plan.fleet, tuple(sorted(client_ips)), server_private_ip,
                 "Flower Fleet API: SuperNodes on the client VMs (flwrazure)"),
            Rule(CONTROL, PRIORITY[CONTROL], plan.control, control_sources, server_private_ip,
                 "Flower Control API: flwr CLI of the operator (flwrazure)")]


def rule_body(rule: Rule) -> dict:
    props = {"description": rule.description, "protocol": "Tcp", "access": "Allow", "direction": "Inbound",
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
    return (p.get("access") == "Allow" and p.get("direction") == "Inbound" and p.get("protocol") == "Tcp"
            and int(p.get("priority", 0)) == rule.priority and str(p.get("destinationPortRange")) == str(rule.port)
            and p.get("destinationAddressPrefix") == rule.destination and sources == tuple(sorted(rule.sources)))
