"""networkSecurityGroups and securityRules, with the six default rules Azure adds and its rule validation."""

from __future__ import annotations

from flwrazure.localcloud.arm import network as net
from flwrazure.localcloud.arm import validate
from flwrazure.localcloud.arm.common import Ctx, Resp, clone
from flwrazure.localcloud.arm.errors import ArmError

NSG = "Microsoft.Network/networkSecurityGroups"
RULE = "Microsoft.Network/networkSecurityGroups/securityRules"
DEFAULT_RULE = "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"
ACCESS = {"allow": "Allow", "deny": "Deny"}
DIRECTION = {"inbound": "Inbound", "outbound": "Outbound"}

# (name, description, access, direction, priority, source, destination)
DEFAULT_RULES = [
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "Allow", "Inbound", 65000,
     "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "Allow", "Inbound", 65001,
     "AzureLoadBalancer", "*"),
    ("DenyAllInBound", "Deny all inbound traffic", "Deny", "Inbound", 65500, "*", "*"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "Allow", "Outbound", 65000,
     "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "Allow", "Outbound", 65001,
     "*", "Internet"),
    ("DenyAllOutBound", "Deny all outbound traffic", "Deny", "Outbound", 65500, "*", "*"),
]


def default_rules(nsg_id: str) -> list[dict]:
    return [{"name": n, "id": f"{nsg_id}/defaultSecurityRules/{n}", "type": DEFAULT_RULE,
             "properties": {"description": d, "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                            "sourceAddressPrefix": s, "destinationAddressPrefix": t, "access": a, "priority": p,
                            "direction": dr, "provisioningState": "Succeeded", "sourcePortRanges": [],
                            "destinationPortRanges": [], "sourceAddressPrefixes": [],
                            "destinationAddressPrefixes": []}}
            for n, d, a, dr, p, s, t in DEFAULT_RULES]


def build_rule(rule_id: str, given: dict) -> dict:
    """Validate one rule as Azure does and return its stored form (singular and plural fields both present)."""
    name = net.short(rule_id)
    props_in = given.get("properties") or {}
    path = f"properties.securityRules[{name}].properties"
    props = {k: v for k, v in props_in.items() if k != "provisioningState"}
    props["protocol"] = validate.enum(validate.required(props_in.get("protocol"), "protocol", path),
                                      validate.PROTOCOLS, "SecurityRuleProtocol", f"{path}.protocol")
    props["access"] = validate.enum(validate.required(props_in.get("access"), "access", path), ACCESS,
                                    "SecurityRuleAccess", f"{path}.access")
    props["direction"] = validate.enum(validate.required(props_in.get("direction"), "direction", path), DIRECTION,
                                       "SecurityRuleDirection", f"{path}.direction")
    props["priority"] = validate.priority(props_in.get("priority"), name)
    for side in ("source", "destination"):
        one, many = props_in.get(f"{side}AddressPrefix"), props_in.get(f"{side}AddressPrefixes") or []
        if not one and not many:
            validate.required(None, f"{side}AddressPrefix", path)
        for value in ([one] if one else []) + list(many):
            validate.rule_prefix(value, name)
        props.setdefault(f"{side}AddressPrefixes", [])
        ports_one, ports_many = props_in.get(f"{side}PortRange"), props_in.get(f"{side}PortRanges") or []
        if ports_one in (None, "") and not ports_many:
            validate.required(None, f"{side}PortRange", path)
        for value in ([ports_one] if ports_one not in (None, "") else []) + list(ports_many):
            validate.port_range(value, name)
        props.setdefault(f"{side}PortRanges", [])
    return {"name": name, "id": rule_id, "type": RULE, "properties": props}


def _check_conflicts(rules: list[dict]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for rule in rules:
        key = (rule["properties"]["direction"], rule["properties"]["priority"])
        if key in seen:
            raise ArmError(400, "SecurityRuleConflict",
                           f"Security rule {seen[key]} conflicts with rule {rule['name']}. Rules cannot have the same "
                           "Priority and Direction. To learn more, see aka.ms/nsgrules.")
        seen[key] = rule["name"]


def put_nsg(ctx: Ctx, rg: str, name: str) -> Resp:
    def build(rid_: str, existing: dict | None, loc: str) -> dict:
        props_in = (ctx.body or {}).get("properties") or {}
        rules = []
        for given in props_in.get("securityRules") or []:
            rname = given.get("name") or ""
            validate.network_name(rname, RULE)
            rule = build_rule(f"{rid_}/securityRules/{rname}", given)
            rule["properties"]["provisioningState"] = "Updating"
            rules.append(rule)
        _check_conflicts(rules)
        old = (existing or {}).get("properties", {})
        props = {k: v for k, v in props_in.items() if k not in ("securityRules", "defaultSecurityRules",
                                                                 "provisioningState", "networkInterfaces", "subnets")}
        props.update({"securityRules": rules, "defaultSecurityRules": default_rules(rid_),
                      "resourceGuid": old.get("resourceGuid") or net.new_guid()})
        for back in ("networkInterfaces", "subnets"):
            if old.get(back):
                props[back] = old[back]
        return {"properties": props}

    return net.put(ctx, NSG, rg, name, build, validate.network_name)


def _nsg_in_use(body: dict) -> None:
    props = body["properties"]
    users = [r["id"] for r in props.get("networkInterfaces", []) + props.get("subnets", [])]
    if users:
        raise ArmError(400, "InUseNetworkSecurityGroupCannotBeDeleted",
                       f"Network security group {body['id']} cannot be deleted because it is in use by the following "
                       f"resources: {', '.join(users)}. In order to delete the Network security group, remove the "
                       "association with the resource(s). To learn how to do this, see aka.ms/deletensg.")


def delete_nsg(ctx: Ctx, rg: str, name: str) -> Resp:
    return net.delete(ctx, NSG, rg, name, _nsg_in_use, lambda body: None)


def put_rule(ctx: Ctx, rg: str, nsg: str, name: str) -> Resp:
    def build(parent: dict, rule_id: str, existing: dict | None) -> dict:
        rule = build_rule(rule_id, clone(ctx.body or {}))
        others = [r for r in parent["properties"].get("securityRules", []) if r["name"].lower() != name.lower()]
        _check_conflicts(others + [rule])
        return rule

    return net.child_put(ctx, NSG, "securityRules", RULE, rg, nsg, name, build, validate.network_name)


def delete_rule(ctx: Ctx, rg: str, nsg: str, name: str) -> Resp:
    return net.child_delete(ctx, NSG, "securityRules", RULE, rg, nsg, name, lambda r: None, lambda r: None)
