"""The operator's public address, for rules that must admit only the operator (SSH, the Control port)."""

from __future__ import annotations

import ipaddress
import urllib.request

from flwrazure.errors import UsageError

ECHO_SERVICES = ("https://api.ipify.org", "https://ifconfig.me/ip", "https://icanhazip.com")


def detect(target) -> str:
    """On the local cloud the host's address on the public range; on Azure ask an address-echo service."""
    if target.cloud == "local" and target.operator_ip:
        return target.operator_ip
    for url in ECHO_SERVICES:
        try:
            with urllib.request.urlopen(url, timeout=4) as resp:
                text = resp.read(64).decode().strip()
            return str(ipaddress.IPv4Address(text))
        except (OSError, ValueError):
            continue
    raise UsageError("Could not detect your public IP address: pass --ssh-source <your-ip> (or 'any', which "
                     "opens SSH to everyone).")


def probe_tcp(ip: str, port: int, timeout: float = 3.0) -> str:
    """Can this machine open a TCP connection to ip:port? "open", "refused" or "timeout" (a rule dropping it)."""
    import socket

    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"
