"""A tiny Entra ID: OpenID discovery and the client-credentials token endpoint, so azure-identity works unchanged.

Tokens are HS256 JWTs signed with a key kept in the local cloud's folder, so they stay valid across restarts
(the SDK caches them) and need no server-side table.

Several organisations share one local cloud (issue 24: a silo is another organisation): besides the cloud's own
identity ("default", identity.json) the directory holds the identities `flwrazure local identity add` created
(identities.json, 0600). Each is a tenant, a subscription in it and a service principal with a role on that
subscription only; `--tenant` puts a new one in an existing identity's tenant (its own subscription there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Identity:
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    signing_key: str

    @classmethod
    def generate(cls) -> Identity:
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()),
                   secrets.token_urlsafe(32), secrets.token_hex(32))

    def to_dict(self) -> dict:
        return asdict(self)

    def verify(self, token: str) -> str | None:
        """None when valid, else the ARM error code that says why not."""
        try:
            head, body, sig = token.split(".")
            want = hmac.new(self.signing_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, _unb64(sig)):
                return "InvalidAuthenticationToken"
            claims = json.loads(_unb64(body))
        except Exception:
            return "InvalidAuthenticationToken"
        if claims.get("exp", 0) < time.time():
            return "ExpiredAuthenticationToken"
        return None

    def openid_configuration(self, base_url: str, tenant: str) -> dict:
        root = f"{base_url}/{tenant}"
        return {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "NA",
        }


# ---------------------------------------------------------------------------------------------------------------
# Several tenants, subscriptions and service principals

DEFAULT = "default"  # the local cloud's own identity (identity.json)
IDENTITIES = "identities.json"  # the others, in the local cloud's state folder
NAME_RULE = "1-40 characters: lower-case letters, digits and '-', starting with a letter or digit"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class Principal:
    """One organisation's identity in the local cloud: a service principal (client id, secret, object id) of a
    tenant, with a role on one subscription of that tenant."""

    name: str
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    object_id: str

    def public(self) -> dict:
        """What may be shown to anyone: everything but the secret."""
        return {k: v for k, v in asdict(self).items() if k != "client_secret"}


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise ValueError(f"identity name {name!r} is not valid: {NAME_RULE} (e.g. hospital-b).")
    return name


def new_principal(name: str, tenant_id: str | None = None) -> Principal:
    """A new identity: its own tenant unless `tenant_id` names an existing one; always its own subscription."""
    return Principal(check_name(name), tenant_id or str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()),
                     secrets.token_urlsafe(32), str(uuid.uuid4()))


def default_principal(identity: Identity) -> Principal:
    # the object id is the client id: tokens issued before there were several identities carry oid = client id
    return Principal(DEFAULT, identity.tenant_id, identity.subscription_id, identity.client_id,
                     identity.client_secret, identity.client_id)


def load(state_dir: Path) -> Identity:
    """The local cloud's own identity (and the key its tokens are signed with), created the first time."""
    path = state_dir / "identity.json"
    if path.exists():
        return Identity(**json.loads(path.read_text()))
    identity = Identity.generate()
    path.write_text(json.dumps(identity.to_dict()))
    path.chmod(0o600)
    return identity


def read_added(state_dir: Path) -> dict[str, Principal]:
    try:
        data = json.loads((state_dir / IDENTITIES).read_text())
    except FileNotFoundError:
        return {}
    return {name: Principal(**rec) for name, rec in data.items()}


def add(state_dir: Path, identity: Identity, name: str, tenant_of: str | None = None) -> tuple[Principal, bool]:
    """Create identity `name` (idempotent: an existing one is returned as it is); tenant_of: the name of an
    identity whose tenant the new one joins. Returns (principal, created). Written under a lock, 0600, whole."""
    import fcntl
    import os

    check_name(name)
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / f".{IDENTITIES}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        added = read_added(state_dir)
        everyone = {DEFAULT: default_principal(identity), **added}
        tenant = None
        if tenant_of is not None:
            if tenant_of not in everyone:
                raise ValueError(f"--tenant {tenant_of}: no such identity (known: {', '.join(sorted(everyone))}).")
            tenant = everyone[tenant_of].tenant_id
        if name in everyone:
            found = everyone[name]
            if tenant is not None and found.tenant_id != tenant:
                raise ValueError(f"identity {name} exists already, in another tenant than {tenant_of}'s "
                                 f"({found.tenant_id}): choose another name.")
            return found, False
        principal = new_principal(name, tenant)
        added[name] = principal
        tmp = state_dir / f".{IDENTITIES}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({n: asdict(p) for n, p in added.items()}, f, indent=1)
        os.replace(tmp, state_dir / IDENTITIES)
        return principal, True


class Directory:
    """Every tenant, subscription and principal of the local cloud, and its token service. Reads identities.json
    again when asked for something it does not know and the file changed (`local identity add` writes it while the
    cloud runs)."""

    def __init__(self, identity: Identity, state_dir: Path | None = None):
        self.identity, self.state_dir = identity, state_dir
        self._stamp: tuple | None = None
        self.principals: dict[str, Principal] = {}
        self._by_object: dict[str, Principal] = {}
        self._by_subscription: dict[str, Principal] = {}
        self._verified: dict[str, dict] = {}  # token -> its claims: a client sends one token many times
        self._load()

    def _file_stamp(self) -> tuple | None:
        if self.state_dir is None:
            return None
        try:
            st = (self.state_dir / IDENTITIES).stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> None:
        self._stamp = self._file_stamp()
        added = read_added(self.state_dir) if self.state_dir is not None else {}
        principals = {DEFAULT: default_principal(self.identity), **added}
        self._by_object = {p.object_id: p for p in principals.values()}
        self._by_subscription = {p.subscription_id.lower(): p for p in principals.values()}
        self.principals = principals

    def _find(self, test) -> Principal | None:
        for attempt in (0, 1):
            found = next((p for p in list(self.principals.values()) if test(p)), None)
            if found is not None or attempt or not self._changed():
                return found
        return None

    def _changed(self) -> bool:
        """Whether identities.json changed since it was read (then it is read again)."""
        if self._file_stamp() == self._stamp:
            return False
        self._load()
        return True

    def by_object(self, object_id: str) -> Principal | None:
        found = self._by_object.get(object_id)
        return found if found is not None or not self._changed() else self._by_object.get(object_id)

    def by_subscription(self, sub: str) -> Principal | None:
        """The identity whose subscription this is (a subscription belongs to its identity's tenant)."""
        low = (sub or "").lower()
        found = self._by_subscription.get(low)
        return found if found is not None or not self._changed() else self._by_subscription.get(low)

    def has_tenant(self, tenant: str) -> bool:
        return self._find(lambda p: p.tenant_id == tenant) is not None

    def add_in_memory(self, principal: Principal) -> None:
        """Tests driving the app in-process without a state folder."""
        self.principals[principal.name] = principal

    # -- tokens -------------------------------------------------------------------------------------------
    def issue(self, principal: Principal, lifetime: int = 3599) -> dict:
        now = int(time.time())
        claims = {"aud": "https://management.azure.com/", "iss": issuer(principal.tenant_id), "iat": now,
                  "nbf": now, "exp": now + lifetime, "tid": principal.tenant_id, "appid": principal.client_id,
                  "oid": principal.object_id, "sub": principal.object_id}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        sig = hmac.new(self.identity.signing_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": f"{head}.{body}.{_b64(sig)}"}

    def verify(self, token: str) -> tuple[str | None, dict]:
        """(None, claims) when the token is this cloud's and valid, else (the ARM error code, {}). A token checked
        once is known until it expires (its signature is not computed again for each request)."""
        claims = self._verified.get(token)
        if claims is not None and claims.get("exp", 0) >= time.time():
            return None, claims
        code = self.identity.verify(token)
        if code:
            return code, {}
        claims = json.loads(_unb64(token.split(".")[1]))
        if len(self._verified) >= 4096:
            self._verified.clear()
        self._verified[token] = claims
        return None, claims

    def token_response(self, tenant: str, form: dict[str, str]) -> tuple[int, dict]:
        """(status, body) for POST /{tenant}/oauth2/v2.0/token, with Entra's AADSTS errors: an unknown tenant
        (90002), a client id that is not an application of that tenant (700016, as Entra answers a client id of
        another directory), a wrong secret (7000215)."""
        def err(status: int, error: str, code: int, text: str) -> tuple[int, dict]:
            return status, {"error": error, "error_description": f"AADSTS{code}: {text}",
                            "error_codes": [code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                            "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
        anywhere = tenant in ("organizations", "common")
        if not anywhere and not self.has_tenant(tenant):
            return err(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure you have "
                       "the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return err(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client = form.get("client_id") or ""
        principal = self._find(lambda p: p.client_id == client and (anywhere or p.tenant_id == tenant))
        if principal is None:
            return err(400, "unauthorized_client", 700016,
                       f"Application with identifier '{client}' was not found in the directory '{tenant}'. This "
                       "can happen if the application has not been installed by the administrator of the tenant "
                       "or consented to by any user in the tenant. You may have sent your authentication request "
                       "to the wrong tenant.")
        if not hmac.compare_digest(form.get("client_secret", ""), principal.client_secret):
            return err(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                       "sent in the request is the client secret value, not the client secret ID, for a secret "
                       f"added to app '{principal.client_id}'.")
        return 200, self.issue(principal)


def issuer(tenant_id: str) -> str:
    """A token's `iss`: the security token service of its tenant (Azure: https://sts.windows.net/{tenant}/)."""
    return f"https://sts.localcloud/{tenant_id}/"
