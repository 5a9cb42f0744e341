"""Names and tags of everything a cluster owns. The seed guide's names are the defaults for cluster 'flower':
flower-server, flower-client-1..N."""

from __future__ import annotations

from dataclasses import dataclass

TAG_CLUSTER = "flwrazure-cluster"
TAG_ROLE = "flwrazure-role"
TAG_MANAGED = "flwrazure-managed"


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


def default_resource_group(cluster: str) -> str:
    return f"{cluster}-rg"


def tags(cluster: str, role: str | None = None) -> dict[str, str]:
    out = {TAG_CLUSTER: cluster, TAG_MANAGED: "true"}
    if role:
        out[TAG_ROLE] = role
    return out


def is_ours(resource_tags: dict | None, cluster: str) -> bool:
    return (resource_tags or {}).get(TAG_CLUSTER) == cluster


def resolve_vm(cluster: str, clients: int, text: str) -> VmNames | None:
    """A VM of the cluster named in full (flower-client-2) or short (server, client-2, 2); None if no such VM."""
    vms = all_vms(cluster, clients)
    want = (text or "").strip().lower()
    for v in vms:
        short = v.vm[len(cluster) + 1:]
        if want in (v.vm.lower(), short.lower()) or (v.role == "client" and want == str(v.index)):
            return v
    return None
