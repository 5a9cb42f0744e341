"""Network security groups as packet filters: a pure translation of a host's NSGs into an iptables-restore
ruleset for that host's network namespace.

Azure's semantics, as far as a single host can see them:
- inbound only (outbound is allowed; there is no internet here anyway); loopback is never filtered;
- stateful: replies to allowed connections pass;
- a subnet NSG and a NIC NSG must both allow; a missing NSG allows, except that a Standard public IP is closed
  to inbound traffic unless some NSG allows it;
- rules in priority order, first match decides; Deny drops (the client times out);
- destinations are evaluated after Azure's NAT, i.e. against the private IP: a rule applies to this host when its
  destination is '*', 'VirtualNetwork' or a prefix holding the host's private (or public) address;
- 'VirtualNetwork' as a source is the VNet's address space (traffic to a public IP arrives from the sender's
  public IP, so it is not 'VirtualNetwork'); 'AzureLoadBalancer' never matches here; 'Internet' is what is
  not in the VNet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

PRIVATE_IF, PUBLIC_IF = "eth0", "eth1"
PROTOCOLS = {"tcp": ["tcp"], "udp": ["udp"], "icmp": ["icmp"], "esp": ["esp"], "ah": ["ah"], "*": [None]}


@dataclass(frozen=True)
class HostView:
    private_ip: str
    public_ip: str | None
    vnet_prefixes: tuple[str, ...]


def _rules_in_order(nsg: dict) -> list[dict]:
    props = nsg.get("properties", {})
    rules = [r for r in props.get("securityRules", []) + props.get("defaultSecurityRules", [])
             if r["properties"].get("direction") == "Inbound"]
    return sorted(rules, key=lambda r: r["properties"]["priority"])


def _applies(prefixes: list[str], host: HostView) -> bool:
    for prefix in prefixes:
        if prefix.lower() in ("*", "virtualnetwork", "internet"):
            return True
        if prefix.lower() == "azureloadbalancer":
            continue
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            continue
        if any(a and ipaddress.ip_address(a) in net for a in (host.private_ip, host.public_ip)):
            return True
    return False


def _ports(props: dict) -> list[str | None]:
    values = props.get("destinationPortRanges") or [props.get("destinationPortRange", "*")]
    out: list[str | None] = []
    for v in values:
        v = str(v)
        out.append(None if v == "*" else v.replace("-", ":"))
    return out


def _sources(props: dict) -> list[str]:
    return props.get("sourceAddressPrefixes") or [props.get("sourceAddressPrefix", "*")]


def compile_chain(chain: str, nsg: dict, host: HostView, allow: str) -> list[str]:
    """iptables lines for one NSG: `allow` is the target of Allow rules (ACCEPT, or RETURN to go on)."""
    lines = [f":{chain} - [0:0]"]
    for n, rule in enumerate(_rules_in_order(nsg)):
        p = rule["properties"]
        dests = p.get("destinationAddressPrefixes") or [p.get("destinationAddressPrefix", "*")]
        if not _applies(dests, host):
            continue
        target = allow if p["access"] == "Allow" else "DROP"
        protos = PROTOCOLS.get(str(p.get("protocol", "*")).lower(), [None])
        ports = _ports(p)
        for source in _sources(p):
            low = source.lower()
            if low == "azureloadbalancer":
                continue
            jump, src = target, ""
            if low == "virtualnetwork":
                src_list = list(host.vnet_prefixes)
            elif low in ("*", "internet"):
                src_list = [None]
            else:
                src_list = [source]
            if low == "internet":  # everything but the VNet: a small chain that returns for VNet sources
                sub = f"{chain}-I{n}"
                lines.insert(1, f":{sub} - [0:0]")
                lines += [f"-A {sub} -s {pfx} -j RETURN" for pfx in host.vnet_prefixes] + [f"-A {sub} -j {target}"]
                jump = sub
            for s in src_list:
                src = f" -s {s}" if s else ""
                for proto in protos:
                    for port in ports:
                        if port and proto is None:  # a port with protocol '*': both TCP and UDP
                            lines += [f"-A {chain} -p {pr}{src} --dport {port} -j {jump}" for pr in ("tcp", "udp")]
                        elif port and proto in ("tcp", "udp"):
                            lines.append(f"-A {chain} -p {proto}{src} --dport {port} -j {jump}")
                        else:
                            lines.append(f"-A {chain}{f' -p {proto}' if proto else ''}{src} -j {jump}")
    lines.append(f"-A {chain} -j DROP")  # DenyAllInBound is always there; this keeps a partial NSG safe
    return lines


def ruleset(host: HostView, subnet_nsg: dict | None, nic_nsg: dict | None) -> str:
    """The whole filter table for one host's namespace, for `iptables-restore`."""
    chains: list[str] = []
    body = ["-A INPUT -i lo -j ACCEPT", "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"]
    if subnet_nsg is None and nic_nsg is None:
        body += [f"-A INPUT -i {PUBLIC_IF} -j DROP"]  # Standard public IPs are closed unless an NSG opens them
    if subnet_nsg is not None:
        chains += compile_chain("FZ-SUBNET", subnet_nsg, host, "RETURN" if nic_nsg is not None else "ACCEPT")
        body.append("-A INPUT -j FZ-SUBNET")
    if nic_nsg is not None:
        chains += compile_chain("FZ-NIC", nic_nsg, host, "ACCEPT")
        body.append("-A INPUT -j FZ-NIC")
    heads = [line for line in chains if line.startswith(":")]
    rules = [line for line in chains if not line.startswith(":")]
    return "\n".join(["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
                      *heads, *body, *rules, "COMMIT", ""])
