"""The cluster's network layout (pure). The default (the seed guide's): every VM has a public IP; SuperNodes dial the
SuperLink's public address and the Fleet rule admits the client VMs' public IPs. `--private-clients`: the client
VMs have none; they go out through one NAT gateway on the subnet, dial the SuperLink's private address (in its
certificate's SANs), the Fleet rule admits the subnet, and SSH reaches them through the server (a jump host)."""

from __future__ import annotations

from flwrazure.errors import UsageError

FLAG, OTHER_FLAG = "--private-clients", "--public-clients"


def name(private: bool) -> str:
    """How status and list call the layout."""
    return "private-clients" if private else "public"


def resolve(asked: bool | None, recorded: bool | None, cluster: str) -> bool:
    """The layout of a create-cluster/up run: what was asked, else the recorded cluster's, else the default. A
    recorded cluster never changes layout in place: its client VMs would lose (or need) public IPs and its
    SuperNodes another SuperLink address, which Azure does not do to running VMs; the way out is a new cluster."""
    if recorded is None:
        return bool(asked)
    if asked is None or asked == recorded:
        return recorded
    have, want = (FLAG, OTHER_FLAG) if recorded else (OTHER_FLAG, FLAG)
    what = "no public IPs" if recorded else "public IPs"
    raise UsageError(f"cluster {cluster} was created with {have} (its client VMs have {what}) and a layout is not "
                     f"changed in place: re-run without {want}, or `flwrazure teardown --cluster {cluster}` and "
                     f"create it again with {want}.")


def route(row: dict, server: dict | None) -> tuple[str, str | None] | None:
    """Where an SSH connection to the VM of this row (inventory.vm_rows) goes: (its public address, None); or for a
    client VM without one, (its private address, the server's public address: the jump host). None when neither
    leads to it (no address yet, or the server has no public address)."""
    if row.get("public_ip"):
        return row["public_ip"], None
    if row.get("role") == "client" and row.get("private_ip") and server and server.get("public_ip"):
        return row["private_ip"], server["public_ip"]
    return None


def superlink_ip(server: dict, private: bool) -> str:
    """The address the cluster's SuperNodes dial: the server's private address when the clients are private (they
    have no public address the Fleet rule could name), else its public address, as the seed does."""
    return server["private_ip"] if private else server["public_ip"]


def fleet_sources(private: bool, subnet_prefix: str, client_ips: list[str | None],
                  silo_sources: tuple[str, ...] | list[str]) -> list[str]:
    """Who the Fleet rule admits: the client VMs (their public IPs, or the subnet when they are private) and the
    admitted silos' egress addresses (silos always dial the SuperLink's public address). Nothing wider."""
    clients = [subnet_prefix] if private else list(client_ips)
    if not all(clients):
        raise ValueError("a client VM without a public IP in the default layout")
    return sorted({*clients, *silo_sources})


def summary(private: bool, subnet_prefix: str, nat: dict | None, nat_ip: dict | None) -> dict:
    """The `network` object of status and create-cluster (docs/json.md) from the NAT gateway's and its IP's REST
    JSON (None when absent)."""
    address = ((nat_ip or {}).get("properties") or {}).get("ipAddress")
    return {"layout": name(private), "subnet": subnet_prefix,
            "nat_gateway": (nat or {}).get("name") if private else None,
            "nat_public_ip": address if private else None}
