"""open-ports: the seed guide's inbound rules, least privilege, converged by name (re-running writes nothing)."""

from __future__ import annotations

from flwrazure import ui
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import layout, names, rules, silo, versions
from flwrazure.workstation import state


def _with_me(target, sources: tuple[str, ...]) -> tuple[str, ...]:
    """--source me: the operator's address, detected as create-cluster detects it for SSH."""
    from flwrazure.workstation import operator

    try:
        me = operator.detect(target)
    except UsageError as exc:
        raise UsageError(f"--source me: {str(exc).replace('--ssh-source', '--source')}") from None
    return tuple(sorted({me if s == rules.ME else s for s in sources}))


def run(cluster: str, sources: tuple[str, ...] | None, close: bool, clients: int | None = None,
        allow_public: bool = False) -> dict:
    """clients: the client VMs the Fleet rule admits [default: the recorded count] (scale narrows it first).
    sources None: the recorded Control sources; 'any' among given ones only with allow_public."""
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect

    st = state.load(cluster)
    plan = versions.port_plan(st["flwr_version"])
    if sources is not None:  # refused before the cloud is asked anything
        rules.check_control_sources(sources, allow_public, plan.control, "--source")
    target = connect(st["cloud"], st["subscription"])
    rg, nsg_name = st["resource_group"], names.nsg(cluster)
    try:
        snap = inventory.snapshot(target, rg, ("nsg", "nic", "pip"))
    except Exception as exc:
        raise translate(exc, f"resource group {rg}") from exc
    nsg = snap["nsg"].get(nsg_name.lower())
    if nsg is None:
        raise FlwrazureError(f"cluster {cluster} has no network security group {nsg_name} in {rg}: run "
                             f"`flwrazure create-cluster --cluster {cluster}` first.")
    if not names.is_ours(nsg.get("tags"), cluster, st.get("cluster_id")):
        raise UsageError(f"network security group {nsg_name} in {rg} does not carry cluster {cluster}'s identity "
                         f"({names.TAG_ID}): its rules are never changed from here.")
    current = {r["name"]: r for r in nsg["properties"].get("securityRules", [])}
    changes: list[str] = []
    sec = target.network.security_rules
    if close:  # the VNet Deny stays: it opens nothing, and without it the client VMs reach Control again
        for name in (rules.FLEET, rules.CONTROL):
            if name in current:
                try:
                    sec.begin_delete(rg, nsg_name, name).result()
                except Exception as exc:
                    raise translate(exc, f"security rule {name}") from exc
                changes.append(f"removed {name}")
        state.update(cluster, {"control_sources": None})
        return {"cluster": cluster, "changes": changes, "rules": [],
                "kept": [name for name in (rules.CONTROL_VNET_DENY,) if name in current], "next": []}

    vms = names.all_vms(cluster, st["clients"] if clients is None else clients)
    server_nic = snap["nic"].get(vms[0].nic.lower())
    private = bool(st.get("private_clients"))  # the Fleet rule admits the subnet, not client public IPs
    client_ips = [] if private else [snap["pip"].get(v.public_ip.lower(), {}).get("properties", {}).get("ipAddress")
                                     for v in vms[1:]]
    if server_nic is None or not all(client_ips):
        raise FlwrazureError(f"cluster {cluster} is incomplete (missing server NIC or client public IPs): re-run "
                             f"`flwrazure create-cluster --cluster {cluster}` first.")
    server_ip = server_nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
    if sources is None:
        sources = tuple(st.get("control_sources") or st["ssh_sources"])
    if rules.ME in sources:
        sources = _with_me(target, sources)
    # the admitted silos' SuperNodes connect from their own egress addresses (flwrazure silo admit)
    fleet = layout.fleet_sources(private, st.get("subnet_prefix"), client_ips, silo.fleet_sources(st.get("silos") or {}))
    desired = rules.flower_rules(plan, fleet, sources, server_ip)
    for rule in desired:
        if rules.matches(rule, current.get(rule.name)):
            continue
        try:  # one at a time: concurrent writes to one NSG make Azure answer AnotherOperationInProgress
            sec.begin_create_or_update(rg, nsg_name, rule.name, rules.rule_body(rule)).result()
        except Exception as exc:
            raise translate(exc, f"security rule {rule.name}") from exc
        changes.append(f"{'updated' if rule.name in current else 'added'} {rule.name}")
    if any(r.is_open_to_any for r in desired):
        ui.warn(f"port {plan.control} is open to any address: anyone who reaches it can submit runs, i.e. run code "
                "on every VM of your cluster. Prefer --source <your-ip>.")
    state.update(cluster, {"control_sources": list(sources)})
    return {"cluster": cluster, "changes": changes, "kept": [],
            "rules": [{"name": r.name, "priority": r.priority, "port": r.port, "sources": list(r.sources),
                       "destination": r.destination, "access": r.access} for r in desired],
            "next": [f"flwr run <app-dir> {cluster}" if st.get("started") else f"flwrazure start --cluster {cluster}"]}
