"""Where a cluster lives: public Azure (DefaultAzureCredential) or the local cloud (its HTTPS endpoint and the
credentials it advertises in $FLWRAZURE_HOME/local/server.json, or the identity of another home's local cloud that
`flwrazure local use` wrote to $FLWRAZURE_HOME/local/connection.json). Both are reached the same way: the SDK over
HTTPS."""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flwrazure.azure.credential import CachedCredential
from flwrazure.errors import UsageError
from flwrazure.workstation import settings

# commands of a recorded cluster have no --cloud: only create-cluster and up (choosing a cloud) mention it
LOCAL_NOT_RUNNING = "The local cloud is not running: start it with `flwrazure local up`."
OR_AZURE = " (or use --cloud azure)"


@dataclass
class Target:
    cloud: str
    subscription: str
    credential: object
    base_url: str | None = None
    verify: str | bool = True
    poll: float = 2.0  # seconds between batched status reads while waiting
    echo_url: str | None = None  # an address-echo service of this cloud (the local cloud has one)
    operator_ip: str | None = None  # the operator address a local cloud advertises (one without an echo service)
    pip_index: str | None = None

    def _client_kwargs(self) -> dict:
        from requests.adapters import HTTPAdapter

        from flwrazure.azure.retry import ConflictRetryPolicy

        session = _session()  # one pool big enough for every concurrent request
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=128)
        session.mount("https://", adapter)
        # ride out throttling and 5xx bursts longer than the SDK's default 3 retries (429 honours Retry-After),
        # and "another operation is updating this resource" (409/429) with a budget of its own
        retry = ConflictRetryPolicy(retry_total=6, retry_status=6, retry_backoff_factor=0.5, retry_backoff_max=30)
        # every attempt (retries included) is paced from ARM's remaining-count headers, so 429s stay rare
        from flwrazure.azure.pacing import PacingPolicy

        # answers are read in blocks of this size (azure-core's default 4 KiB made a list of 100 VMs ~50 reads,
        # each through several Python layers)
        kw: dict = {"session": session, "connection_verify": self.verify, "polling_interval": self.poll,
                    "connection_data_block_size": 256 * 1024,
                    "retry_policy": retry, "per_retry_policies": [PacingPolicy(self.pacer)]}
        if self.base_url:
            kw["base_url"] = self.base_url
        return kw

    @cached_property
    def pacer(self):
        """One view of ARM's rate-limit buckets for every client of this target (they share the buckets)."""
        from flwrazure.azure.pacing import Pacer

        return Pacer()

    @cached_property
    def resources(self):
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription, **self._client_kwargs())

    @cached_property
    def network(self):
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(self.credential, self.subscription, **self._client_kwargs())

    @cached_property
    def compute(self):
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(self.credential, self.subscription, **self._client_kwargs())

    def describe(self) -> str:
        return "the local cloud" if self.cloud == "local" else f"Azure subscription {self.subscription}"


def _session():
    """A requests session that reads the proxy and CA-bundle environment once per host and keeps the answer:
    requests walks the whole environment twice per request for it (a third of requests' own CPU per request
    here), and create-cluster sends hundreds at once; the environment does not change while a command runs."""
    import requests

    class Session(requests.Session):
        def __init__(self):
            super().__init__()
            self._settings: dict[tuple, dict] = {}

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
            found = self._settings.get(key)
            if found is None:
                found = self._settings[key] = super().merge_environment_settings(url, proxies, stream, verify,
                                                                                 cert)
            return {k: (dict(v) if isinstance(v, dict) else v) for k, v in found.items()}

    return Session()


def local_info(choosing: bool = False) -> dict:
    """The running local cloud's endpoint and credentials, read from the file it publishes (no import of it).
    choosing: the command has a --cloud option (create-cluster, up), which the message may then suggest."""
    not_running = LOCAL_NOT_RUNNING + (OR_AZURE if choosing else "")
    path = settings.local_connection_file()  # `local use`: an identity of the local cloud another home runs
    if not path.exists():
        path = settings.local_cloud_dir() / "server.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(not_running) from None
    if path == settings.local_connection_file():
        not_running = (f"The local cloud at {info.get('endpoint')} (this home uses its identity "
                       f"{info.get('identity')!r}, `flwrazure local use`) does not answer: start it from the home "
                       "that runs it (`flwrazure local up`).")
    try:
        ctx = ssl.create_default_context(cafile=info["ca_bundle"])
        with urllib.request.urlopen(f"{info['endpoint']}/_localcloud/health", context=ctx, timeout=3) as resp:
            if resp.status != 200:
                raise OSError(resp.status)
    except (OSError, ValueError, KeyError):
        raise UsageError(not_running) from None
    return info


def local_cloud_running() -> bool:
    """Whether this FLWRAZURE_HOME's local cloud runs (its server.json, and it answers): create-cluster and up
    then refuse to guess a cloud."""
    if not (settings.local_cloud_dir() / "server.json").exists() and not settings.local_connection_file().exists():
        return False
    try:
        local_info()
    except UsageError:
        return False
    return True


def no_hosts(cloud: str) -> str | None:
    """Why a cluster's VMs cannot be reached over SSH from here (None: they can, as far as flwrazure knows): the
    local cloud without sandbox hosts has API-only VMs whose public range is not on this machine (a packet sent
    there would leave it by the default route)."""
    if cloud != "local":
        return None
    info = local_info()
    if info.get("hosts") == "nspawn":
        return None
    return info.get("hosts_note") or "it was started with --hosts none"


def require_hosts(cloud: str) -> None:
    why = no_hosts(cloud)
    if why:
        raise UsageError(f"The local cloud runs without sandbox VMs ({why}), so there is nothing to log into: "
                         "as root run `flwrazure local prepare`, then `flwrazure local down && flwrazure local up`.")


def azure_cli_subscription() -> str | None:
    """The Azure CLI's default subscription, if the user ran `az login` (read from its profile, no subprocess)."""
    profile = Path(os.environ.get("AZURE_CONFIG_DIR", Path.home() / ".azure")) / "azureProfile.json"
    try:
        data = json.loads(profile.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return next((s["id"] for s in data.get("subscriptions", []) if s.get("isDefault")), None)


class _Once(logging.Filter):
    """azure-mgmt-core registers an unregistered resource provider itself (MissingSubscriptionRegistration) and
    says so on stderr, once per request that met it: say each thing once."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


_registration_log = logging.getLogger("azure.mgmt.core.policies._base")
if not any(isinstance(f, _Once) for f in _registration_log.filters):
    _registration_log.addFilter(_Once())


def azure_credential() -> CachedCredential:
    """The credential for public Azure: DefaultAzureCredential (environment, workload identity, `az login`, …),
    with one cached token per scope in front of it (its az CLI step caches nothing)."""
    from azure.identity import DefaultAzureCredential

    # Managed identity is probed only on request: on a laptop its endpoint just times out.
    use_mi = os.environ.get("FLWRAZURE_USE_MANAGED_IDENTITY") == "1"
    return CachedCredential(DefaultAzureCredential(exclude_managed_identity_credential=not use_mi,
                                                   exclude_interactive_browser_credential=True))


def _prefetch_token(credential) -> None:
    """Get the first token while the SDK clients import (credential I/O overlaps import CPU)."""
    import threading

    def fetch() -> None:
        try:
            credential.get_token("https://management.azure.com/.default")
        except Exception:  # the first real request reports the problem, with context
            pass

    threading.Thread(target=fetch, daemon=True, name="flwrazure-token").start()


_connected: dict[tuple, Target] = {}
_connecting = threading.Lock()


def connect(cloud: str, subscription: str | None = None, choosing: bool = False) -> Target:
    """The cloud a command works on. One Target per cloud, subscription and $FLWRAZURE_HOME for the whole process:
    `up` and `scale` run create-cluster, open-ports and start in one process, and each connected anew (a credential,
    a first token: with `az login`, an `az` run of about a second each time, on the critical path).
    choosing: the command chooses the cloud (--cloud, --subscription): its messages may suggest those options."""
    if cloud == "local":
        key: tuple = ("local", str(settings.local_cloud_dir()))
    else:
        subscription = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID") or azure_cli_subscription()
        key = ("azure", subscription)
    with _connecting:
        target = _connected.get(key)
        if target is None:
            target = _connected[key] = _connect(cloud, subscription, choosing)
    if subscription and subscription != target.subscription:  # each identity of the local cloud has one
        raise UsageError(f"--subscription {subscription} does not exist in the local cloud for this home's "
                         f"identity (its subscription is {target.subscription}).")
    return target


def _connect(cloud: str, subscription: str | None, choosing: bool = False) -> Target:
    if cloud == "local":
        from azure.identity import ClientSecretCredential

        info = local_info(choosing)
        cred = CachedCredential(ClientSecretCredential(
            info["tenant_id"], info["client_id"], info["client_secret"], authority=info["endpoint"],
            disable_instance_discovery=True, connection_verify=info["ca_bundle"]))
        _prefetch_token(cred)
        return Target("local", info["subscription_id"], cred, info["endpoint"], info["ca_bundle"],
                      poll=settings.seconds("FLWRAZURE_POLL", 0.05), echo_url=info.get("echo_url"),
                      operator_ip=info.get("operator_ip"),
                      pip_index=info.get("pip_index"))
    if not subscription:
        raise UsageError("No Azure subscription found: " + (
            "pass --subscription, set AZURE_SUBSCRIPTION_ID, or run `az login` (or try everything offline with "
            "--cloud local)." if choosing else "set AZURE_SUBSCRIPTION_ID or run `az login`."))
    cred = azure_credential()
    _prefetch_token(cred)
    return Target("azure", subscription, cred, poll=settings.seconds("FLWRAZURE_POLL", 2))
