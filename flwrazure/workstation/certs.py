"""TLS and SuperNode authentication material, made locally with `cryptography`; private keys 0600.

The SuperLink certificate carries SAN IP:127.0.0.1 and localhost besides the VM's public and private IPs: the
SuperLink's own SuperExec connects to 127.0.0.1 and fails verification otherwise (while /health still says 200).
SuperNode keys are ECDSA P-384 in OpenSSH format (Flower rejects PEM EC keys and Ed25519)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ensure_ca(directory: Path, cluster: str) -> tuple[Path, Path]:
    crt, key = directory / "ca.crt", directory / "ca.key"
    if crt.exists() and key.exists():
        return crt, key
    now = dt.datetime.now(dt.timezone.utc)
    private = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"flwrazure CA for cluster {cluster}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(private, hashes.SHA384()))
    _write_private(key, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt, key


def sans_of(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(ext.get_values_for_type(x509.DNSName))


def ensure_server_cert(directory: Path, cluster: str, ips: list[str]) -> tuple[Path, Path]:
    """server.pem/server.key for the SuperLink, re-issued when its addresses change."""
    ca_crt, ca_key = ensure_ca(directory, cluster)
    crt, key = directory / "server.pem", directory / "server.key"
    wanted = {"127.0.0.1", "localhost", *ips}
    if crt.exists() and key.exists() and sans_of(crt) == wanted:
        return crt, key
    ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), None)
    private = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.timezone.utc)
    alt = [x509.DNSName("localhost")] + [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(wanted - {"localhost"})]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster}-superlink")]))
            .issuer_name(ca.subject).public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(signer, hashes.SHA384()))
    _write_private(key, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt, key


def ensure_supernode_key(path: Path) -> tuple[Path, str]:
    """(private key path, public key line): ECDSA P-384, OpenSSH format."""
    pub = Path(str(path) + ".pub")
    if path.exists() and pub.exists():
        return path, pub.read_text().strip()
    private = ec.generate_private_key(ec.SECP384R1())
    _write_private(path, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                               serialization.NoEncryption()))
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()
    pub.write_text(line + "\n")
    return path, line


def renew_server_cert(directory: Path, cluster: str, ips: list[str]) -> tuple[Path, Path]:
    """A new SuperLink certificate and key from the same CA (clients trust the CA, not this certificate)."""
    for name in ("server.pem", "server.key"):
        (directory / name).unlink(missing_ok=True)
    return ensure_server_cert(directory, cluster, ips)
