"""The SSH key pair a cluster's VMs trust: generated per cluster (private key 0600) or the user's own."""

from __future__ import annotations

import os
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


def load_user_key(path: Path) -> tuple[Path, str]:
    """(private key path, public key line) for `--ssh-key PATH` (the private key; PATH.pub is used if present)."""
    from cryptography.hazmat.primitives import serialization

    path = path.expanduser()
    if not path.is_file():
        raise UsageError(f"--ssh-key {path}: no such file (give the path of your private key, e.g. ~/.ssh/id_ed25519).")
    pub = Path(str(path) + ".pub")
    if pub.is_file():
        line = pub.read_text().strip()
        try:
            serialization.load_ssh_public_key(line.encode())
        except (ValueError, TypeError):
            raise UsageError(f"--ssh-key {path}: {pub} is not an OpenSSH public key.") from None
        return path, line
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--ssh-key {path}: not an unencrypted OpenSSH private key ({exc}); "
                         f"or put its public key next to it as {pub.name}.") from None
    if path.stat().st_mode & 0o077:
        raise UsageError(f"--ssh-key {path}: the private key is readable by others; run `chmod 600 {path}`.")
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return path, line
