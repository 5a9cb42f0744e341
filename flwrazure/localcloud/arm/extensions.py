"""VM extensions that Azure Policy / Microsoft Defender add to new VMs by themselves (config knob
`policy_extensions`, e.g. ["AzurePolicyforLinux"], off by default).

Subscriptions with the guest-configuration policy initiative or Defender for Servers get a `deployIfNotExists`
extension on every new VM, without the tags the VM's creator gave it. It is a child resource
(Microsoft.Compute/virtualMachines/extensions, id `<vm id>/extensions/<name>`): GET-able under the VM, listed in
the VM's `resources`, listed in the group's resource list under the name `<vm>/<extension>`, and deleted with the VM
(a tool that deletes only what carries its tag finds an untagged stranger in its group)."""

from __future__ import annotations

from flwrazure.localcloud.arm.common import Ctx, Resp, clone, page, require_group, rid
from flwrazure.localcloud.arm.errors import ArmError, not_found

VM = "Microsoft.Compute/virtualMachines"
EXT = "Microsoft.Compute/virtualMachines/extensions"
# name -> (publisher, type, typeHandlerVersion), as those policies deploy them
KNOWN = {
    "AzurePolicyforLinux": ("Microsoft.GuestConfiguration", "ConfigurationforLinux", "1.0"),
    "MDE.Linux": ("Microsoft.Azure.AzureDefenderForServers", "MDE.Linux", "1.0"),
    "AzureMonitorLinuxAgent": ("Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.0"),
}


def check_config(value) -> None:
    """Refuse an unknown name when the knob is set (so a typo does not silently attach nothing)."""
    if value in (None, False):
        return
    if not isinstance(value, list) or any(name not in KNOWN for name in value):
        raise ArmError(400, "InvalidConfig", f"policy_extensions must be a list of {', '.join(sorted(KNOWN))}.")


def body(vm: dict, name: str) -> dict:
    publisher, kind, version = KNOWN[name]
    return {"name": name, "id": f"{vm['id']}/extensions/{name}", "type": EXT, "location": vm["location"],
            "properties": {"autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": True,
                           "provisioningState": "Succeeded", "publisher": publisher, "type": kind,
                           "typeHandlerVersion": version, "settings": {}}}


def attach_policy(ctx: Ctx, vm_id: str) -> None:
    """A new VM just reached Succeeded: the policies' extensions appear on it (untagged)."""
    wanted = ctx.config.get("policy_extensions") or []
    with ctx.store.lock:
        vm = ctx.store.get(vm_id)
        if vm is None or not wanted:
            return
        for name in wanted:
            ext = body(vm["body"], name)
            if ctx.store.get(ext["id"]) is None:
                ctx.store.put(ext["id"], ext, {})
        vm["body"]["resources"] = [clone(e["body"]) for e in of_vm(ctx, vm_id)]
        ctx.store.mark_dirty(resource=vm_id)


def of_vm(ctx: Ctx, vm_id: str) -> list[dict]:
    prefix = f"{vm_id.lower()}/extensions/"
    return [rec for key, rec in ctx.store.resources.items() if key.startswith(prefix)]


def purge(ctx: Ctx, vm_id: str) -> None:
    """The VM is being deleted: its extensions go with it."""
    with ctx.store.lock:
        for rec in of_vm(ctx, vm_id):
            ctx.store.delete(rec["body"]["id"])


def _vm(ctx: Ctx, rg: str, vm: str) -> dict:
    require_group(ctx, rg)
    rec = ctx.store.get(rid(ctx.sub, rg, VM, vm))
    if rec is None:
        raise not_found(VM, vm, rg)
    return rec


def get(ctx: Ctx, rg: str, vm_name: str, name: str) -> Resp:
    vm = _vm(ctx, rg, vm_name)
    rec = ctx.store.get(f"{vm['body']['id']}/extensions/{name}")
    if rec is None:
        raise ArmError(404, "NotFound", "The entity was not found in this Azure location.")  # Compute's own 404
    return Resp(200, rec["body"])


def list_(ctx: Ctx, rg: str, vm_name: str) -> Resp:
    vm = _vm(ctx, rg, vm_name)
    return page(ctx, [rec["body"] for rec in of_vm(ctx, vm["body"]["id"])])
