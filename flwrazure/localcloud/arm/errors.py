"""Azure's error bodies as an exception. The envelope depends on who answers (as recorded):
- "gateway": ARM itself (missing resource or group, authentication, routing): {code, message}, and the header
  `x-ms-failure-cause: gateway`;
- "arm": ARM's own resource types (resource groups) and its throttling: {code, message};
- "network": the network provider: {code, message, details: [...]} (details always present, often empty);
- "compute": the compute provider: {code, message} plus `target` and `details` when it has them.
A handler may fix the style; otherwise the app picks it from the request path's provider."""

from __future__ import annotations


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 details: list[dict] | None = None, headers: dict[str, str] | None = None,
                 style: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.details = details or []
        self.headers = headers or {}
        self.style = style

    def body(self, style: str | None = None) -> dict:
        return {"error": self.error_detail(style)}

    def error_detail(self, style: str | None = None) -> dict:
        return render(self.code, self.message, self.target, self.details, self.style or style or "compute")


def render(code: str, message: str, target: str | None, details: list, style: str) -> dict:
    out = {"code": code, "message": message}
    if style == "network":
        out["details"] = list(details or [])
    elif style == "compute":
        if target is not None:
            out["target"] = target
        if details:
            out["details"] = list(details)
    elif details:
        out["details"] = list(details)
    return out


def not_found(arm_type: str, name: str, rg: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{arm_type}/{name}' under resource group '{rg}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix", style="gateway")


def rg_not_found(rg: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.", style="gateway")


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target)


def invalid_reference(ref: str, referrer: str) -> ArmError:
    return ArmError(
        400, "InvalidResourceReference",
        f"Resource {ref} referenced by resource {referrer} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
        details=[{"code": "NotFound", "message": f"Resource {ref} not found."}])
