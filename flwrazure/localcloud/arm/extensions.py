"""VM extensions that Azure Policy / Microsoft Defender add to new VMs by themselves (config knob
`policy_extensions`, e.g. ["AzurePolicyforLinux"], off by default).

Subscriptions with the guest-configuration policy initiative or Defender for Servers get a `deployIfNotExists`
extension on every new VM, without the tags the VM's creator gave it. It is a child resource
(Microsoft.Compute/virtualMachines/extensions, id `<vm id>/extensions/<name>`): GET-able under the VM, listed in
the VM's `resources`, listed in the group's resource list under the name `<vm>/<extension>`, and deleted with the VM
(a tool that deletes only what carries its tag finds an untagged stranger in its group).

`extension_failures` (config knob, e.g. [{"vm": "flower-client-1", "extension": "MDE.Linux", "message": "..."}]):
that extension fails on that VM, as a policy's or Defender's extension sometimes does on Azure. The VM keeps
running, yet Azure reports it provisioningState Failed: its instance view says
`ProvisioningState/failed/VMExtensionProvisioningError` (level Error, "Provisioning failed", a message naming the
extension, its publisher and type) beside `PowerState/running`, and lists the extension with a status of level
Error; the extension itself is Failed. A later PUT of the VM processes its extensions again, so its operation ends
Failed with the same code while the extension still fails (Azure does not clear it by itself)."""

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


FAILED_CODE = "VMExtensionProvisioningError"


def check_failures(value) -> None:
    if value in (None, False, []):
        return
    if not isinstance(value, list) or any(not isinstance(r, dict) or not isinstance(r.get("vm"), str)
                                          or r.get("extension") not in KNOWN for r in value):
        raise ArmError(400, "InvalidConfig", "extension_failures must be a list of {\"vm\": NAME, \"extension\": "
                       f"one of {', '.join(sorted(KNOWN))}, \"message\": TEXT}}.")


def _failure_for(ctx: Ctx, vm_name: str) -> dict | None:
    for rule in ctx.config.get("extension_failures") or []:
        if rule["vm"].lower() == vm_name.lower():
            return rule
    return None


def failure_message(rule: dict) -> str:
    publisher, kind, _ = KNOWN[rule["extension"]]
    detail = rule.get("message") or "Enable failed: the extension's handler exited with code 1."
    return (f"VM has reported a failure when processing extension '{rule['extension']}' (publisher '{publisher}' "
            f"and type '{kind}'). Error message: '{detail}'. More information on troubleshooting is available at "
            "https://aka.ms/VMExtensionLinuxTroubleshoot.")


def put_failure(ctx: Ctx, vm_id: str, vm_name: str) -> ArmError | None:
    """A PUT on a VM whose extension fails ends Failed (the extension is processed again and fails again)."""
    rule = _failure_for(ctx, vm_name)
    if rule is None or ctx.store.get(vm_id) is None:
        return None
    return ArmError(200, FAILED_CODE, failure_message(rule))


def apply_failures(ctx: Ctx, vm_id: str | None = None) -> None:
    """Fail the configured extensions of running, provisioned VMs (all, or one): extension Failed, VM Failed with
    Azure's code and message, power unchanged."""
    if not ctx.config.get("extension_failures"):
        return
    with ctx.store.lock:
        recs = [ctx.store.get(vm_id)] if vm_id else list(ctx.store.of_type(VM))
        for vm in recs:
            if vm is None or not vm["meta"].get("booted") or vm["meta"].get("power") != "running":
                continue
            rule = _failure_for(ctx, vm["body"]["name"])
            if rule is None:
                continue
            ext = body(vm["body"], rule["extension"])
            ext["properties"]["provisioningState"] = "Failed"
            ctx.store.put(ext["id"], ext, {"message": failure_message(rule)})
            vm["body"]["resources"] = [clone(e["body"]) for e in of_vm(ctx, vm["body"]["id"])]
            vm["body"]["properties"]["provisioningState"] = "Failed"
            vm["meta"]["error"] = {"code": FAILED_CODE, "message": failure_message(rule)}
            ctx.store.mark_dirty(resource=vm["body"]["id"])


def instance_views(ctx_store, vm_id: str) -> list[dict]:
    """The instance view's `extensions`: each extension's handler type and its status (Error when it failed)."""
    out = []
    prefix = f"{vm_id.lower()}/extensions/"
    for key, rec in ctx_store.resources.items():
        if not key.startswith(prefix):
            continue
        props = rec["body"]["properties"]
        failed = props.get("provisioningState") == "Failed"
        status = ({"code": "ProvisioningState/failed/1", "level": "Error", "displayStatus": "Provisioning failed",
                   "message": rec["meta"].get("message", "")} if failed else
                  {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"})
        out.append({"name": rec["body"]["name"], "type": f"{props['publisher']}.{props['type']}",
                    "typeHandlerVersion": props["typeHandlerVersion"], "statuses": [status]})
    return out
