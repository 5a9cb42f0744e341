"""The user's intent for a cluster, validated before anything touches a cloud. Every check raises UsageError
with one line: what is wrong and what would be right."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import asdict, dataclass, field

from flwrazure.errors import UsageError
from flwrazure.plan import names, versions

CLOUDS = ("azure", "local")
MAX_CLIENTS = 100
_CLUSTER = names.NAME
_RG = re.compile(r"[-\w.()]{1,90}")
_SIZE = re.compile(r"(Standard|Basic)_[A-Za-z0-9_]+", re.IGNORECASE)  # Azure's size names ignore case
_LOCATION = re.compile(r"[a-z][a-z0-9]{2,40}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# The adminUsername values the compute API refuses (InvalidParameter at the VM PUT), as listed under "Disallowed
# values" in the API reference of osProfile.adminUsername; Azure compares them case-insensitively.
RESERVED_USERS = frozenset({
    "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123", "a",
    "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server",
    "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5"})


@dataclass
class ClusterSpec:
    cluster: str = "flower"
    clients: int = 2
    cloud: str = "azure"
    subscription: str | None = None
    resource_group: str | None = None
    location: str = "eastus"
    server_size: str = "Standard_D2s_v3"
    client_size: str = "Standard_D2s_v3"
    admin_user: str = "azureuser"
    ssh_sources: tuple[str, ...] = ()
    flwr_version: str = versions.DEFAULT_VERSION
    allow_existing_group: bool = False
    address_space: str = "10.0.0.0/16"
    subnet_prefix: str = "10.0.0.0/24"
    extra: dict = field(default_factory=dict)
    cluster_id: str | None = None  # the cluster's identity (names.TAG_ID), set by create-cluster
    # --private-clients: client VMs without public IPs behind a NAT gateway (plan.layout); None: not said (a
    # recorded cluster keeps its layout, a new one gets the default), resolved by create-cluster
    private_clients: bool | None = None
    spot: bool = False  # client VMs are Azure Spot VMs (the server never is)
    max_price: float | None = None  # with spot: USD/hour at most; None = -1 (up to the pay-as-you-go price)
    # the options the server and client sizes came from (for messages; not recorded)
    size_flags: tuple[str, str] = ("--server-vm-size", "--client-vm-size")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ssh_sources"] = list(self.ssh_sources)
        del d["size_flags"]
        return d


def cluster_name(value: str) -> str:
    if not _CLUSTER.fullmatch(value or ""):
        raise UsageError(f"--cluster {value!r}: use 1-20 lowercase letters, digits and '-', starting with a letter "
                         "and not ending with '-' (e.g. flower, exp-2).")
    return value


def validate(spec: ClusterSpec) -> ClusterSpec:
    cluster_name(spec.cluster)
    if spec.cloud not in CLOUDS:
        raise UsageError(f"--cloud {spec.cloud!r}: choose 'azure' or 'local'.")
    if not 1 <= spec.clients <= MAX_CLIENTS:
        raise UsageError(f"--clients {spec.clients}: a cluster needs 1 to {MAX_CLIENTS} client VMs.")
    if spec.subscription is not None:
        try:
            uuid.UUID(spec.subscription)
        except ValueError:
            raise UsageError(f"--subscription {spec.subscription!r} is not a subscription ID "
                             "(a GUID such as 00000000-0000-0000-0000-000000000000).") from None
    spec.resource_group = spec.resource_group or names.default_resource_group(spec.cluster)
    if not _RG.fullmatch(spec.resource_group) or spec.resource_group.endswith("."):
        raise UsageError(f"--resource-group {spec.resource_group!r}: use up to 90 letters, digits, '-', '_', '.', "
                         "'(' or ')', not ending with '.'.")
    spec.location = spec.location.replace(" ", "").lower()
    if not _LOCATION.fullmatch(spec.location):
        raise UsageError(f"--location {spec.location!r} is not an Azure region name (e.g. eastus, westeurope).")
    for flag, size in zip(spec.size_flags, (spec.server_size, spec.client_size), strict=True):
        if not _SIZE.fullmatch(size or ""):
            raise UsageError(f"{flag} {size!r} is not a VM size name (e.g. Standard_D2s_v3).")
    if (spec.admin_user or "").lower() in RESERVED_USERS:
        raise UsageError(f"--admin-user {spec.admin_user!r} is a name Azure reserves (like admin, root, test2, "
                         "user5): choose another, e.g. azureuser.")
    if not _USER.fullmatch(spec.admin_user or ""):
        raise UsageError(f"--admin-user {spec.admin_user!r}: use 1-32 lowercase letters, digits, '_' or '-', "
                         "starting with a letter or '_' (e.g. azureuser).")
    versions.port_plan(spec.flwr_version)
    spec.max_price = max_price(spec.max_price, spec.spot)
    space = ipaddress.ip_network(spec.address_space)
    if not ipaddress.ip_network(spec.subnet_prefix).subnet_of(space):
        raise UsageError(f"subnet {spec.subnet_prefix} is outside the address space {spec.address_space}.")
    return spec


def max_price(value, spot: bool) -> float | None:
    """--max-price: only with --spot; -1 (up to the pay-as-you-go price) or a price above 0 in USD per hour with
    at most 5 decimals, as Azure takes it."""
    if value is None:
        return None
    hint = "give USD per hour above 0 with up to 5 decimals (e.g. 0.05), or -1 for up to the pay-as-you-go price"
    if not spot:
        raise UsageError(f"--max-price {value} needs --spot: it is the most a Spot client VM may cost ({hint}).")
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--max-price {value!r} is not a number: {hint}.") from None
    if price != -1 and not (0 < price < 1e6) or round(price, 5) != price:
        raise UsageError(f"--max-price {value}: {hint}.")
    return int(price) if price == -1 else price


# -- what `start` sends to the VMs' pip: it reaches shells, systemd units and pip's own option parser ----------
_HOSTNAME = re.compile(names.HOSTNAME + r"\.?")
# RFC 3986's characters minus the quotes; anything else (spaces, controls, quotes, backslash, `<>{}|^`) is refused
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_CLAUSE = r"(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_REQUIREMENT = re.compile(rf"{_NAME}(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?"
                          rf"(?:\s*{_CLAUSE}(?:\s*,\s*{_CLAUSE})*)?")
_DIRECT = re.compile(rf"({_NAME}(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?)\s*@\s*(\S+)")


def index_url(value: str | None, flag: str = "--index-url") -> str | None:
    """A package index URL the VMs may be given: http(s), a host name or IP address, only URL characters (no
    whitespace, quotes or control characters). Credentials in it (user:token@) are allowed; start keeps them out of
    argv and world-readable files."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    hint = "give an http(s) URL such as https://pypi.example.org/simple/"
    if not _URL_CHARS.fullmatch(value):
        bad = next((c for c in value if not _URL_CHARS.fullmatch(c)), "")
        raise UsageError(f"{flag}: {_shown(value)} contains {bad!r}, which a URL cannot hold: {hint} "
                         "(percent-encode such characters).")
    try:
        parts = urlsplit(value)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise UsageError(f"{flag}: {_shown(value)} is not a URL ({exc}): {hint}.") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{flag}: {_shown(value)} is not an http(s) URL: {hint}.")
    if not host:
        raise UsageError(f"{flag}: {_shown(value)} names no host: {hint}.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise UsageError(f"{flag}: {_shown(value)}: {host!r} is not a host name: {hint}.") from None
    del port  # parsed only to refuse a port that is not a number
    return value


def pip_requirement(value: str) -> str:
    """One --extra-pip value: a requirement pip takes as a package (name, extras, version clauses) or `name @ URL`;
    never something pip would read as an option (`--index-url=…`) or a local path."""
    hint = "give a package as pip takes it, e.g. numpy, scikit-learn>=1.3, torch==2.5.1 or pkg[extra]"
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value) or value != value.strip():
        raise UsageError(f"--extra-pip {value!r} is not a package requirement: {hint}.")
    direct = _DIRECT.fullmatch(value)
    if direct:
        index_url(direct.group(2), f"--extra-pip {direct.group(1)} @")
        return value
    if not _REQUIREMENT.fullmatch(value):
        raise UsageError(f"--extra-pip {value!r} is not a package requirement: {hint}.")
    return value


def _shown(url: str) -> str:
    """A URL as an error message may show it: without the password or token in it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        userinfo, sep, tail = rest.partition("@")
        if sep and "/" not in userinfo:
            return repr(f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}")
    return repr(url)


def packages(index: str | None, extra: list[str] | tuple[str, ...]) -> None:
    """start's --index-url and --extra-pip, checked before anything is created or sent."""
    index_url(index)
    for requirement in extra:
        pip_requirement(requirement)
