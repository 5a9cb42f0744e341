"""The Control port's least privilege: a Deny from the VNet where Control has a port of its own (1.21-1.34), the
operator's Allow still first, and 'any' only when asked for. Also checked on the local cloud's packet filter."""

import ipaddress

import pytest

from flwrazure.errors import UsageError
from flwrazure.localcloud.arm.nsgs import DEFAULT_RULES
from flwrazure.localcloud.hosts import firewall
from flwrazure.plan import rules, versions

CLIENTS, OPERATOR, SERVER = ["198.18.0.11", "198.18.0.12"], ("203.0.113.7",), "10.0.0.4"


def test_grpc_generation_denies_the_vnet_on_the_control_port():
    fleet, control, deny = rules.flower_rules(versions.GRPC, CLIENTS, OPERATOR, SERVER)
    assert (deny.name, deny.access, deny.port, deny.sources, deny.destination) == \
        ("flwrazure-control-vnet-deny", "Deny", 9093, ("VirtualNetwork",), SERVER)
    # after every product Allow (the operator's Control rule wins), before Azure's defaults (AllowVnetInBound)
    assert max(r.priority for r in (fleet, control, rules.ssh_rule(OPERATOR, "10.0.0.0/24"))) < deny.priority < 65000
    assert (fleet.access, control.access) == ("Allow", "Allow") and not deny.is_open_to_any
    assert deny.port != fleet.port and deny.port != 22


def test_http_generation_has_no_deny():
    """From 1.40 Fleet and Control share port 8000, which the client VMs must reach."""
    assert rules.control_vnet_deny(versions.HTTP, SERVER) is None
    assert [r.name for r in rules.flower_rules(versions.HTTP, CLIENTS, OPERATOR, SERVER)] == \
        ["flwrazure-fleet", "flwrazure-control"]


def test_deny_body_roundtrip():
    deny = rules.control_vnet_deny(versions.GRPC, SERVER)
    body = rules.rule_body(deny)["properties"]
    assert (body["access"], body["direction"], body["protocol"], body["priority"], body["sourceAddressPrefix"],
            body["destinationAddressPrefix"], body["destinationPortRange"]) == \
        ("Deny", "Inbound", "Tcp", 4000, "VirtualNetwork", SERVER, "9093")
    assert rules.matches(deny, {"properties": {**body, "provisioningState": "Succeeded"}})
    assert not rules.matches(deny, {"properties": {**body, "access": "Allow"}})  # an Allow of that name is rewritten
    allow = rules.flower_rules(versions.GRPC, CLIENTS, OPERATOR, SERVER)[1]
    assert not rules.matches(allow, {"properties": {**rules.rule_body(allow)["properties"], "access": "Deny"}})


@pytest.mark.parametrize("text, expected", [
    (None, None), ("me", None), (" ME ", None), ("203.0.113.7", ("203.0.113.7",)), ("any", ("*",)),
    ("198.51.100.0/24,203.0.113.7", ("198.51.100.0/24", "203.0.113.7"))])
def test_parse_control_source(text, expected):
    assert rules.parse_control_source(text, "--control-source") == expected


@pytest.mark.parametrize("text, needle", [("me,1.2.3.4", "stands alone"), ("0.0.0.0/0", "spell it out"),
                                          ("nobody", "not an IPv4"), ("", "empty")])
def test_parse_control_source_rejects(text, needle):
    with pytest.raises(UsageError) as err:
        rules.parse_control_source(text, "--control-source")
    assert needle in str(err.value) and "--control-source" in str(err.value)


def test_public_control_needs_the_flag():
    with pytest.raises(UsageError) as err:
        rules.check_control_sources(("*",), False, 9093, "--control-source")
    said = str(err.value)
    assert "\n" not in said and "--control-source any" in said and "port 9093" in said
    assert "run code on every VM" in said and "--allow-public-control" in said
    rules.check_control_sources(("*",), True, 9093, "--control-source")
    rules.check_control_sources(("203.0.113.7", "198.51.100.0/24"), False, 8000, "--source")


def test_an_unknown_address_names_the_option_that_gives_it():
    from flwrazure.workstation import operator

    nothing = {"https://echo.invalid/ip": OSError("no route")}
    with pytest.raises(UsageError) as both:
        operator.decide(nothing, None, None, "--ssh-source and --control-source")
    assert "pass --ssh-source and --control-source <your-ip>." in str(both.value) and "'any'" not in str(both.value)
    with pytest.raises(UsageError) as ssh:
        operator.decide(nothing, None, None)
    assert "pass --ssh-source <your-ip> (or 'any', which opens SSH to everyone)" in str(ssh.value)


# -- the local cloud's packet filter treats these rules as Azure does --------------------------------------------

def _nsg(flower: list) -> dict:
    own = [rules.ssh_rule(OPERATOR, "10.0.0.0/24"), *flower]
    return {"properties": {
        "securityRules": [{"name": r.name, **rules.rule_body(r)} for r in own],
        "defaultSecurityRules": [{"name": name, "properties": {
            "access": access, "direction": direction, "priority": priority, "protocol": "*",
            "sourceAddressPrefix": source, "destinationAddressPrefix": dest, "sourcePortRange": "*",
            "destinationPortRange": "*"}} for name, _, access, direction, priority, source, dest in DEFAULT_RULES]}}


def _verdict(table: str, source: str, port: int) -> str:
    """What the compiled iptables ruleset does with a new TCP connection from `source` to `port` (not loopback)."""
    lines = [line.split() for line in table.splitlines() if line.startswith("-A ")]

    def walk(chain: str) -> str | None:
        for words in (w for w in lines if w[1] == chain):
            opts = dict(zip(words[2::2], words[3::2], strict=False))
            if "-i" in opts or "-m" in opts:  # loopback and conntrack: not a new connection from outside
                continue
            if opts.get("-p", "tcp") != "tcp" or ("--dport" in opts and not _port_in(port, opts["--dport"])):
                continue
            if "-s" in opts and ipaddress.ip_address(source) not in ipaddress.ip_network(opts["-s"]):
                continue
            target = opts["-j"]
            if target in ("ACCEPT", "DROP"):
                return target
            if target == "RETURN":
                return None
            result = walk(target)
            if result:
                return result
        return None

    return walk("INPUT") or "ACCEPT"


def _port_in(port: int, spec: str) -> bool:
    low, _, high = spec.partition(":")
    return int(low) <= port <= int(high or low)


@pytest.mark.parametrize("source, port, expected", [
    ("10.0.0.5", 9093, "DROP"),  # a client VM, to the server's private address: the Deny, before AllowVnetInBound
    ("10.0.0.5", 9092, "ACCEPT"),  # the same VM on the Fleet port: AllowVnetInBound as before
    ("10.0.0.5", 22, "ACCEPT"),
    ("203.0.113.7", 9093, "ACCEPT"),  # the operator from the internet: its Allow comes first
    ("198.18.0.11", 9093, "DROP"),  # a client VM through the public address: not an operator source
    ("198.18.0.11", 9092, "ACCEPT"),  # ... but a Fleet source
    ("203.0.113.7", 22, "ACCEPT"), ("192.0.2.99", 9093, "DROP"), ("192.0.2.99", 22, "DROP")])
def test_packet_filter_follows_azure(source, port, expected):
    host = firewall.HostView(SERVER, "198.18.0.10", ("10.0.0.0/16",))
    table = firewall.ruleset(host, None, _nsg(rules.flower_rules(versions.GRPC, CLIENTS, OPERATOR, SERVER)))
    assert _verdict(table, source, port) == expected


def test_without_the_deny_the_vnet_reaches_control():
    """What the Deny closes: Azure's AllowVnetInBound admits a client VM on the Control port."""
    host = firewall.HostView(SERVER, "198.18.0.10", ("10.0.0.0/16",))
    flower = rules.flower_rules(versions.GRPC, CLIENTS, OPERATOR, SERVER)[:2]
    assert _verdict(firewall.ruleset(host, None, _nsg(flower)), "10.0.0.5", 9093) == "ACCEPT"


def test_operator_inside_the_vnet_sources_still_wins():
    """An operator who names a VNet address as a Control source (e.g. a jump VM) is admitted: Allow 1020 < 4000."""
    host = firewall.HostView(SERVER, "198.18.0.10", ("10.0.0.0/16",))
    flower = rules.flower_rules(versions.GRPC, CLIENTS, ("10.0.0.9",), SERVER)
    table = firewall.ruleset(host, None, _nsg(flower))
    assert (_verdict(table, "10.0.0.9", 9093), _verdict(table, "10.0.0.5", 9093)) == ("ACCEPT", "DROP")
