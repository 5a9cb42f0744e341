"""Who may touch a subscription: Azure Resource Manager's answers when a token reaches a subscription that is not
its principal's (issue 24: several tenants in one local cloud).

- A subscription nobody has: 404 SubscriptionNotFound "The subscription '…' could not be found." (ARM's gateway).
- A subscription of another tenant: 401 InvalidAuthenticationTokenTenant "The access token is from the wrong issuer
  '<token's iss>'. It must match the tenant '<sts>/<subscription's tenant>/' associated with this subscription.
  Please use the authority (URL) '<login>/<tenant>' to get the token. Note, if the subscription is transferred …"
  (as users quote it), with a WWW-Authenticate challenge naming the subscription's tenant as authorization_uri
  (ARM names a subscription's tenant there; clients use it to find which tenant to sign in to).
- A subscription of the same tenant on which the principal has no role: 403 AuthorizationFailed "The client '…'
  with object id '…' does not have authorization to perform action '…' over scope '…' or the scope is invalid.
  If access was recently granted, please refresh your credentials." (recorded; ARM's gateway).

Each identity has a role on its own subscription only. The action named is the one RBAC would check: the
provider's resource type and read/write/delete (or <verb>/action for a POST), over the scope of the resource
the request is about (the request path without a trailing collection or verb)."""

from __future__ import annotations

from flwrazure.localcloud.arm.errors import ArmError
from flwrazure.localcloud.identity import Directory, Principal, issuer

VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
RESOURCES = "Microsoft.Resources/subscriptions"


def action(method: str, path: str) -> tuple[str, str]:
    """(RBAC action, scope) of an ARM request on a subscription's path."""
    parts = [p for p in path.split("/") if p]  # subscriptions, <sub>, ...
    base, rest = parts[:2], parts[2:]
    low = [p.lower() for p in rest]
    if "providers" in low:
        at = len(low) - 1 - low[::-1].index("providers")
        namespace, tail = rest[at + 1] if at + 1 < len(rest) else "", rest[at + 2:]
        before = rest[:at]
        if method == "POST" and len(tail) % 2 == 1 and len(tail) >= 1:  # …/{type}/{name}/{verb} or /register
            types, scope_tail, verb = tail[:-1][0::2], tail[:-1], f"{tail[-1]}/action"
        elif len(tail) % 2 == 1:  # a collection: reading the type, over its parent
            types, scope_tail, verb = tail[0::2], tail[:-1], VERBS.get(method, "read")
        else:
            types, scope_tail, verb = tail[0::2], tail, VERBS.get(method, "action")
        name = "/".join([namespace, *types, verb]) if namespace else f"{RESOURCES}/providers/read"
        scope_parts = [*base, *before, "providers", namespace, *scope_tail] if scope_tail else [*base, *before]
        return name, "/" + "/".join(scope_parts)
    if not low:
        return f"{RESOURCES}/read", "/" + "/".join(base)
    if low[0] == "resourcegroups":
        if len(low) == 1:
            return f"{RESOURCES}/resourcegroups/read", "/" + "/".join(base)
        if len(low) >= 3:  # …/resourcegroups/{rg}/resources
            return f"{RESOURCES}/resourcegroups/resources/read", "/" + "/".join(parts[:4])
        return f"{RESOURCES}/resourcegroups/{VERBS.get(method, 'action')}", "/" + "/".join(parts[:4])
    return f"{RESOURCES}/{low[0]}/read", "/" + "/".join(base)


def login_authority(base_url: str, tenant_id: str) -> str:
    """The sign-in authority of a tenant (Azure: https://login.windows.net/{tenant}); here the cloud's endpoint."""
    return f"{base_url}/{tenant_id}"


def challenge(base_url: str, tenant_id: str, description: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer authorization_uri="{login_authority(base_url, tenant_id)}", '
                                f'error="invalid_token", error_description="{description}"'}


def check(directory: Directory, caller: Principal, token_issuer: str, sub: str, method: str, path: str,
          base_url: str) -> None:
    """Raise ARM's answer when `caller` may not make this request on subscription `sub`."""
    owner = directory.by_subscription(sub)
    if owner is None:
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.",
                       style="gateway")
    if owner.tenant_id != caller.tenant_id:
        raise ArmError(
            401, "InvalidAuthenticationTokenTenant",
            f"The access token is from the wrong issuer '{token_issuer}'. It must match the tenant "
            f"'{issuer(owner.tenant_id)}' associated with this subscription. Please use the authority (URL) "
            f"'{login_authority(base_url, owner.tenant_id)}' to get the token. Note, if the subscription is "
            "transferred to another tenant there is no impact to the services, but information about new tenant "
            "could take time to propagate (up to an hour). If you just transferred your subscription and see this "
            "error message, please try back later.",
            headers=challenge(base_url, owner.tenant_id, "The access token is from the wrong issuer."),
            style="gateway")
    if owner.object_id != caller.object_id:
        name, scope = action(method, path)
        raise ArmError(
            403, "AuthorizationFailed",
            f"The client '{caller.client_id}' with object id '{caller.object_id}' does not have authorization to "
            f"perform action '{name}' over scope '{scope}' or the scope is invalid. If access was recently "
            "granted, please refresh your credentials.", style="gateway")
