"""The SSH key pair a cluster's VMs trust: generated per cluster (private key 0600) or the user's own."""

from __future__ import annotations

import base64
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from flwrazure.errors import UsageError


def generate(private_path: Path, comment: str) -> str:
    """Create an Ed25519 key pair (OpenSSH format) unless one exists; returns the public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public_path = private_path.with_suffix(".pub")
    if private_path.exists() and public_path.exists():
        return public_path.read_text().strip()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(private_path.parent, 0o700)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode() + f" {comment}"
    public_path.write_text(line + "\n")
    return line


ACCEPTED = "Azure accepts only Ed25519 keys and RSA keys of 2048 bits or more for VMs"
_OPENSSH_HEADER = b"-----BEGIN OPENSSH PRIVATE KEY-----"


@dataclass(frozen=True)
class UserKey:
    path: Path
    public_line: str
    encrypted: bool  # passphrase-protected: usable only through the operator's ssh-agent


def public_blob(line: str) -> bytes:
    """The wire form of an OpenSSH public key line (what an ssh-agent lists its keys by)."""
    return base64.b64decode(line.split()[1])


def _kind(public_key) -> tuple[str, bool]:
    """(how to call the key, whether Azure accepts it)."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key", True
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"an RSA key of {public_key.key_size} bits", public_key.key_size >= 2048
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"an ECDSA key ({public_key.curve.name})", False
    if isinstance(public_key, dsa.DSAPublicKey):
        return "a DSA key", False
    return "a key of another type", False


def _openssh_public_line(data: bytes) -> str | None:
    """The public key stored in the clear at the head of an OpenSSH private key file, even a passphrase-protected
    one (layout: magic, cipher, kdf, kdf options, key count, public key blob)."""
    if not data.lstrip().startswith(_OPENSSH_HEADER):
        return None
    try:
        body = base64.b64decode(b"".join(data.strip().splitlines()[1:-1]))
        if not body.startswith(b"openssh-key-v1\0"):
            return None
        i = len(b"openssh-key-v1\0")
        for _ in range(3):  # cipher name, kdf name, kdf options
            (n,) = struct.unpack(">I", body[i:i + 4])
            i += 4 + n
        i += 4  # number of keys
        (n,) = struct.unpack(">I", body[i:i + 4])
        blob = body[i + 4:i + 4 + n]
        (m,) = struct.unpack(">I", blob[:4])
        return f"{blob[4:4 + m].decode()} {base64.b64encode(blob).decode()}"
    except (ValueError, struct.error, UnicodeDecodeError):
        return None


def _load_private(data: bytes):
    """(private key, encrypted): the key when it opens without a passphrase; (None, True) when it needs one."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    loader = (serialization.load_ssh_private_key if data.lstrip().startswith(_OPENSSH_HEADER)
              else serialization.load_pem_private_key)
    try:
        return loader(data, password=None), False
    except TypeError:  # "Password was not given but private key is encrypted"
        return None, True
    except UnsupportedAlgorithm:  # e.g. security-key (sk-*) keys
        return None, False


def inspect(path: Path, label: str = "--ssh-key") -> UserKey:
    """See _inspect; cryptography's deprecation warnings (DSA) stay out: we refuse such keys in one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _inspect(path, label)


_PUBLIC_KINDS = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def _is_public_key_file(path: Path) -> bool:
    """An OpenSSH public key line (`ssh-ed25519 AAAA… comment`), what `ssh-keygen` writes to KEY.pub."""
    try:
        head = path.read_bytes()[:200].decode(errors="replace").split()
    except OSError:
        return False
    return len(head) >= 2 and head[0].startswith(_PUBLIC_KINDS) and head[1].startswith("AAAA")


def _inspect(path: Path, label: str) -> UserKey:
    """Everything that can be wrong with the operator's key, found locally (no connection, nothing created):
    missing, readable by others, not a private key, a type or size Azure refuses, a .pub of another key, a
    passphrase-protected key without its public half. Whether an ssh-agent holds an encrypted key is asked
    by the caller (flwrazure.remote.ssh.check_key)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    path = path.expanduser()
    if not path.is_file():
        raise UsageError(f"{label} {path}: no such file (give the path of your private key, e.g. ~/.ssh/id_ed25519).")
    if _is_public_key_file(path):
        private = path.with_suffix("") if path.suffix == ".pub" else None
        which = f"the file without .pub: {label} {private}" if private else "the private key (not the .pub)"
        raise UsageError(f"{label} {path} is a public key: pass {which}.")
    if path.stat().st_mode & 0o077:
        raise UsageError(f"{label} {path}: the private key is readable by others; run `chmod 600 {path}`.")
    data = path.read_bytes()
    try:
        private, encrypted = _load_private(data)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{label} {path}: not a private key in OpenSSH or PEM format ({exc}); give the private "
                         "key (not the .pub), e.g. ~/.ssh/id_ed25519.") from None
    derived = (private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
               .decode() if private is not None else _openssh_public_line(data))
    pub = Path(str(path) + ".pub")
    line = pub.read_text().strip() if pub.is_file() else derived
    if line is None:
        raise UsageError(f"{label} {path}: a passphrase-protected key whose public half is unknown: put it next "
                         f"to it as {pub.name} (`ssh-keygen -y -f {path} > {pub}`).")
    try:
        public = serialization.load_ssh_public_key(line.encode())
    except UnsupportedAlgorithm:
        kind = "a DSA key" if line.startswith("ssh-dss") else f"a {line.split()[0]} key"
        raise UsageError(f"{label} {path}: {kind}; {ACCEPTED}: create one with "
                         f"`ssh-keygen -t ed25519`, or leave out {label} to get a new key per cluster.") from None
    except (ValueError, TypeError, IndexError):
        raise UsageError(f"{label} {path}: {pub} is not an OpenSSH public key.") from None
    if derived is not None and public_blob(derived) != public_blob(line):
        raise UsageError(f"{label} {path}: {pub} is the public half of another key; regenerate it with "
                         f"`ssh-keygen -y -f {path} > {pub}`.")
    kind, accepted = _kind(public)
    if not accepted:
        raise UsageError(f"{label} {path}: {kind}; {ACCEPTED}: create one with `ssh-keygen -t ed25519`, or leave "
                         f"out {label} to get a new key per cluster.")
    return UserKey(path, line, encrypted)


def load_user_key(path: Path) -> tuple[Path, str]:
    """(private key path, public key line) for `--ssh-key PATH` (the private key; PATH.pub is used if present)."""
    key = inspect(path)
    return key.path, key.public_line
