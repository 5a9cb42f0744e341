"""Retrying what Azure's network provider refuses because another operation is updating the same resource.

`409 AnotherOperationInProgress` (no Retry-After) is not retried by the SDK at all, and `429 RetryableError` only
within the SDK's small budget shared with throttling and 5xx. Both say "nothing was done, try again once the other
operation finishes", so they get their own, larger budget, with exponential backoff and jitter (many writers
retrying at the same instant would collide again) and the server's hint when it gives one (Retry-After, or
"can be retried in N seconds" in the message)."""

from __future__ import annotations

import json
import random
import re

from azure.core.pipeline.policies import RetryPolicy

CONFLICTS = {(409, "AnotherOperationInProgress"), (429, "RetryableError")}
_HINT = re.compile(r"retried in (\d+(?:\.\d+)?) seconds", re.I)


def conflict_of(status: int, body: str | None) -> tuple[str, float | None] | None:
    """(Azure's code, the server's hint in seconds or None) if this answer is a retryable conflict, else None."""
    if status not in (409, 429) or not body:
        return None
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    if (status, code) not in CONFLICTS:
        return None
    texts = [str(error.get("message", ""))] + [str(d.get("message", "")) for d in error.get("details") or []
                                                if isinstance(d, dict)]
    hint = next((float(m.group(1)) for m in map(_HINT.search, texts) if m), None)
    return code, hint


def conflict_delay(attempt: int, hint: float | None, retry_after: float | None, jitter: float,
                   cap: float = 30.0) -> float:
    """Seconds to wait before the `attempt`-th retry (1-based): the server's word if any, else 0.5 s doubling up
    to `cap`; plus up to 50 % jitter (`jitter` in [0, 1)) so writers refused together do not return together."""
    base = retry_after or hint or min(cap, 0.5 * 2 ** (attempt - 1))
    return min(cap, base) * (1 + 0.5 * jitter)


class ConflictRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy, plus up to `conflict_retries` retries of Azure's "another operation" answers."""

    def __init__(self, conflict_retries: int = 20, **kwargs) -> None:
        super().__init__(**kwargs)
        self.conflict_retries = conflict_retries

    @staticmethod
    def _conflict(response) -> tuple[str, float | None] | None:
        http = response.http_response
        if http.status_code not in (409, 429):
            return None
        try:
            http.read()  # LRO calls stream their response: load the (small) error body; later readers get it too
            return conflict_of(http.status_code, http.text())
        except Exception:  # an unreadable body is not a conflict we understand
            return None

    def is_retry(self, settings, response) -> bool:
        if self._conflict(response) is not None:
            return settings.get("conflicts", 0) < self.conflict_retries
        return super().is_retry(settings, response)

    def increment(self, settings, response=None, error=None) -> bool:
        if response is not None and error is None and hasattr(response, "http_response") \
                and self._conflict(response) is not None:
            settings["conflicts"] = settings.get("conflicts", 0) + 1
            return settings["conflicts"] <= self.conflict_retries
        return super().increment(settings, response=response, error=error)

    def sleep(self, settings, transport, response=None) -> None:
        found = self._conflict(response) if response is not None else None
        if found is None:
            return super().sleep(settings, transport, response=response)
        transport.sleep(conflict_delay(settings.get("conflicts", 1), found[1], self.get_retry_after(response),
                                       random.random()))
