"""ARM's error body ({"error": {code, message, target, details, additionalInfo}}) as an exception."""

from __future__ import annotations


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 details: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.error_detail()}

    def error_detail(self) -> dict:
        return {"code": self.code, "message": self.message, "target": self.target,
                "details": self.details, "additionalInfo": []}


def not_found(arm_type: str, name: str, rg: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{arm_type}/{name}' under resource group '{rg}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def rg_not_found(rg: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target)


def invalid_reference(ref: str, referrer: str) -> ArmError:
    return ArmError(
        400, "InvalidResourceReference",
        f"Resource {ref} referenced by resource {referrer} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
        details=[{"code": "NotFound", "message": f"Resource {ref} not found."}])
