"""doctor's checks as pure functions: observed facts in, pass / fail (or skipped) with what was seen and the exact
fix out. commands/doctor.py gathers the facts (ARM, this machine, SSH to the VMs)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import asdict, dataclass

CERT_RENEW_DAYS = 30  # a SuperLink certificate closer than this to expiry fails the check
CLOCK_SKEW_S = 5.0  # more than this between the operator and a VM fails (TLS validity, auth timestamps, logs)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped (not applicable, or facts not gathered)
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def skipped(name: str, why: str) -> Check:
    return Check(name, None, why)


def vms_running(rows: list[dict], cluster: str) -> Check:
    down = [f"{r['vm']} ({r['state']})" for r in rows if r["state"] != "running"]
    if not down:
        return Check("vms running", True, f"{len(rows)} VM(s) running")
    paused = all(r["state"] in ("deallocated", "evicted") for r in rows if r["state"] != "running")
    fix = f"flwrazure resume --cluster {cluster}" if paused else \
        f"flwrazure create-cluster ... --cluster {cluster} (re-create missing VMs), then flwrazure resume"
    return Check("vms running", False, "not running: " + ", ".join(down), fix)


def client_outbound(subnet: dict | None, nat_gateway: str, fix: str) -> Check:
    """--private-clients: the client VMs' only way out (pip, apt, the app's downloads) is the NAT gateway on the
    subnet (REST JSON of the subnet; None: no subnet); a private subnet without it leaves them none."""
    name = "client outbound"
    if subnet is None:
        return Check(name, False, "the cluster's subnet is missing", fix)
    props = subnet.get("properties") or {}
    nat = ((props.get("natGateway") or {}).get("id") or "").rsplit("/", 1)[-1]
    if nat.lower() != nat_gateway.lower():
        found = f"it has {nat}" if nat else "it has none"
        return Check(name, False, f"NAT gateway {nat_gateway} is not on the subnet ({found}): the client VMs, which "
                     "have no public IP, cannot reach package indexes or anything outside the VNet", fix)
    return Check(name, True, f"through NAT gateway {nat_gateway}")


def services_active(services: dict[str, str], cluster: str) -> Check:
    """VM -> its Flower service state (active, inactive, failed, unreachable ...)."""
    bad = {vm: s for vm, s in services.items() if s != "active"}
    if not bad:
        return Check("services active", True, f"{len(services)} Flower service(s) active")
    return Check("services active", False, ", ".join(f"{vm}: {s}" for vm, s in bad.items()),
                 f"flwrazure start --cluster {cluster}   (restarts what is not running; "
                 f"`flwrazure logs {' '.join(bad)}` shows why it stopped)")


def supernodes_online(by_vm: dict[str, str], tails: dict[str, list[str]], cluster: str) -> Check:
    """by_vm: client VM -> its SuperNode's status at the SuperLink; tails: last log lines of those not online."""
    bad = {vm: s for vm, s in by_vm.items() if s != "online"}
    if not bad:
        return Check("supernodes online", True, f"{len(by_vm)} SuperNode(s) online")
    parts = []
    for vm, s in bad.items():
        tail = " | ".join(line.strip() for line in tails.get(vm, [])[-3:] if line.strip())
        parts.append(f"{vm}: {s}" + (f" (last log: {tail})" if tail else ""))
    return Check("supernodes online", False, "; ".join(parts),
                 f"flwrazure start --cluster {cluster}   (or `flwrazure logs {' '.join(bad)}`)")


def _inside(address: str, sources: list[str]) -> bool:
    ip = ipaddress.ip_address(address)
    for src in sources:
        if src in ("*", "Internet", "any"):
            return True
        try:
            if ip in ipaddress.ip_network(src, strict=False):
                return True
        except ValueError:
            continue
    return False


def address_allowed(what: str, operator_ip: str | None, sources: list[str] | None, fix: str) -> Check:
    """Is the operator's current public address inside the rule's sources (SSH, Control)?"""
    name = f"your address allowed ({what})"
    if operator_ip is None:
        return skipped(name, "your public address could not be detected")
    if sources is None:
        return skipped(name, f"no {what} rule")
    if _inside(operator_ip, sources):
        return Check(name, True, f"{operator_ip} is inside {', '.join(sources)}")
    return Check(name, False, f"your address {operator_ip} is not among {', '.join(sources)} (laptops move)", fix)


def control_rule(present: bool, cluster: str, operator_ip: str | None) -> Check:
    if present:
        return Check("control rule present", True, "the Control port's inbound rule exists")
    return Check("control rule present", False, "no inbound rule for the Control port: `flwr` cannot reach the "
                 "SuperLink", f"flwrazure open-ports --cluster {cluster} --source {operator_ip or '<your-ip>'}")


def control_reachable(outcome: str, address: str, cluster: str, operator_ip: str | None) -> Check:
    """outcome of a TCP connect to the SuperLink's Control port: open, timeout, refused."""
    if outcome == "open":
        return Check("control port reachable", True, f"{address} answers")
    why = {"timeout": "no answer (a rule drops it: your address is not allowed?)",
           "refused": "refused (the SuperLink is not listening: service stopped?)"}.get(outcome, outcome)
    return Check("control port reachable", False, f"{address}: {why}",
                 f"flwrazure open-ports --cluster {cluster} --source {operator_ip or '<your-ip>'}"
                 if outcome == "timeout" else f"flwrazure start --cluster {cluster}")


def certificate(sans: set[str] | None, not_after: dt.datetime | None, host: str | None, now: dt.datetime,
                cluster: str) -> Check:
    """The SuperLink certificate (this machine's copy): valid for the address in the flwr connection, not near
    its end."""
    name = "superlink certificate"
    if sans is None or not_after is None:
        return Check(name, False, "no SuperLink certificate in the cluster's folder",
                     f"flwrazure start --cluster {cluster}")
    left = not_after - now
    days = left.total_seconds() / 86400
    if host and host not in sans:
        return Check(name, False, f"not valid for {host} (it names {', '.join(sorted(sans))})",
                     f"flwrazure start --cluster {cluster}   (re-issues it for the VM's addresses)")
    if days < CERT_RENEW_DAYS:
        when = "expired" if days < 0 else f"expires in {days:.1f} days"
        return Check(name, False, f"{when} ({not_after:%Y-%m-%d %H:%M} UTC)",
                     f"flwrazure doctor --cluster {cluster} --renew-cert   (SuperNodes keep working)")
    return Check(name, True, f"valid for {host or 'its addresses'} until {not_after:%Y-%m-%d} ({days:.0f} days)")


def flwr_cli(local: str | None, cluster_version: str) -> Check:
    from flwrazure.plan.versions import same_minor

    want = ".".join(cluster_version.split(".")[:2])
    if local is None:
        return Check("flwr cli version", False, "no flwr CLI on your PATH", f"pip install flwr=={cluster_version}")
    if not same_minor(local, cluster_version):
        return Check("flwr cli version", False, f"your flwr is {local}; the cluster runs {cluster_version} (flwr "
                     f"needs the same {want} release)", f"pip install flwr=={cluster_version}")
    return Check("flwr cli version", True, f"flwr {local} matches the cluster's {want}")


def connection(entry: dict | None, address: str, root: str | None, cluster: str, where: str) -> Check:
    """The user's `[superlink.<cluster>]` (or the app's federation): present, same address, same trust."""
    name = "flwr connection"
    fix = f"flwrazure start --cluster {cluster}   (rewrites it; everything else in the file is kept)"
    if entry is None:
        return Check(name, False, f"no [superlink.{cluster}] in {where}", fix)
    problems = []
    if entry.get("address") != address:
        problems.append(f"address {entry.get('address')} (the SuperLink is {address})")
    if root and entry.get("root-certificates") != root:
        problems.append(f"root-certificates {entry.get('root-certificates')} (want {root})")
    if not root and not entry.get("insecure"):
        problems.append("not marked insecure (the cluster runs without TLS)")
    if problems:
        return Check(name, False, "; ".join(problems), fix)
    return Check(name, True, f"[superlink.{cluster}] points at {address}")


def clock_skew(offsets: dict[str, float], limit: float = CLOCK_SKEW_S) -> Check:
    """offsets: VM -> its clock minus this machine's (seconds, round trip halved)."""
    if not offsets:
        return skipped("clock skew", "no VM answered")
    worst_vm = max(offsets, key=lambda vm: abs(offsets[vm]))
    worst = offsets[worst_vm]
    if abs(worst) > limit:
        return Check("clock skew", False, f"{worst_vm} is {worst:+.1f} s off your clock (more than {limit:g} s)",
                     "flwrazure ssh --all -- 'timedatectl status'   (enable NTP: sudo timedatectl set-ntp true; "
                     "and check your own clock)")
    return Check("clock skew", True, f"within {abs(worst):.1f} s of your clock")


def offset(local_before: float, remote: float, local_after: float) -> float:
    """A remote clock's offset from one round trip (NTP's midpoint estimate)."""
    return remote - (local_before + local_after) / 2


def summary(checks: list[Check]) -> tuple[int, int, int]:
    """(passed, failed, skipped)."""
    return (sum(1 for c in checks if c.ok is True), sum(1 for c in checks if c.ok is False),
            sum(1 for c in checks if c.ok is None))
