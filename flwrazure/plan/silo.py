"""Cross-silo federations (issue 24): the files two organisations exchange, and every check made on them.

The operator `invite`s a silo: an invitation (JSON, 0600) carries what the silo needs to reach and trust the
SuperLink — its address and Fleet port, the cluster's CA certificate, the exact Flower version — plus a random
token and an expiry; nothing secret of the operator's. The CA certificate's SHA-256 fingerprint goes to the silo by
another channel, so a changed CA is caught at `join`. The silo answers with a join request: its SuperNode's public
key (made on the silo's machine: the private key never leaves it), its egress address(es) and the token. `admit`
checks the request against what the operator recorded (only the token's SHA-256, never the token itself).

Pure: no file, network or clock access (`now` is passed in); every defect is one UsageError line (exit 2)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from dataclasses import dataclass

from flwrazure.errors import UsageError
from flwrazure.plan import names, versions

INVITATION_KIND = "flwrazure-silo-invitation"
REQUEST_KIND = "flwrazure-silo-join-request"
FORMAT_VERSION = 1
MAX_EGRESS = 8  # addresses a silo's SuperNode may connect from (NAT pools); each becomes a Fleet rule source

# operator-side states of a silo
INVITED, ADMITTED, REMOVED = "invited", "admitted", "removed"

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_CLUSTER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+?)\n?-----END CERTIFICATE-----\n?")
_SSH_KEY = re.compile(r"(ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,2})(?: [\x21-\x7e]{1,64})?")
_FINGERPRINT = re.compile(r"(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}")
_DURATION = re.compile(r"(\d{1,4})([mhdw])")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MIN_EXPIRY, MAX_EXPIRY = dt.timedelta(minutes=10), dt.timedelta(days=90)
DEFAULT_EXPIRY = "7d"


@dataclass(frozen=True)
class Invitation:
    cluster: str
    cluster_id: str
    silo: str
    address: str  # the SuperLink's public IP
    fleet_port: int
    ca_certificate: str  # PEM
    flwr_version: str
    expires: str  # ISO-8601 UTC, e.g. 2026-12-14T23:00:00Z
    token: str

    def to_dict(self) -> dict:
        return {"kind": INVITATION_KIND, "version": FORMAT_VERSION, "cluster": self.cluster,
                "cluster_id": self.cluster_id, "silo": self.silo,
                "superlink": {"address": self.address, "fleet_port": self.fleet_port},
                "ca_certificate": self.ca_certificate, "flwr_version": self.flwr_version, "expires": self.expires,
                "token": self.token}

    @property
    def superlink(self) -> str:
        """What the SuperNode's --superlink takes."""
        return f"{self.address}:{self.fleet_port}"


@dataclass(frozen=True)
class JoinRequest:
    cluster: str
    cluster_id: str
    silo: str
    token: str
    public_key: str  # OpenSSH line, ECDSA on a NIST curve: what `flwr supernode register` takes
    egress: tuple[str, ...]  # IPv4 addresses the silo's SuperNode connects from
    flwr_version: str

    def to_dict(self) -> dict:
        return {"kind": REQUEST_KIND, "version": FORMAT_VERSION, "cluster": self.cluster,
                "cluster_id": self.cluster_id, "silo": self.silo, "token": self.token,
                "public_key": self.public_key, "egress": list(self.egress), "flwr_version": self.flwr_version}


def dumps(doc: Invitation | JoinRequest) -> str:
    return json.dumps(doc.to_dict(), indent=2) + "\n"


# -- names, tokens, time ----------------------------------------------------------------------------------------
def silo_name(value: str, what: str = "silo name") -> str:
    """The cluster names' rule (names.NAME): a silo's name becomes file names and, on the silo's side, the names
    of its Azure resources."""
    if not isinstance(value, str) or not names.NAME.fullmatch(value):
        raise UsageError(f"{what} {value!r}: use 1-20 lowercase letters, digits and '-', starting with a letter and "
                         "not ending with '-' (e.g. hospital-a).")
    return value


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the operator records of a token (hex SHA-256): the token itself is only in the invitation."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest or "")


def parse_duration(text: str, flag: str = "--expires") -> dt.timedelta:
    """'30m', '12h', '7d', '2w' -> a timedelta between MIN_EXPIRY and MAX_EXPIRY."""
    m = _DURATION.fullmatch((text or "").strip().lower())
    if not m:
        raise UsageError(f"{flag} {text!r}: give a number and a unit m, h, d or w (e.g. 30m, 12h, 7d, 2w).")
    span = dt.timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])
    if not MIN_EXPIRY <= span <= MAX_EXPIRY:
        raise UsageError(f"{flag} {text}: an invitation lasts from 10 minutes to 90 days (e.g. 7d).")
    return span


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, what: str) -> dt.datetime:
    """An ISO-8601 time with its zone (Z or +00:00) -> an aware datetime."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise UsageError(f"{what} {text!r} is not an ISO-8601 UTC time (e.g. 2026-12-14T23:00:00Z).")
    return when


def expired(expires: str, now: dt.datetime) -> bool:
    return now >= parse_time(expires, "expires")


# -- the CA certificate -----------------------------------------------------------------------------------------
def _der(pem: str) -> bytes | None:
    m = _PEM_CERT.fullmatch(pem.replace("\r\n", "\n").strip() + "\n") if isinstance(pem, str) else None
    if not m:
        return None
    try:
        return base64.b64decode(m.group(1).replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def fingerprint(pem: str) -> str:
    """The certificate's SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it (AB:CD:...)."""
    der = _der(pem)
    if der is None:
        raise UsageError("the CA certificate is not one PEM certificate (-----BEGIN CERTIFICATE----- ...).")
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def normal_fingerprint(text: str, flag: str = "--ca-fingerprint") -> str:
    """A fingerprint as given (any case, with or without colons) -> AB:CD:... form."""
    if not isinstance(text, str) or not _FINGERPRINT.fullmatch(text.strip()):
        raise UsageError(f"{flag} {text!r}: give the SHA-256 fingerprint the operator sent, 32 hex byte pairs "
                         "(e.g. AB:CD:...:EF).")
    digest = text.strip().replace(":", "").upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def check_fingerprint(inv: Invitation, given: str, flag: str = "--ca-fingerprint") -> None:
    """The silo's check that the invitation's CA is the operator's: a changed CA (a tampered invitation) stops
    `join` before anything is created."""
    want, got = normal_fingerprint(given, flag), fingerprint(inv.ca_certificate)
    if not hmac.compare_digest(want, got):
        raise UsageError(f"the invitation's CA certificate has fingerprint {got}, not {want} as the operator "
                         "said: the invitation was changed or is not theirs; nothing was created.")


def _certificate_problem(pem) -> str | None:
    der = _der(pem)
    if der is None:
        return "is not one PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, x509.ExtensionNotFound):
        return "is not a CA certificate (no readable basic constraints)"
    return None if basic.ca else "is not a CA certificate (CA:FALSE)"


# -- reading the files ------------------------------------------------------------------------------------------
def loads(text: str, what: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        raise UsageError(f"{what} is not JSON: give the file `flwrazure silo` wrote.") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} holds a JSON {type(data).__name__}, not an object: give the file `flwrazure silo` "
                         "wrote.")
    return data


def _header(data: dict, kind: str, what: str, keys: set[str]) -> None:
    if data.get("kind") != kind:
        raise UsageError(f"{what} has kind {data.get('kind')!r}, not {kind!r}: is it the right file?")
    if data.get("version") != FORMAT_VERSION or isinstance(data.get("version"), bool):
        raise UsageError(f"{what} has format version {data.get('version')!r}; this flwrazure reads version "
                         f"{FORMAT_VERSION}: use the same flwrazure release on both sides.")
    missing = sorted(keys - set(data))
    if missing:
        raise UsageError(f"{what} lacks {', '.join(missing)}.")
    extra = sorted(set(data) - keys)
    if extra:
        raise UsageError(f"{what} has unexpected key(s) {', '.join(extra)}: it was changed or not written by "
                         "flwrazure.")


def _string(data: dict, key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what}: {key} is {json.dumps(value)[:40]}, not a non-empty string.")
    return value


def _common(data: dict, what: str) -> tuple[str, str, str, str]:
    cluster = silo_name(_string(data, "cluster", what), f"{what}: cluster")
    cluster_id = _string(data, "cluster_id", what)
    if not _CLUSTER_ID.fullmatch(cluster_id):
        raise UsageError(f"{what}: cluster_id {cluster_id[:70]!r} is not a cluster identity (letters, digits, '-').")
    silo = silo_name(_string(data, "silo", what), f"{what}: silo")
    version = _string(data, "flwr_version", what)
    if not versions.supported(version):
        raise UsageError(f"{what}: flwr_version {version[:40]!r} is not a Flower version flwrazure supports "
                         "(1.21-1.34 or 1.40+, e.g. 1.42.0).")
    return cluster, cluster_id, silo, version


def _token(data: dict, what: str) -> str:
    token = _string(data, "token", what)
    if not _TOKEN.fullmatch(token):
        raise UsageError(f"{what}: the token is not one flwrazure made (43 URL-safe characters): it was changed.")
    return token


def address(value, what: str) -> str:
    """An IPv4 address a SuperNode or SuperLink may have on the internet (no loopback, link-local, multicast,
    unspecified or reserved address, no network)."""
    try:
        ip = ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None:
        raise UsageError(f"{what} {json.dumps(value)[:50]} is not an IPv4 address (e.g. 203.0.113.7).")
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise UsageError(f"{what} {ip} cannot be a machine's address on the internet.")
    return str(ip)


INVITATION_KEYS = {"kind", "version", "cluster", "cluster_id", "silo", "superlink", "ca_certificate",
                   "flwr_version", "expires", "token"}
REQUEST_KEYS = {"kind", "version", "cluster", "cluster_id", "silo", "token", "public_key", "egress",
                "flwr_version"}


def parse_invitation(data: dict, what: str = "the invitation") -> Invitation:
    _header(data, INVITATION_KIND, what, INVITATION_KEYS)
    cluster, cluster_id, silo, version = _common(data, what)
    link = data.get("superlink")
    if not isinstance(link, dict) or set(link) != {"address", "fleet_port"}:
        raise UsageError(f"{what}: superlink must be {{\"address\": IP, \"fleet_port\": PORT}}.")
    host = address(link["address"], f"{what}: superlink address")
    port = link["fleet_port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise UsageError(f"{what}: fleet_port {json.dumps(port)[:20]} is not a port number (1-65535).")
    if port != versions.port_plan(version).fleet:
        raise UsageError(f"{what}: fleet_port {port} is not Flower {version}'s Fleet port "
                         f"({versions.port_plan(version).fleet}): it was changed.")
    problem = _certificate_problem(data.get("ca_certificate"))
    if problem:
        raise UsageError(f"{what}: ca_certificate {problem}.")
    expires = _string(data, "expires", what)
    parse_time(expires, f"{what}: expires")
    return Invitation(cluster, cluster_id, silo, host, port, data["ca_certificate"], version, expires,
                      _token(data, what))


def public_key(value, what: str = "public_key") -> str:
    """A SuperNode public key as `flwr supernode register` takes it: one OpenSSH line, ECDSA on a NIST curve
    (Flower refuses Ed25519 and RSA)."""
    m = _SSH_KEY.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m:
        raise UsageError(f"{what} is not an OpenSSH ECDSA public key line (ecdsa-sha2-nistp384 AAAA...), which "
                         "`flwr supernode register` takes.")
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        load_ssh_public_key(f"{m.group(1)} {m.group(2)}".encode())
    except (ValueError, TypeError):
        raise UsageError(f"{what}: the key's data does not decode as {m.group(1)}: it was changed.") from None
    return f"{m.group(1)} {m.group(2)}"


def parse_request(data: dict, what: str = "the join request") -> JoinRequest:
    _header(data, REQUEST_KIND, what, REQUEST_KEYS)
    cluster, cluster_id, silo, version = _common(data, what)
    egress = data.get("egress")
    if not isinstance(egress, list) or not 1 <= len(egress) <= MAX_EGRESS:
        raise UsageError(f"{what}: egress must list 1 to {MAX_EGRESS} IPv4 addresses the silo connects from.")
    addresses = tuple(sorted({address(e, f"{what}: egress address") for e in egress},
                             key=ipaddress.IPv4Address))
    return JoinRequest(cluster, cluster_id, silo, _token(data, what), public_key(data.get("public_key"),
                                                                                 f"{what}: public_key"),
                       addresses, version)


# -- the silo's side --------------------------------------------------------------------------------------------
def check_invitation(inv: Invitation, now: dt.datetime) -> None:
    """What the silo checks before creating anything (the operator checks the same again at admit)."""
    if expired(inv.expires, now):
        raise UsageError(f"the invitation to cluster {inv.cluster} expired at {inv.expires}: ask its operator for "
                         f"a new one (flwrazure silo invite {inv.silo} --cluster {inv.cluster}).")


# -- the operator's side ----------------------------------------------------------------------------------------
def record(inv: Invitation, now: dt.datetime) -> dict:
    """What the operator keeps of an invitation: never the token, only its digest."""
    return {"silo": inv.silo, "state": INVITED, "token_sha256": token_digest(inv.token), "expires": inv.expires,
            "ca_fingerprint": fingerprint(inv.ca_certificate), "flwr_version": inv.flwr_version,
            "invited_at": iso(now), "used": False, "node_id": None, "public_key": None, "egress": []}


def check_invite(silo: str, existing: dict | None) -> None:
    """A silo is invited once at a time: inviting again while an invitation is unused replaces it (the old
    token stops working); an admitted silo is removed first."""
    if existing and existing.get("state") == ADMITTED:
        raise UsageError(f"silo {silo} is admitted already: `flwrazure silo remove {silo}` first to invite it "
                         "anew (e.g. with a new key).")


ADMIT, ALREADY = "admit", "already"


def check_request(req: JoinRequest, rec: dict | None, cluster: str, cluster_id: str | None, flwr_version: str,
                  now: dt.datetime) -> str:
    """Whether `admit` may register the request: ADMIT, or ALREADY when this very request was admitted before
    (a re-run). Refusals, in this order: another cluster, no invitation, a removed silo, a wrong token, a used
    invitation, an expired one, another Flower version."""
    if req.cluster != cluster or req.cluster_id != (cluster_id or ""):
        raise UsageError(f"the join request is for cluster {req.cluster} ({req.cluster_id}), not cluster {cluster} "
                         f"({cluster_id}): refused.")
    if rec is None:
        raise UsageError(f"cluster {cluster} has not invited a silo named {req.silo}: "
                         f"`flwrazure silo invite {req.silo} --cluster {cluster}` first.")
    if not token_matches(req.token, rec.get("token_sha256", "")):
        raise UsageError(f"the join request's token does not match the invitation of silo {req.silo}: it was "
                         "changed, or answers an older invitation; refused.")
    if rec.get("state") == REMOVED:
        raise UsageError(f"silo {req.silo} was removed from cluster {cluster}: invite it again for a new join.")
    if rec.get("used"):
        if rec.get("state") == ADMITTED and rec.get("public_key") == req.public_key and \
                list(rec.get("egress") or []) == list(req.egress):
            return ALREADY
        raise UsageError(f"the invitation of silo {req.silo} was used already (admitted with another key or "
                         f"address): `flwrazure silo remove {req.silo}` and invite it again.")
    if expired(rec["expires"], now):
        raise UsageError(f"the invitation of silo {req.silo} expired at {rec['expires']}: invite it again "
                         f"(flwrazure silo invite {req.silo} --cluster {cluster}).")
    if req.flwr_version != flwr_version:
        raise UsageError(f"silo {req.silo} runs Flower {req.flwr_version}, cluster {cluster} runs {flwr_version}: "
                         "the versions must be equal; refused.")
    return ADMIT


def admitted(rec: dict, req: JoinRequest, node_id: str, now: dt.datetime) -> dict:
    return {**rec, "state": ADMITTED, "used": True, "node_id": str(node_id), "public_key": req.public_key,
            "egress": list(req.egress), "admitted_at": iso(now)}


def removed(rec: dict, now: dt.datetime) -> dict:
    return {**rec, "state": REMOVED, "removed_at": iso(now)}


def fleet_sources(silos: dict[str, dict]) -> tuple[str, ...]:
    """The admitted silos' egress addresses, which the Fleet rule admits beside the cluster's own client VMs."""
    return tuple(sorted({a for rec in silos.values() if rec.get("state") == ADMITTED
                         for a in rec.get("egress") or []}, key=ipaddress.IPv4Address))


def online_state(rec: dict, listed: dict[str, dict] | None) -> dict:
    """A silo's row for `silo list`/`status`: state online/offline/... from the SuperLink's node list (node id ->
    its entry of `flwr supernode list --format json`), last seen from its online-at/offline-at; `superlink`: the
    node's own status there (a removed silo's node is `unregistered`: the SuperLink refuses its key)."""
    node = (listed or {}).get(str(rec.get("node_id"))) if rec.get("node_id") else None
    row = {"silo": rec["silo"], "address": ", ".join(rec.get("egress") or []) or None,
           "node_id": rec.get("node_id"), "state": rec.get("state"), "last_seen": None,
           "expires": rec.get("expires") if rec.get("state") == INVITED else None,
           "superlink": (node or {}).get("status")}
    if rec.get("state") != ADMITTED:
        return row
    if listed is None:
        row["state"] = "unknown"
        return row
    if node is None:
        row["state"] = "not seen"
        return row
    status = node.get("status") or "unknown"
    row["state"] = {"registered": "offline"}.get(status, status)  # registered: never connected yet
    row["last_seen"] = None if status == "registered" else \
        (node.get("online-at") if status == "online" else node.get("offline-at")) or None
    if row["last_seen"] == "N/A":
        row["last_seen"] = None
    return row


def next_step_invite(silo: str, path: str, ca_fingerprint: str) -> str:
    return (f"Send {path} to silo {silo}'s admin, and the fingerprint {ca_fingerprint} by another channel (e.g. "
            f"read it out on a call). They run `flwrazure silo join {path} --ca-fingerprint {ca_fingerprint}` with "
            "--cloud or --host and send you its join request.")


def next_step_admit(silo: str, cluster: str) -> str:
    return (f"Silo {silo} is admitted: its SuperNode (started by its `silo join`, which retries) comes online by "
            f"itself; `flwrazure silo list --cluster {cluster}` shows it. Tell its admin, who may re-run "
            "`flwrazure silo join --resume` if their join stopped waiting.")


def next_invite(silo: str, cluster: str) -> list[str]:
    """`next` of invite (JSON): the operator's next command, once the silo sent its join request back."""
    return [f"flwrazure silo admit {silo}.join-request.json --cluster {cluster}"]


def next_admit(cluster: str) -> list[str]:
    """`next` of admit (JSON): the silo's SuperNode comes online by itself; the list shows when."""
    return [f"flwrazure silo list --cluster {cluster}"]


def doctor_check(silos: dict[str, dict], listed: dict[str, dict] | None, cluster: str):
    """doctor's finding on the admitted silos: online at the SuperLink, or not (the operator sees no more: a
    silo's machine is its own; its admin runs `flwrazure status`/`doctor` on their side)."""
    from flwrazure.plan.doctor import Check, skipped

    if listed is None:
        return skipped("silos online", "the SuperLink could not be asked (see services active)")
    found = [online_state(rec, listed) for _, rec in sorted(silos.items()) if rec.get("state") == ADMITTED]
    bad = [r for r in found if r["state"] != "online"]
    if not bad:
        return Check("silos online", True, f"{len(found)} silo(s) online")
    detail = "; ".join(f"{r['silo']}: {r['state']}" + (f" (last seen {r['last_seen']})" if r["last_seen"] else "")
                       for r in bad)
    names_ = " ".join(r["silo"] for r in bad)
    return Check("silos online", False, detail,
                 f"ask the admin of {names_} to run `flwrazure silo join --resume` or check their machine (you do "
                 f"not see it); `flwrazure silo remove NAME --cluster {cluster}` if a silo left")
