"""Azure's errors, told as the user needs them: which resource, Azure's code, and what to do next."""

from __future__ import annotations

from flwrazure.errors import FlwrazureError, UsageError

NEXT_STEP = {
    "OperationNotAllowed": "request a quota increase (Azure portal > Quotas) or use fewer/smaller VMs",
    "SkuNotAvailable": "choose another --vm-size or --location (`az vm list-skus -l <region>` lists them)",
    "ResourceGroupBeingDeleted": "wait until the previous teardown has finished, then re-run",
    "AuthorizationFailed": "ask for the Contributor role on the subscription or resource group",
    "AllocationFailed": "Azure has no capacity for this size there right now: re-run later, or change "
                        "--vm-size/--location",
    "ZonalAllocationFailed": "Azure has no capacity for this size there right now: re-run later",
    "PublicIPCountLimitReached": "delete unused public IPs or request a higher public IP quota",
    "ResourceGroupDeletionBlocked": "see what is left in the group and why it could not be deleted (Azure portal > "
                                    "the group > Activity log, or `az resource list -g <group>`), remove the "
                                    "blocker, then re-run `flwrazure teardown`",
    "InvalidAuthenticationToken": "sign in again (`az login`)",
    "ExpiredAuthenticationToken": "sign in again (`az login`)",
}
DEFAULT_NEXT = "re-run the same command: it resumes where it stopped"


class AzureError(FlwrazureError):
    def __init__(self, resource: str, code: str, message: str):
        self.resource, self.code = resource, code
        step = NEXT_STEP.get(code, DEFAULT_NEXT)
        first = " ".join(message.split())
        if len(first) > 300:
            first = first[:297] + "..."
        super().__init__(f"{resource}: Azure refused ({code}): {first} Next: {step}.")


def translate(exc: BaseException, resource: str) -> FlwrazureError:
    """Map an SDK exception to a product error (ClientAuthenticationError -> bad credentials, exit 2)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(exc, FlwrazureError):
        return exc
    if isinstance(exc, ClientAuthenticationError):
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
