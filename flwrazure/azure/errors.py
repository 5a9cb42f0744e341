"""Azure's errors, told as the user needs them: which resource, Azure's code, and what to do next."""

from __future__ import annotations

import re

from flwrazure.errors import FlwrazureError, UsageError

NEXT_STEP = {
    "OperationNotAllowed": "request a quota increase (Azure portal > Quotas) or use fewer/smaller VMs",
    "SkuNotAvailable": "choose another --vm-size or --location (`az vm list-skus -l <region>` lists them)",
    "ResourceGroupBeingDeleted": "wait until the previous teardown has finished, then re-run",
    "AuthorizationFailed": "ask for the Contributor role on the subscription or resource group",
    "AllocationFailed": "Azure has no capacity for this size there right now: re-run later, or change "
                        "--vm-size/--location",
    "ZonalAllocationFailed": "Azure has no capacity for this size there right now: re-run later",
    "PublicIPCountLimitReached": "{ip_quota}",
    "StaticPublicIPCountLimitReached": "{ip_quota}",
    "IPv4StandardSkuPublicIpCountLimitReached": "{ip_quota}",
    "ResourceGroupDeletionBlocked": "see what is left in the group and why it could not be deleted (Azure portal > "
                                    "the group > Activity log, or `az resource list -g <group>`), remove the "
                                    "blocker, then re-run `flwrazure teardown`",
    "InvalidAuthenticationToken": "sign in again (`az login`)",
    "ExpiredAuthenticationToken": "sign in again (`az login`)",
    "InvalidAuthenticationTokenTenant": "you are signed in to another tenant than the subscription's: "
                                        "`az login --tenant <the subscription's tenant>` (or set AZURE_TENANT_ID), "
                                        "or pass the --subscription of the tenant you are signed in to",
    "RequestDisallowedByPolicy": "an Azure Policy assignment forbids this (the message names it): ask the "
                                 "subscription's owner for an exemption, or choose what it allows (e.g. another "
                                 "--location or --vm-size); re-running alone will not help",
    "LinkedAuthorizationFailed": "you may write this resource but not use one it links to (a subnet to join, a "
                                 "public IP or NSG to attach): ask for Network Contributor or Contributor on the "
                                 "resource group that holds the linked resource",
    "InvalidParameter": "Azure refused a value (named in the message): change that option, then re-run",
    "MissingSubscriptionRegistration": "register the resource provider: `az provider register --namespace "
                                       "{namespace}` (needs Contributor or Owner on the subscription; the Azure SDK "
                                       "tried and could not), wait until `az provider show -n {namespace}` says "
                                       "Registered, then re-run",
}
# The public-IP counters a full one's code names (the network usages API's names, for `az quota`)
IP_COUNTERS = {"PublicIPCountLimitReached": "PublicIPAddresses",
               "StaticPublicIPCountLimitReached": "StaticPublicIPAddresses",
               "IPv4StandardSkuPublicIpCountLimitReached": "StandardSkuPublicIpAddresses"}
DEFAULT_NEXT = "re-run the same command: it resumes where it stopped"


def next_step(code: str, message: str) -> str:
    """What to do about an Azure error code (the namespace of MissingSubscriptionRegistration from its message)."""
    step = NEXT_STEP.get(code, DEFAULT_NEXT)
    if "{namespace}" in step:
        found = re.search(r"namespace '([^']+)'", message or "")
        step = step.replace("{namespace}", found.group(1) if found else "<the namespace in the message>")
    if step == "{ip_quota}":
        counter = IP_COUNTERS[code]
        limit = re.search(r"more than (\d+)", message or "")
        wanted = f"value={int(limit.group(1)) + 1}" if limit else "value=<more than today's limit>"
        step = ("the region's limit of public IPs is reached: free some (`flwrazure teardown --cluster NAME` "
                "releases another cluster's; `az network public-ip list --query \"[?ipConfiguration==null].id\"` "
                "lists unattached ones to delete), or raise it (Azure portal > Quotas > Networking, or `az quota "
                f"update --resource-name {counter} --scope /subscriptions/<subscription>/providers/Microsoft.Network/"
                f"locations/<region> --limit-object {wanted} --resource-type PublicIpAddresses`), then re-run")
    return step


class AzureError(FlwrazureError):
    def __init__(self, resource: str, code: str, message: str):
        step = next_step(code, message)
        first = " ".join(message.split())
        if len(first) > 300:
            first = first[:297] + "..."
        super().__init__(f"{resource}: Azure refused ({code}): {first} Next: {step}.", code=f"azure.{code}")
        self.resource, self.code = resource, code
        self.retry = step == DEFAULT_NEXT


def translate(exc: BaseException, resource: str) -> FlwrazureError:
    """Map an SDK exception to a product error (ClientAuthenticationError -> bad credentials, exit 2)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(exc, FlwrazureError):
        return exc
    if isinstance(exc, ClientAuthenticationError):
        code = getattr(getattr(exc, "error", None), "code", None)
        if code == "InvalidAuthenticationTokenTenant":
            message = getattr(exc.error, "message", None) or str(exc)
            first = " ".join(message.split())[:300]
            return UsageError(f"{resource}: Azure refused your sign-in ({code}): {first} Next: "
                              f"{next_step(code, message)}.")
        text = " ".join(str(exc).split())[:300]
        return UsageError(f"Azure did not accept your credentials ({text}). Run `az login`, or set AZURE_TENANT_ID, "
                          "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET.")
    if isinstance(exc, ServiceRequestError):
        return FlwrazureError(f"{resource}: cannot reach the Azure endpoint ({exc}). Check your network, then re-run.")
    if isinstance(exc, HttpResponseError):
        code = getattr(getattr(exc, "error", None), "code", None) or str(exc.status_code)
        message = getattr(getattr(exc, "error", None), "message", None) or exc.message or str(exc)
        return AzureError(resource, code, message)
    return FlwrazureError(f"{resource}: {type(exc).__name__}: {exc}")


def is_not_found(exc: BaseException) -> bool:
    """True for Azure's 404 (the resource is gone already)."""
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(exc, ResourceNotFoundError)
