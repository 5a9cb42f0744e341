"""One token per scope, shared by every client and thread. azure-identity's AzureCliCredential (and so
DefaultAzureCredential when `az login` is what it finds) caches nothing: each get_token runs `az account
get-access-token` (about a second of CPU), so the concurrent first requests of three clients each started one, and the
token fetched ahead of time was thrown away. This wrapper keeps each scope's token until shortly before it expires and
lets concurrent callers of one scope wait for a single fetch."""

from __future__ import annotations

import threading
import time

REFRESH_BEFORE = 300  # seconds: renew a token this long before it expires (ARM refuses an expired one)


class CachedCredential:
    """A TokenCredential around another one (get_token only, which is what the SDK's bearer policy uses then)."""

    def __init__(self, inner, refresh_before: float = REFRESH_BEFORE):
        self.inner, self.refresh_before = inner, refresh_before
        self._lock = threading.Lock()
        self._tokens: dict[tuple, object] = {}
        self._key_locks: dict[tuple, threading.Lock] = {}
        self.fetches = 0

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None, **kwargs):
        if claims:  # a claims challenge (e.g. continuous access evaluation) needs a fresh token
            return self.inner.get_token(*scopes, claims=claims, tenant_id=tenant_id, **kwargs)
        key = (tuple(scopes), tenant_id, bool(kwargs.get("enable_cae")))
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one fetch per scope at a time; the others wait for it and reuse it
            cached = self._tokens.get(key)
            if cached is not None:
                token, fetched = cached
                # renew 5 minutes before expiry, or halfway through a lifetime shorter than 10 minutes
                margin = min(self.refresh_before, (token.expires_on - fetched) / 2)
                if token.expires_on - time.time() > margin:
                    return token
            extra = {"tenant_id": tenant_id} if tenant_id else {}
            fetched = time.time()
            token = self.inner.get_token(*scopes, **extra, **kwargs)
            self.fetches += 1
            self._tokens[key] = (token, fetched)
            return token

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
