"""Azure's input rules (names, prefixes, ports, priorities) as pure functions raising ArmError with Azure's codes."""

from __future__ import annotations

import ipaddress
import re

from flwrazure.localcloud.arm.errors import ArmError

_NETWORK_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?")
_RG_NAME = re.compile(r"[-\w.()]{1,90}")
_VM_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?")
_LINUX_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
_USERNAME = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")
RESERVED_USERNAMES = {
    "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123", "a",
    "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server",
    "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5",
}
SERVICE_TAGS = {"*", "virtualnetwork", "azureloadbalancer", "internet"}
PROTOCOLS = {"tcp": "Tcp", "udp": "Udp", "icmp": "Icmp", "esp": "Esp", "ah": "Ah", "*": "*"}


def resource_group_name(name: str) -> None:
    bad = sorted({c for c in name if not (c.isalnum() or c in "-_.()")})
    if not name or len(name) > 90 or bad or name.endswith(".") or not _RG_NAME.fullmatch(name):
        listed = "".join(bad) or name[-1:]
        raise ArmError(400, "InvalidResourceGroup",
                       f"The provided resource group name '{name}' has these invalid characters: '{listed}'. "
                       "The name can only be a letter, digit, '-', '.', '(', ')' or '_'.")


def network_name(name: str, arm_type: str) -> None:
    if not _NETWORK_NAME.fullmatch(name or ""):
        raise ArmError(400, "InvalidResourceName",
                       f"Resource name {name} is invalid. The name can be up to 80 characters long. It must begin "
                       "with a word character, and it must end with a word character or with '_'. The name may "
                       "contain word characters or '.', '-', '_'.", target=arm_type)


def vm_name(name: str) -> None:
    if not _VM_NAME.fullmatch(name or ""):
        raise ArmError(400, "InvalidParameter",
                       f"Virtual machine name '{name}' is invalid: 1-64 characters, letters, digits, '-', '.' "
                       "and '_', starting with a letter or digit and not ending with '.' or '-'.",
                       target="vmName")


def computer_name(name: str) -> None:
    if not _LINUX_HOSTNAME.fullmatch(name or ""):
        raise ArmError(400, "InvalidParameter",
                       f"Linux host name '{name}' cannot exceed 64 characters in length or contain the following "
                       "characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?.",
                       target="computerName")


def admin_username(name: str) -> None:
    if not name:
        raise ArmError(400, "InvalidParameter", "Required parameter 'adminUsername' is missing (null).",
                       target="adminUsername")
    if name.lower() in RESERVED_USERNAMES or not _USERNAME.fullmatch(name):
        raise ArmError(400, "InvalidParameter", f"The Admin Username specified is not allowed: '{name}'.",
                       target="adminUsername")


def cidr(prefix: str, owner: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A canonical CIDR; Azure rejects host bits (InvalidCIDRNotation) and garbage (InvalidAddressPrefixFormat)."""
    try:
        loose = ipaddress.ip_network(prefix, strict=False)
    except (ValueError, TypeError):
        raise ArmError(400, "InvalidAddressPrefixFormat",
                       f"Address prefix {prefix} of resource {owner} is not formatted correctly. It should follow "
                       "CIDR notation, for example 10.0.0.0/24.") from None
    if "/" not in str(prefix) or str(loose) != str(prefix):
        raise ArmError(400, "InvalidCIDRNotation",
                       f"The address prefix {prefix} in resource {owner} has an invalid CIDR notation. For the "
                       f"given prefix length, the address prefix should be {loose}.")
    return loose


def rule_prefix(value: str, rule: str) -> None:
    if isinstance(value, str) and value.lower() in SERVICE_TAGS:
        return
    try:
        ipaddress.ip_network(value, strict=False)
    except (ValueError, TypeError):
        raise ArmError(400, "SecurityRuleInvalidAddressPrefix",
                       f"Security rule {rule} has invalid Address prefix. Value provided: {value}") from None


def port_range(value: str, rule: str) -> None:
    text = str(value)
    if text == "*":
        return
    parts = text.split("-")
    ok = 1 <= len(parts) <= 2 and all(p.isdigit() and 0 <= int(p) <= 65535 for p in parts)
    if ok and len(parts) == 2 and int(parts[0]) > int(parts[1]):
        ok = False
    if not ok:
        raise ArmError(400, "SecurityRuleInvalidPortRange",
                       f"Security rule {rule} has invalid Port range. Value provided: {text}. Value should be an "
                       "integer OR integer range with '-' delimiter. Valid range 0-65535.")


def priority(value, rule: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 4096:
        raise ArmError(400, "SecurityRuleInvalidPriority",
                       f"Security rule {rule} has invalid priority. Value provided: {value}. "
                       "Allowed range 100-4096.")
    return value


def enum(value, allowed: dict[str, str], field: str, path: str) -> str:
    """Azure enums are case-insensitive on input and canonical on output."""
    canon = allowed.get(str(value).lower()) if value is not None else None
    if canon is None:
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request.", details=[{
            "code": "InvalidJson", "message": f"Error converting value '{value}' to type '{field}'. Path '{path}'."}])
    return canon


def required(value, name: str, path: str):
    if value in (None, ""):
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request.", details=[{
            "code": "MissingJsonProperty", "message": f"Required property '{name}' not found. Path '{path}'."}])
    return value
