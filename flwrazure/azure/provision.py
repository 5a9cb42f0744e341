"""create-cluster: converge a resource group to the planned cluster, concurrently and idempotently.

Dependency graph (critical path): resource group -> VNet | NSG | public IP -> NIC -> VM; with --private-clients
the VNet waits for the NAT gateway (its public IP -> the gateway), which its subnet names, and client VMs get no
public IP. Each VM's chain runs in parallel with the others; what exists already (and is ours) is left alone,
what failed is re-PUT, what is still in flight is waited for. Every PUT returns at once (polling=False); a Waiter reads one list per resource
kind per tick to learn when things finish."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from flwrazure import workers
from flwrazure.azure import inventory
from flwrazure.azure.errors import AzureError, translate
from flwrazure.azure.pacing import retry_after
from flwrazure.azure.target import Target
from flwrazure.azure.waiter import Waiter, WaitFailed, provisioning_state
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import names, resources, rules, spot
from flwrazure.plan.names import VmNames
from flwrazure.spec import ClusterSpec

NET = "Microsoft.Network"


@dataclass
class Run:
    target: Target
    spec: ClusterSpec
    public_key: str
    snap: dict[str, dict[str, dict]]
    waiter: Waiter
    progress: object
    writes: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # "kind/name" of each PUT sent, answered or not (Ctrl-C: may exist)
    abort: threading.Event = field(default_factory=threading.Event)
    machines: dict[str, tuple[dict, str]] = field(default_factory=dict)  # size -> (image, OS disk type)
    failed_extensions: dict[str, str] = field(default_factory=dict)  # VM -> what its failed extension said
    vms: list[VmNames] | None = None  # the VMs to converge, when not the cluster's (a silo's one VM)
    custom_data: str | None = None  # base64 cloud-init user data for new VMs (plan.userdata)
    _gate: threading.Lock = field(default_factory=threading.Lock)

    def sending(self, key: str) -> None:
        """Before a PUT: refused once the run is stopped, else counted in `sent` (no PUT leaves uncounted)."""
        with self._gate:
            if self.abort.is_set():
                raise FlwrazureError("interrupted")
            self.sent.append(key)

    def stop(self) -> None:
        """Ctrl-C: no PUT is sent after this returns; `sent` is then all that may exist."""
        with self._gate:
            self.abort.set()
        self.waiter.abort()

    def rid(self, arm_type: str, name: str) -> str:
        return resources.resource_id(self.target.subscription, self.spec.resource_group, arm_type, name)


def vm_plan(spec: ClusterSpec) -> list[VmNames]:
    return names.all_vms(spec.cluster, spec.clients)


def size_of(spec: ClusterSpec, v: VmNames) -> str:
    return spec.server_size if v.role == "server" else spec.client_size


def _succeeded_at_once(body: dict) -> dict | None:
    """The PUT's own answer when it already says Succeeded (Azure's network provider answers a NIC PUT so, with
    its private IP): nothing to wait for. None when it does not, or cannot be read REST-shaped."""
    try:
        return body if provisioning_state("", "", body) == "succeeded" else None
    except Exception:
        return None


def _put(run: Run, arm_type: str, name: str, body: dict):
    """A `put` for _ensure: the resource's REST JSON, sent raw through the pipeline (inventory.put_raw)."""
    rid = run.rid(arm_type, name)
    return lambda **kw: inventory.put_raw(run.target.resources, rid, body, kw.get("raw_response_hook"))


def _ensure(run: Run, kind: str, name: str, put, answer_is_final: bool = False) -> dict:
    """Converge one resource: keep ours if Succeeded, wait if in flight, (re)create if missing or failed.
    answer_is_final: the PUT's answer may already be Succeeded (NICs), then no status read is spent on it."""
    if run.abort.is_set():
        raise FlwrazureError("interrupted")
    existing = run.snap.get(kind, {}).get(name.lower())
    label = f"{inventory.LABELS[kind]} {name}"
    if existing is not None:
        if not names.is_ours(existing.get("tags"), run.spec.cluster, run.spec.cluster_id):
            raise UsageError(f"{label} already exists in resource group {run.spec.resource_group} and was not "
                             f"created by flwrazure for cluster {run.spec.cluster}: remove it, or choose another "
                             "--cluster or --resource-group.")
        try:
            state = provisioning_state(kind, name, existing)
        except Exception as exc:
            raise translate(exc, label) from exc
        if state == "succeeded" or (state == "failed" and kind == "vm" and _runs_despite_extension(run, name)):
            run.progress.advance(kind)
            return existing
        if state in ("creating", "updating"):
            return _wait(run, kind, name, label)
        if state == "deleting":
            run.waiter.gone(kind, name)
    hint: dict = {}

    def keep_retry_after(pipeline_response) -> None:
        hint["after"] = retry_after(pipeline_response.http_response.headers)

    try:
        run.sending(f"{kind}/{name}")
        answer = put(raw_response_hook=keep_retry_after)
        run.writes.append(f"{kind}/{name}")
    except Exception as exc:
        raise translate(exc, label) from exc
    if answer_is_final and (body := _succeeded_at_once(answer)) is not None:
        run.progress.advance(kind)
        return body
    return _wait(run, kind, name, label, time.monotonic() + hint["after"] if hint.get("after") else None)


def _wait(run: Run, kind: str, name: str, label: str, not_before: float | None = None) -> dict:
    try:
        body = run.waiter.ready(kind, name, not_before)
    except WaitFailed as exc:
        if kind == "vm" and exc.state == "failed" and exc.body and _runs_despite_extension(run, name):
            run.progress.advance(kind)
            return exc.body
        raise _failure(run, kind, name, label, exc) from None
    except Exception as exc:
        raise translate(exc, label) from exc
    run.progress.advance(kind)
    return body


# Azure reports a VM Failed when one of its extensions failed (one that Azure Policy or Defender added, say), while
# the VM itself runs: ProvisioningState/failed/VMExtensionProvisioningError (or another VMExtension* code) beside
# PowerState/running, and the extension's own status at level Error. Re-PUTting it processes the extension again
# and ends Failed again; the machine is fine for Flower.
def _runs_despite_extension(run: Run, name: str) -> bool:
    """True when the Failed VM runs and its failure is an extension's (recorded in run.failed_extensions)."""
    try:
        view = run.target.compute.virtual_machines.instance_view(run.spec.resource_group, name).as_dict()
    except Exception:
        return False
    codes = [s.get("code") or "" for s in view.get("statuses") or []]
    if "PowerState/running" not in codes:
        return False
    failed_exts = [e for e in view.get("extensions") or []
                   if any((s.get("level") or "").lower() == "error" for s in e.get("statuses") or [])]
    vm_says = next((s for s in view.get("statuses") or []
                    if (s.get("code") or "").startswith("ProvisioningState/failed/VMExtension")), None)
    if not failed_exts and vm_says is None:
        return False
    what = ", ".join(e.get("name", "?") for e in failed_exts) or "an extension"
    detail = " ".join(((vm_says or {}).get("message") or "").split())
    detail = detail if len(detail) <= 240 else detail[:239] + "…"
    run.failed_extensions[name] = f"{what} failed" + (f" ({detail})" if detail else "")
    return True


def _failure(run: Run, kind: str, name: str, label: str, exc: WaitFailed) -> FlwrazureError:
    """A resource ended Failed: find Azure's code (a VM's instance view carries it) and say what to do."""
    if kind == "vm":
        try:
            view = run.target.compute.virtual_machines.instance_view(run.spec.resource_group, name).as_dict()
            for status in view.get("statuses", []):
                code = status.get("code", "")
                if code.startswith("ProvisioningState/failed"):
                    parts = code.split("/")
                    return AzureError(label, parts[2] if len(parts) > 2 else "ProvisioningFailed",
                                      status.get("message") or status.get("displayStatus", ""))
        except Exception:  # the failure itself is what matters; its detail is best effort
            pass
    return AzureError(label, "ProvisioningFailed", f"provisioning ended {exc.state}.")


def _nat(run: Run) -> dict:
    """--private-clients: the NAT gateway's public IP, then the gateway (the subnet names it when it is made)."""
    s = run.spec
    tags = names.tags(s.cluster, cluster_id=s.cluster_id)
    ip_name, name = names.nat_public_ip(s.cluster), names.nat_gateway(s.cluster)
    pip = _ensure(run, "pip", ip_name, _put(run, f"{NET}/publicIPAddresses", ip_name,
                                            resources.public_ip(s.location, tags)))
    return _ensure(run, "nat", name, _put(run, f"{NET}/natGateways", name,
                                          resources.nat_gateway(s.location, tags, pip["id"])))


def _vnet(run: Run, nat_f: Future | None) -> dict:
    s = run.spec
    tags = names.tags(s.cluster, cluster_id=s.cluster_id)
    nat_id = nat_f.result()["id"] if nat_f is not None else None  # the subnet is born with its way out
    body = resources.vnet(s.location, tags, s.address_space, names.subnet(), s.subnet_prefix, nat_id)
    vnet = _ensure(run, "vnet", names.vnet(s.cluster), _put(run, f"{NET}/virtualNetworks", names.vnet(s.cluster),
                                                            body))
    found = next((sn for sn in vnet["properties"].get("subnets") or [] if sn["name"] == names.subnet()), None)
    if found is not None and not resources.subnet_matches(found, nat_id):
        # converge the subnet's outbound (a NAT gateway dissociated, default outbound access turned back on): a
        # private client VM has no other way out
        label = f"subnet {names.subnet()} of {inventory.LABELS['vnet']} {names.vnet(s.cluster)}"
        try:
            run.sending(f"subnet/{names.subnet()}")
            run.target.network.subnets.begin_create_or_update(
                s.resource_group, names.vnet(s.cluster), names.subnet(),
                resources.subnet(s.subnet_prefix, nat_id)).result()
            run.writes.append(f"subnet/{names.subnet()}")
        except FlwrazureError:
            raise
        except Exception as exc:
            raise translate(exc, label) from exc
    return vnet


def _nsg(run: Run) -> dict:
    s = run.spec
    ssh = rules.ssh_rule(s.ssh_sources, s.subnet_prefix)
    name = names.nsg(s.cluster)
    tags = names.tags(s.cluster, cluster_id=s.cluster_id)
    body = resources.nsg(s.location, tags, {ssh.name: rules.rule_body(ssh)})
    nsg = _ensure(run, "nsg", name, _put(run, f"{NET}/networkSecurityGroups", name, body))
    current = next((r for r in nsg["properties"].get("securityRules", []) if r["name"] == ssh.name), None)
    if not rules.matches(ssh, current):  # converge the SSH rule (e.g. the operator's address changed)
        try:
            run.target.network.security_rules.begin_create_or_update(
                s.resource_group, name, ssh.name, rules.rule_body(ssh)).result()
            run.writes.append(f"rule/{ssh.name}")
        except Exception as exc:
            raise translate(exc, f"security rule {ssh.name}") from exc
    return nsg


def _converge_idle_timeout(run: Run, name: str, pip: dict) -> dict:
    """A public IP made before flwrazure set the idle timeout (Azure's default 4 minutes) gets the longest one."""
    if (pip.get("properties") or {}).get("idleTimeoutInMinutes") == resources.IDLE_TIMEOUT_MINUTES:
        return pip
    label = f"{inventory.LABELS['pip']} {name}"
    body = resources.public_ip(run.spec.location, pip.get("tags") or {})
    try:
        inventory.put_raw(run.target.resources, run.rid(f"{NET}/publicIPAddresses", name), body)
        run.writes.append(f"pip/{name}")
        return run.waiter.ready("pip", name)
    except WaitFailed as exc:
        raise _failure(run, "pip", name, label, exc) from None
    except Exception as exc:
        raise translate(exc, label) from exc


def has_public_ip(spec: ClusterSpec, v: VmNames) -> bool:
    """Every VM has one, except the client VMs of a cluster with --private-clients (plan.layout)."""
    return not (spec.private_clients and v.role == "client")


def _chain(run: Run, v: VmNames, vnet_f: Future, nsg_f: Future) -> dict:
    s = run.spec
    tags = names.tags(s.cluster, v.role, s.cluster_id)
    pip = None
    if has_public_ip(s, v):
        pip = _ensure(run, "pip", v.public_ip, _put(run, f"{NET}/publicIPAddresses", v.public_ip,
                                                    resources.public_ip(s.location, tags)))
        pip = _converge_idle_timeout(run, v.public_ip, pip)
    vnet, nsg = vnet_f.result(), nsg_f.result()
    subnet_id = next(sn["id"] for sn in vnet["properties"]["subnets"] if sn["name"] == names.subnet())
    nic_body = resources.nic(s.location, tags, subnet_id, pip["id"] if pip else None, nsg["id"])
    nic = _ensure(run, "nic", v.nic, _put(run, f"{NET}/networkInterfaces", v.nic, nic_body), answer_is_final=True)
    image, disk_type = run.machines.get(size_of(s, v), (None, "Premium_LRS"))
    vm_body = resources.vm(s.location, tags, size_of(s, v), v.vm, s.admin_user, run.public_key, nic["id"],
                           v.os_disk, image, disk_type, run.custom_data,
                           spot.vm_fields(s.max_price) if s.spot and v.role == "client" else None)
    return _ensure(run, "vm", v.vm, _put(run, "Microsoft.Compute/virtualMachines", v.vm, vm_body))


def converge(run: Run) -> None:
    """Create what is missing; raise one error naming the first failure (and how many others failed)."""
    vms = run.vms if run.vms is not None else vm_plan(run.spec)
    # one thread per chain up to the product's cap (100 clients): chains mostly wait, and a second wave of chains
    # would double the wall time (bench: 100 clients took 2.7x the dependency chain with 64 threads)
    with workers.pool(min(128, len(vms) + 2), "provision") as pool:
        nat_f = pool.submit(_nat, run) if run.spec.private_clients else None
        vnet_f, nsg_f = pool.submit(_vnet, run, nat_f), pool.submit(_nsg, run)
        chains = [pool.submit(_chain, run, v, vnet_f, nsg_f) for v in vms]
        errors = []
        try:
            for f in [*([nat_f] if nat_f else []), vnet_f, nsg_f, *chains]:
                exc = f.exception()
                if exc is not None and not any(str(exc) == str(e) for e in errors):
                    errors.append(exc)
        except KeyboardInterrupt:
            run.stop()
            raise  # workers.pool cancels what has not started and does not wait for the rest
    if errors:
        first = errors[0]
        more = f" ({len(errors) - 1} other resource(s) failed too; re-run to retry them)" if len(errors) > 1 else ""
        if isinstance(first, FlwrazureError):
            first.args = (f"{first}{more}",)
            raise first
        raise translate(first, "cluster") from first
