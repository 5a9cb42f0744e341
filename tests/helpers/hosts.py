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


def login_trace(ip: str, timeout: float = 120, key: str = KEY) -> dict:
    """Wait until the admin user logs in; what happened on the way: errors by kind (and how many), when a key was
    first refused (sshd answered, the user or key was not there yet), when the login worked (monotonic times)."""
    import paramiko

    seen: dict = {"errors": {}, "refused": 0}
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(ip, username="azureuser", key_filename=key, look_for_keys=False, allow_agent=False,
                           timeout=3, banner_timeout=10, auth_timeout=10)
            seen["login"] = time.monotonic()
            seen["ready"] = seen["login"] - start
            return seen
        except Exception as exc:  # counted by kind
            if isinstance(exc, paramiko.AuthenticationException):
                seen["refused"] += 1
                seen.setdefault("first_refused", time.monotonic())
            kind = f"{type(exc).__name__}: {str(exc)[:60]}"
            seen["errors"][kind] = seen["errors"].get(kind, 0) + 1
        finally:
            client.close()
        time.sleep(0.2)
    raise AssertionError(f"no login on {ip} within {timeout:.0f} s: {seen['errors']}")


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


def port_state_from(vm_ip: str, host: str, port: int, key: str = KEY) -> str:
    """The same probe, run on a VM (so the packet's source is that VM)."""
    return run(vm_ip, PROBE.format(host=host, port=port), key=key).strip()


def listening(ip: str, key: str = KEY) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening on a VM."""
    out = run(ip, "ss -ltnH", key=key)
    found = set()
    for line in out.splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        found.add((address.strip("[]").split("%")[0], int(port)))
    return found


def ssh_cli(ip: str, key: str, *extra: str) -> subprocess.CompletedProcess:
    """Real OpenSSH, non-interactive."""
    return subprocess.run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "IdentitiesOnly=yes", *extra,
                           f"azureuser@{ip}", "true"], capture_output=True, text=True, timeout=30)
