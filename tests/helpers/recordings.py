"""Replaying the shared Azure recordings against the local cloud, and comparing the answers' shapes.

`shape()` reduces one answer to what a client can notice (status, LRO header kinds, Retry-After presence, rate-limit
header kinds and Compute group names, x-ms-failure-cause, provisioningState, async status body keys, error code and
envelope keys); `compare()` lists the differences between a recorded exchange and the local answer, looking only at
what the recording shows (the CLI recorder strips Retry-After; quoted exchanges carry no headers)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

RECORDED_SUB = "00000000-0000-0000-0000-000000000000"
LRO_HEADERS = ("azure-asyncoperation", "location", "azure-asyncnotification")


def recordings_dir() -> Path:
    import os

    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("FLWRAZURE_SHARED", root.parent / "shared")) / "reference" / "azure-recordings"


def load(name: str) -> list[dict]:
    return json.loads((recordings_dir() / name).read_text())


def is_async_status(path: str) -> bool:
    return bool(re.search(r"/locations/[^/]+/operations/[^/]+$", path, re.I))


def shape(status: int, headers: dict, body, path: str = "") -> dict:
    h = {k.lower(): v for k, v in (headers or {}).items()}
    out: dict = {
        "status": status,
        "lro": sorted(k for k in LRO_HEADERS if k in h),
        "retry_after": any(k in h for k in ("retry-after", "retry-after-ms", "x-ms-retry-after-ms")),
        "ratelimit": sorted(k for k in h if k.startswith("x-ms-ratelimit-remaining-subscription")),
        "compute_groups": sorted(part.split(";")[0].strip() for part in h.get(
            "x-ms-ratelimit-remaining-resource", "").split(",") if part.strip()),
        "failure_cause": h.get("x-ms-failure-cause"),
        "provisioningState": None, "async_keys": None, "error_code": None, "error_keys": None,
    }
    if isinstance(body, dict):
        props = body.get("properties")
        if isinstance(props, dict) and "provisioningState" in props:
            out["provisioningState"] = props["provisioningState"]
        if isinstance(body.get("error"), dict):
            out["error_code"] = body["error"].get("code")
            out["error_keys"] = sorted(body["error"])
        if is_async_status(path) and "status" in body:
            out["async_keys"] = sorted(body)
    return out


def sdk_recorded(exchange: dict) -> bool:
    """Only the SDK test-proxy recordings keep Retry-After (the CLI recorder strips it)."""
    return "azure-sdk-for-" in exchange.get("source", "")


def compare(exchange: dict, local: dict) -> list[str]:
    """Differences between a recorded exchange and the local answer's shape(), as 'field: recorded X, local Y'."""
    rec = shape(exchange["status"], exchange.get("headers") or {}, exchange.get("response_body"), exchange["path"])
    quoted = exchange.get("kind", "").startswith("quoted")
    fields = ["status", "provisioningState", "async_keys", "error_code", "error_keys"]
    if not quoted:
        fields += ["lro", "failure_cause"]
        if sdk_recorded(exchange):
            fields.append("retry_after")
        if rec["compute_groups"]:
            fields.append("compute_groups")
    diffs = [f"{f}: recorded {rec[f]!r}, local {local[f]!r}" for f in fields if rec[f] != local[f]]
    if not quoted:  # every rate-limit header kind the recording shows must be there (local may send more)
        missing = sorted(set(rec["ratelimit"]) - set(local["ratelimit"]))
        if missing:
            diffs.append(f"ratelimit: recorded {rec['ratelimit']!r}, local {local['ratelimit']!r}")
    return diffs


def query_params(exchange: dict) -> dict:
    return {k: v for k, v in parse_qsl(exchange.get("query") or "", keep_blank_values=True) if k not in ("p",)}


def local_text(text: str, sub: str) -> str:
    return text.replace(RECORDED_SUB, sub).replace("https://management.azure.com", "")
