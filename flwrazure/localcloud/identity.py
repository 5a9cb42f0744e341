"""A tiny Entra ID: OpenID discovery and the client-credentials token endpoint, so azure-identity works unchanged.

Tokens are HS256 JWTs signed with a key kept in the local cloud's folder, so they stay valid across restarts
(the SDK caches them) and need no server-side table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import asdict, dataclass


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

    def issue(self, lifetime: int = 3599) -> dict:
        now = int(time.time())
        claims = {"aud": "https://management.azure.com/", "iss": f"https://sts.localcloud/{self.tenant_id}/",
                  "iat": now, "nbf": now, "exp": now + lifetime, "tid": self.tenant_id,
                  "appid": self.client_id, "oid": self.client_id, "sub": self.client_id}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        sig = hmac.new(self.signing_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": f"{head}.{body}.{_b64(sig)}"}

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

    def token_response(self, tenant: str, form: dict[str, str]) -> tuple[int, dict]:
        """(status, body) for POST /{tenant}/oauth2/v2.0/token, with AADSTS-style errors."""
        def err(status: int, error: str, code: int, text: str) -> tuple[int, dict]:
            return status, {"error": error, "error_description": f"AADSTS{code}: {text}",
                            "error_codes": [code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                            "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
        if tenant not in (self.tenant_id, "organizations", "common"):
            return err(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return err(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return err(400, "unauthorized_client", 700016,
                       f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
        if not hmac.compare_digest(form.get("client_secret", ""), self.client_secret):
            return err(401, "invalid_client", 7000215, "Invalid client secret provided.")
        return 200, self.issue()
