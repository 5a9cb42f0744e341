"""SSH into local-cloud VMs with real Fabric/OpenSSH, and probes for the NSG tests."""

from __future__ import annotations

import socket
import subprocess
import time

from fabric import Connection

KEY = "/tmp/flwrazure-test-key"


def connection(ip: str, key: str = KEY, user: str = "azureuser") -> Connection:
    return Connection(ip, user=user, connect_timeout=3,
                      connect_kwargs={"key_filename": key, "look_for_keys": False, "allow_agent": False})


def run(ip: str, command: str, key: str = KEY, timeout: float = 60) -> str:
    with connection(ip, key) as c:
        return c.run(command, hide=True, timeout=timeout, in_stream=False).stdout


def wait_ssh(ip: str, timeout: float = 90, key: str = KEY) -> float:
    """Seconds until SSH on `ip` logs in."""
    start = time.monotonic()
    while True:
        try:
            run(ip, "true", key=key)
            return time.monotonic() - start
        except Exception:
            if time.monotonic() - start > timeout:
                raise
            time.sleep(0.3)


def port_state(host: str, port: int, timeout: float = 1.5) -> str:
    """'open', 'refused' or 'timeout' (what an Azure Deny looks like), probed from this machine."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "timeout"


PROBE = ("python3 -c \"import socket,sys\ntry:\n socket.create_connection(('{host}',{port}),timeout=1.5); print('open')\n"
         "except ConnectionRefusedError: print('refused')\nexcept OSError: print('timeout')\"")


def port_state_from(vm_ip: str, host: str, port: int) -> str:
    """The same probe, run on a VM (so the packet's source is that VM)."""
    return run(vm_ip, PROBE.format(host=host, port=port)).strip()


def ssh_cli(ip: str, key: str, *extra: str) -> subprocess.CompletedProcess:
    """Real OpenSSH, non-interactive."""
    return subprocess.run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "IdentitiesOnly=yes", *extra,
                           f"azureuser@{ip}", "true"], capture_output=True, text=True, timeout=30)
