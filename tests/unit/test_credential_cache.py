"""The one-token-per-scope cache in front of the product's credential (pure logic: an inner credential that counts)."""

import threading
import time
from collections import namedtuple

from flwrazure.azure.credential import CachedCredential

Token = namedtuple("Token", "token expires_on")


class Counting:
    def __init__(self, lifetime: float, delay: float = 0.0):
        self.lifetime, self.delay, self.calls = lifetime, delay, []

    def get_token(self, *scopes, **kwargs):
        self.calls.append((scopes, kwargs))
        time.sleep(self.delay)
        return Token(f"t{len(self.calls)}", time.time() + self.lifetime)


def test_concurrent_first_callers_share_one_fetch_per_scope():
    inner = Counting(3600, delay=0.3)
    cred = CachedCredential(inner)
    threads = [threading.Thread(target=cred.get_token, args=(s,)) for s in ["a/.default"] * 6 + ["b/.default"] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c[0] for c in inner.calls) == [("a/.default",), ("b/.default",)]


def test_renewed_before_expiry_and_claims_bypass_the_cache():
    inner = Counting(0.4)
    cred = CachedCredential(inner)
    assert cred.get_token("a") == cred.get_token("a") and len(inner.calls) == 1
    time.sleep(0.25)  # within the last half of a short lifetime (5 minutes before expiry for hour-long tokens)
    assert cred.get_token("a").token == "t2"
    cred.get_token("a", claims='{"access_token": {}}')
    assert len(inner.calls) == 3 and cred.get_token("a").token == "t2"
