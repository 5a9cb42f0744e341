"""Fault injection, so tests and benchmarks can make the local cloud misbehave the way Azure sometimes does:
throttling (429 + Retry-After), server errors (5xx), and long-running operations that end Failed.

A rule (JSON):
  {"kind": "http", "status": 429, "retry_after": 1, "method": "PUT", "path": "virtualMachines",
   "times": 3, "skip": 0}
  {"kind": "lro", "resource_type": "Microsoft.Compute/virtualMachines", "method": "PUT", "skip": 1, "times": 1,
   "code": "AllocationFailed", "message": "..."}
An lro rule with resource_type Microsoft.Resources/resourceGroups and method DELETE fails a group deletion as
Azure's fails: ResourceGroupDeletionBlocked naming the resource that stayed (the rule's code/message as its cause).
`path` is a case-insensitive substring of the request path; `skip` lets that many matches pass first (so
`skip: 1` fails the 2nd VM); `times` is how many matches fail (-1 = every one after skip).
Azure Spot (arm/spot.py):
  {"kind": "eviction", "path": "client-1"}   every running Spot VM whose id contains `path` is evicted now, as
                                             Azure reclaiming its capacity (after the notice, as simulateEviction)
  {"kind": "capacity", "path": "client-1", "times": 1}   creates and starts of matching Spot VMs are refused with
                                             SkuNotAvailable (no Spot capacity), `times` of them (-1 = all)
"""

from __future__ import annotations

import itertools
import threading

from flwrazure.localcloud.arm.errors import ArmError

HTTP_CODES = {429: "SubscriptionRequestsThrottled", 500: "InternalServerError", 502: "BadGateway",
              503: "ServiceUnavailable", 504: "GatewayTimeout"}
_ids = itertools.count(1)


class Faults:
    def __init__(self, rules: list[dict] | None = None):
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        for rule in rules or []:
            self.add(rule)

    def add(self, rule: dict) -> dict:
        kind = rule.get("kind")
        if kind not in ("http", "lro", "eviction", "capacity"):
            raise ValueError("a fault rule needs kind 'http', 'lro', 'eviction' or 'capacity'")
        if kind == "http" and int(rule.get("status", 0)) < 400:
            raise ValueError("an http fault needs a status >= 400")
        rule = {"times": 1, "skip": 0, **rule, "id": next(_ids), "hits": 0, "seen": 0}
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def _take(self, rule: dict) -> bool:
        rule["seen"] += 1
        if rule["seen"] <= int(rule["skip"]):
            return False
        if rule["times"] != -1 and rule["hits"] >= int(rule["times"]):
            return False
        rule["hits"] += 1
        return True

    def http_failure(self, method: str, path: str) -> ArmError | None:
        with self.lock:
            for rule in self.rules:
                if rule["kind"] != "http" or not _matches(rule, method, path):
                    continue
                if self._take(rule):
                    status = int(rule["status"])
                    code = rule.get("code") or HTTP_CODES.get(status, "InternalServerError")
                    headers = {}
                    if rule.get("retry_after") is not None:
                        headers["Retry-After"] = str(rule["retry_after"])
                    msg = rule.get("message") or (
                        "Number of requests for subscription exceeded the limit. Please try again after "
                        f"'{rule.get('retry_after', 1)}' seconds." if status == 429 else
                        "The server encountered an internal error. Please retry the request.")
                    return ArmError(status, code, msg, headers=headers)
        return None

    def lro_failure(self, method: str, arm_type: str, resource_id: str) -> ArmError | None:
        with self.lock:
            for rule in self.rules:
                if rule["kind"] != "lro" or not _matches(rule, method, resource_id):
                    continue
                if rule.get("resource_type") and rule["resource_type"].lower() != arm_type.lower():
                    continue
                if self._take(rule):
                    code = rule.get("code", "InternalOperationError")
                    return ArmError(200, code, rule.get("message") or f"The operation failed with code {code}.")
        return None


    def capacity_failure(self, resource_id: str) -> bool:
        """Whether a capacity rule refuses this Spot VM's create or start now."""
        with self.lock:
            return any(rule["kind"] == "capacity" and _matches(rule, "", resource_id) and self._take(rule)
                       for rule in self.rules)


def _matches(rule: dict, method: str, path: str) -> bool:
    if rule.get("method") and method and rule["method"].upper() != method.upper():
        return False
    return not rule.get("path") or rule["path"].lower() in path.lower()
