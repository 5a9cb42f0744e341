"""Names and tags of everything a cluster owns. The seed guide's names are the defaults for cluster 'flower':
flower-server, flower-client-1..N."""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG_CLUSTER = "flwrazure-cluster"
TAG_ROLE = "flwrazure-role"
TAG_MANAGED = "flwrazure-managed"
TAG_ID = "flwrazure-cluster-id"  # the cluster's identity: a UUID made at its first create-cluster, kept in its state
TAG_CREATED_GROUP = "flwrazure-created-group"  # on a group create-cluster made: the cluster it made it for
# a cluster's (and a silo's) name: 1-20 lowercase letters, digits and '-', a letter first, no '-' last
NAME = re.compile(r"[a-z][a-z0-9-]{0,18}[a-z0-9]|[a-z]")
# a DNS host name (RFC 1123 labels, 253 characters at most), without a final dot: callers that take one add it
HOSTNAME = (r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
            r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


@dataclass(frozen=True)
class VmNames:
    vm: str
    role: str  # "server" | "client"
    index: int  # 0 for the server, 1..N for clients
    nic: str
    public_ip: str
    os_disk: str


def server(cluster: str) -> VmNames:
    return _vm(f"{cluster}-server", "server", 0)


def client(cluster: str, i: int) -> VmNames:
    return _vm(f"{cluster}-client-{i}", "client", i)


def _vm(name: str, role: str, index: int) -> VmNames:
    return VmNames(name, role, index, f"{name}-nic", f"{name}-ip", f"{name}-osdisk")


def all_vms(cluster: str, clients: int) -> list[VmNames]:
    return [server(cluster)] + [client(cluster, i) for i in range(1, clients + 1)]


def vnet(cluster: str) -> str:
    return f"{cluster}-vnet"


def subnet() -> str:
    return "default"


def nsg(cluster: str) -> str:
    return f"{cluster}-nsg"


def nat_gateway(cluster: str) -> str:
    """The NAT gateway of a cluster with private clients (--private-clients): their way out."""
    return f"{cluster}-nat"


def nat_public_ip(cluster: str) -> str:
    """The NAT gateway's own public IP: the one address the private clients' outbound traffic leaves from."""
    return f"{cluster}-nat-ip"


def default_resource_group(cluster: str) -> str:
    return f"{cluster}-rg"


def tags(cluster: str, role: str | None = None, cluster_id: str | None = None) -> dict[str, str]:
    out = {TAG_CLUSTER: cluster, TAG_MANAGED: "true"}
    if cluster_id:
        out[TAG_ID] = cluster_id
    if role:
        out[TAG_ROLE] = role
    return out


def is_ours(resource_tags: dict | None, cluster: str, cluster_id: str | None) -> bool:
    """The resource carries the cluster's identity. Two operators may give clusters the same name (the default is
    `flower`) in one subscription: the name alone proves nothing. A cluster recorded before identities existed
    (cluster_id None) owns what carries its name and no identity at all."""
    t = resource_tags or {}
    if cluster_id is None:
        return t.get(TAG_CLUSTER) == cluster and TAG_ID not in t
    return t.get(TAG_ID) == cluster_id


def created_group(group_tags: dict | None, cluster: str, cluster_id: str | None) -> bool:
    """The group carries what create-cluster put on the group it made for this cluster: the cluster's identity and
    the created-group tag naming it. A group deleted and made again by someone else, or made by another cluster,
    does not: only such a group may be deleted as a whole by the cluster's teardown."""
    t = group_tags or {}
    return is_ours(t, cluster, cluster_id) and t.get(TAG_CREATED_GROUP) == cluster


def other_identity(resource_tags: dict | None, cluster_id: str | None) -> str | None:
    """The identity of another flwrazure cluster the resource carries, if any (for messages)."""
    other = (resource_tags or {}).get(TAG_ID)
    return other if other and other != cluster_id else None


def owned(resources: list[dict], cluster: str, cluster_id: str | None) -> set[str]:
    """The ownership rule (lower-case ids): a resource is the cluster's when it carries the cluster's identity, or
    is a child of a resource that does (its id extends that resource's id: a VM's extensions, an NSG's rules),
    whatever tags the child has (Azure Policy adds untagged extensions to VMs)."""
    roots = {r["id"].lower() for r in resources if is_ours(r.get("tags"), cluster, cluster_id)}
    return {r["id"].lower() for r in resources if child_of(r["id"], roots) or r["id"].lower() in roots}


def child_of(resource_id: str, owner_ids: set[str]) -> bool:
    """Whether the id is below one of owner_ids (`…/virtualMachines/vm1/extensions/x` is below `…/vm1`)."""
    parent = parent_id(resource_id).lower()
    while parent:
        if parent in owner_ids:
            return True
        parent = parent_id(parent).lower()
    return False


def parent_id(resource_id: str) -> str:
    """The resource a child resource belongs to ('…/virtualMachines/vm/extensions/x' -> '…/virtualMachines/vm'); a
    top-level resource has none ('')."""
    parts = resource_id.rstrip("/").split("/")
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return ""
    after = len(parts) - low.index("providers") - 1  # namespace, then type/name pairs
    return "/".join(parts[:-2]) if after >= 5 and after % 2 == 1 else ""


def resolve_vm(cluster: str, clients: int, text: str) -> VmNames | None:
    """A VM of the cluster named in full (flower-client-2) or short (server, client-2, 2); None if no such VM."""
    vms = all_vms(cluster, clients)
    want = (text or "").strip().lower()
    for v in vms:
        short = v.vm[len(cluster) + 1:]
        if want in (v.vm.lower(), short.lower()) or (v.role == "client" and want == str(v.index)):
            return v
    return None
