"""Azure Spot on virtual machines: `priority`, `evictionPolicy` and `billingProfile.maxPrice` checked as the compute
RP checks them, `POST …/simulateEviction`, and the eviction and capacity faults.

Codes and messages are those of Azure's "Error messages for Azure Spot Virtual Machines and scale sets" page
(EvictionPolicyCanBeSetOnlyOnAzureSpotVirtualMachines, MaxPriceIsSupportedOnlyForAzureSpotVirtualMachines,
MaxPriceValueInvalid, SpotPriceGreaterThanProvidedMaxPrice, MaxPriceChangeNotAllowedForAllocatedVMs,
VMPriorityCannotBeApplied, AzureSpotIsNotSupportedForThisVMSize, SkuNotAvailable for missing Spot capacity). That
page gives no HTTP status; 400 is taken for bad input, 409 for what the VM's state forbids (as the compute RP's
other conflicts). Decided here, with no public evidence either way (docs/local-cloud.md, "Spot"):
- a Spot VM created without a billingProfile is stored with maxPrice -1 (the documented default) and without an
  evictionPolicy with Deallocate (the documented default);
- the operation named in SpotPriceGreaterThanProvidedMaxPrice is 'Create VM', 'Update VM' or 'Start VM';
- an evicted VM looks exactly like a deallocated one (PowerState/deallocated, provisioning succeeded): no public
  recording shows an eviction status in the instance view, so none is invented; the portal shows it "Stopped
  (deallocated)". Azure's own record of it (activity log, Resource Health) is not emulated;
- simulateEviction on a VM that is not Spot, or not running, answers 409 OperationNotAllowed (Azure refuses it; its
  wording is not quoted publicly);
- the eviction happens after the 30 s notice Azure's Scheduled Events give (scaled by the time scale); Azure says
  "within 30 minutes" of the call. The in-VM notice itself (IMDS) is not emulated.
"""

from __future__ import annotations

from flwrazure.localcloud.arm import catalog as cat
from flwrazure.localcloud.arm import timing, validate
from flwrazure.localcloud.arm.common import Ctx, Resp, provisioning_state
from flwrazure.localcloud.arm.errors import ArmError

VM = "Microsoft.Compute/virtualMachines"
PRIORITIES = {"regular": "Regular", "low": "Low", "spot": "Spot"}
POLICIES = {"deallocate": "Deallocate", "delete": "Delete"}
NOTICE_S = 30.0  # Scheduled Events' Preempt notice: "up to 30 seconds prior to the eviction"
SPOT_SHARE = 0.2  # the local price list's Spot meter: a fifth of the Linux pay-as-you-go price


def is_spot(props: dict | None) -> bool:
    return (props or {}).get("priority") in ("Spot", "Low")


def spot_price(catalog: dict, size: str) -> float:
    """USD per hour of the size's Spot meter in the local price list (the same figure /api/retail/prices lists)."""
    vcpus = next(int(v[1]) for k, v in catalog["vm_sizes"].items() if k.lower() == size.lower())
    return round(float((catalog.get("prices") or {}).get("vcpu_hour", 0.05)) * vcpus * SPOT_SHARE, 6)


def check(ctx: Ctx, name: str, size: str, props_in: dict, existing: dict | None, allocated: bool) -> dict:
    """The Spot fields to store for this PUT ({} for a regular VM), or the compute RP's refusal. existing: the
    stored VM's properties; allocated: whether it holds a host now (running, starting, stopped)."""
    old = existing or {}
    given = props_in.get("priority")
    priority = validate.enum(given, PRIORITIES, "VirtualMachinePriorityTypes", "properties.priority") \
        if given is not None else old.get("priority", None)
    if existing is not None and given is not None and priority != old.get("priority", "Regular"):
        if "priority" not in old and priority != "Regular":
            raise ArmError(400, "VMPriorityCannotBeApplied",
                           f"The specified priority value '{priority}' cannot be applied to the Virtual Machine "
                           f"'{name}' since no priority was specified when the Virtual Machine was created.")
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'priority' is not allowed.",
                       target="priority")
    spot = priority in ("Spot", "Low")
    policy_in = props_in.get("evictionPolicy")
    price_in = (props_in.get("billingProfile") or {}).get("maxPrice")
    if policy_in is not None and not spot:
        raise ArmError(400, "EvictionPolicyCanBeSetOnlyOnAzureSpotVirtualMachines",
                       "Eviction policy can be set only on Azure Spot Virtual Machines.", target="evictionPolicy")
    if price_in is not None and not spot:
        raise ArmError(400, "MaxPriceIsSupportedOnlyForAzureSpotVirtualMachines",
                       "Max price is supported only for Azure Spot Virtual Machines.",
                       target="billingProfile.maxPrice")
    if not spot:
        return {"priority": priority} if priority else {}
    if not cat.capabilities(ctx.catalog, size).get("LowPriorityCapable", True):
        raise ArmError(400, "AzureSpotIsNotSupportedForThisVMSize",
                       f"Azure Spot Virtual Machine is not supported for this VM size {size}.", target="vmSize")
    policy = validate.enum(policy_in, POLICIES, "VirtualMachineEvictionPolicyTypes", "properties.evictionPolicy") \
        if policy_in is not None else old.get("evictionPolicy", "Deallocate")
    if existing is not None and policy != old.get("evictionPolicy", "Deallocate"):
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'evictionPolicy' is not allowed.",
                       target="evictionPolicy")
    price = _max_price(price_in) if price_in is not None else (old.get("billingProfile") or {}).get("maxPrice", -1)
    was = (old.get("billingProfile") or {}).get("maxPrice", -1)
    if existing is not None and float(price) != float(was) and allocated:
        raise ArmError(409, "MaxPriceChangeNotAllowedForAllocatedVMs",
                       f"Max price change is not allowed when the VM '{name}' is currently allocated. Deallocate "
                       "and try again.", target="billingProfile.maxPrice")
    if existing is None or float(price) != float(was):
        check_price(ctx, "Create VM" if existing is None else "Update VM", size, price)
    return {"priority": priority, "evictionPolicy": policy, "billingProfile": {"maxPrice": price}}


def _max_price(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (value != -1 and value <= 0):
        raise ArmError(400, "MaxPriceValueInvalid",
                       "Invalid max price value. The only supported values for max price are -1 or a decimal greater "
                       "than zero. Max price value of -1 indicates the Azure Spot Virtual Machine will not be evicted "
                       "for price reasons.", target="billingProfile.maxPrice")
    return value


def check_price(ctx: Ctx, operation: str, size: str, price) -> None:
    current = spot_price(ctx.catalog, size)
    if price != -1 and float(price) < current:
        raise ArmError(400, "SpotPriceGreaterThanProvidedMaxPrice",
                       f"Unable to perform operation '{operation}' since the provided max price '{price} USD' is "
                       f"lower than the current spot price '{current} USD' for Azure Spot Virtual Machine size "
                       f"'{size}'.", target="billingProfile.maxPrice")


def check_capacity(ctx: Ctx, body: dict) -> None:
    """A create or start of a Spot VM when a capacity fault says the region has none for it: Azure's SkuNotAvailable
    (the code its Spot error page gives for "not enough Azure Spot Virtual Machine capacity"), before anything
    changes."""
    if not is_spot(body.get("properties")) or not ctx.faults.capacity_failure(body["id"]):
        return
    raise ArmError(409, "SkuNotAvailable",
                   f"The requested tier for resource '{body['id']}' is currently not available in location "
                   f"'{body['location']}' for subscription '{ctx.sub}'. Try another tier or deploy to a different "
                   "location.")


def simulate_eviction(ctx: Ctx, rg: str, name: str) -> Resp:
    from flwrazure.localcloud.arm import vms

    with ctx.store.lock:
        rec = vms._vm_or_404(ctx, rg, name)
        if not is_spot(rec["body"]["properties"]) or rec["meta"].get("power") != "running" \
                or provisioning_state(rec) in ("Creating", "Deleting"):
            why = "it is not an Azure Spot virtual machine" if not is_spot(rec["body"]["properties"]) else \
                f"the VM is {rec['meta'].get('power')}"
            raise ArmError(409, "OperationNotAllowed",
                           f"Operation 'simulateEviction' is not allowed on VM '{name}' since {why}.")
    schedule(ctx, rec["body"]["id"])
    return Resp(204)


def schedule(ctx: Ctx, vm_id: str) -> None:
    """Evict the VM after the Scheduled Events notice: deallocated (its disk kept, its host stopped) or deleted,
    as its eviction policy says."""
    from flwrazure.localcloud.arm import vms

    with ctx.store.lock:
        rec = ctx.store.get(vm_id)
        rec["meta"]["eviction_notice"] = True
        ctx.store.mark_dirty(resource=vm_id)
        loc = rec["body"]["location"]

    def evict() -> None:
        with ctx.store.lock:
            rec = ctx.store.get(vm_id)
            if rec is None or rec["meta"].pop("eviction_notice", None) is None or rec["meta"].get("power") != "running":
                return  # deleted, deallocated or restarted by its owner during the notice
            policy = rec["body"]["properties"].get("evictionPolicy", "Deallocate")
            rec["meta"]["power"] = "deallocating"
            ctx.store.mark_dirty(resource=vm_id)
        if policy == "Delete":
            vms.purge_vm(ctx, ctx.store.get(vm_id))
            return
        ctx.driver.stop(ctx, ctx.store.get(vm_id)["body"])
        with ctx.store.lock:
            rec = ctx.store.get(vm_id)
            rec["meta"].update(power="deallocated", evicted=True)
            ctx.store.mark_dirty(resource=vm_id)

    ctx.ops.start(provider="Microsoft.Compute", location=loc, resource_id=vm_id,
                  latency=NOTICE_S * timing.scale(ctx.config), work=evict)


def evict_matching(ctx: Ctx, rule: dict) -> list[str]:
    """An eviction fault: every running Spot VM whose id contains the rule's `path` is evicted as simulateEviction
    does (Azure reclaiming capacity). Returns their ids."""
    wanted = (rule.get("path") or "").lower()
    with ctx.store.lock:
        ids = [r["body"]["id"] for r in ctx.store.all_of_type(VM)
               if is_spot(r["body"]["properties"]) and r["meta"].get("power") == "running"
               and wanted in r["body"]["id"].lower()]
    for vm_id in ids:
        schedule(ctx, vm_id)
    return ids


def usage_counter(props: dict) -> str | None:
    """The usage a VM's vCPUs count against instead of its family's and the regional total: Spot (and Low) VMs
    count against the regional low-priority quota, whatever their power state (Azure: "The deallocated VMs will
    count against your quota")."""
    return "lowPriorityCores" if is_spot(props) else None

