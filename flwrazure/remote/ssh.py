"""SSH to a cluster's VMs with Fabric: wait until SSH answers (bounded, with backoff), remember each host key on
first contact and refuse a changed one later (Fabric accepts any key by default)."""

from __future__ import annotations

import functools
import os
import shlex
import threading
import time
from pathlib import Path

from flwrazure.errors import FlwrazureError

_known_lock = threading.Lock()


class _TrustOnFirstUse:
    """paramiko policy: unknown host -> record its key; a known host with another key is refused by paramiko."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key) -> None:
        with _known_lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.known_hosts, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def _isolated_config():
    """A Fabric config that reads no file: not ~/.ssh/config or /etc/ssh/ssh_config (a `Host *` Port, ProxyJump,
    ProxyCommand or IdentityFile there would silently redirect or change our connections), nor Fabric's own
    config files. The product's connections depend only on what the cluster's state says."""
    from fabric import Config
    from paramiko import SSHConfig

    return Config(ssh_config=SSHConfig(), lazy=True)


def agent_key(public_line: str):
    """The operator's ssh-agent's handle on this one key (a paramiko AgentKey), None when no agent answers or it
    does not hold the key. Only this key is ever offered to a VM, never the agent's others."""
    import paramiko

    from flwrazure.workstation.sshkeys import public_blob

    try:
        agent = paramiko.Agent()  # no SSH_AUTH_SOCK: an agent with no keys
        keys = agent.get_keys()
    except (paramiko.SSHException, OSError):
        return None
    wanted = public_blob(public_line)
    return next((k for k in keys if k.asbytes() == wanted), None)


def check_key(key_file: str | Path, label: str = "SSH key"):
    """Refuse, before any connection or cloud write, a key that cannot log in: see sshkeys.inspect; and a
    passphrase-protected key is usable only when the operator's ssh-agent holds it. Returns sshkeys.UserKey."""
    from flwrazure.errors import UsageError
    from flwrazure.workstation import sshkeys

    key = sshkeys.inspect(Path(key_file), label)
    if key.encrypted and agent_key(key.public_line) is None:
        where = "no ssh-agent is running" if not os.environ.get("SSH_AUTH_SOCK") else "your ssh-agent does not hold it"
        raise UsageError(f"{label} {key.path}: the key is passphrase-protected and {where}: run `eval $(ssh-agent)` "
                         f"and `ssh-add {key.path}`, then re-run (or use a key without a passphrase).")
    return key


def _auth(key_file: str) -> dict:
    """The key file itself, or for a passphrase-protected one the agent's copy of exactly that key."""
    from flwrazure.errors import UsageError
    from flwrazure.workstation import sshkeys

    try:
        key = sshkeys.inspect(Path(key_file))
    except UsageError:  # let paramiko say what is wrong (callers ran check_key beforehand)
        return {"key_filename": key_file}
    held = agent_key(key.public_line) if key.encrypted else None
    return {"pkey": held} if held is not None else {"key_filename": key_file}


@functools.cache
def _connection_class():
    """Fabric's Connection, closing its jump host's connection with its own (Fabric leaves a gateway open) and
    opening the hop within the connect timeout (Fabric's would wait paramiko's default hour for a VM that does not
    answer behind the jump host)."""
    from fabric import Connection

    class Hopped(Connection):
        def open_gateway(self):
            if isinstance(self.gateway, Connection):
                self.gateway.open()
                return self.gateway.transport.open_channel(
                    "direct-tcpip", (self.host, int(self.port)), ("", 0), timeout=self.connect_timeout)
            return super().open_gateway()

        def close(self):
            super().close()
            if isinstance(self.gateway, Connection):
                self.gateway.close()

    return Hopped


def connect(ip: str, user: str, key_file: str, known_hosts: Path, timeout: float = 5.0, via: str | None = None):
    """via: the public address of a jump host (the server VM, for client VMs of a cluster with --private-clients):
    the connection to `ip` (a private address) is tunnelled through an SSH connection to it. Both hops use the
    cluster's key and its pinned host keys (each address's own line in known_hosts), as a direct connection does."""
    cls = _connection_class()

    def one(host: str, gateway=None):
        conn = cls(host, user=user, port=22, config=_isolated_config(), connect_timeout=timeout, gateway=gateway,
                   connect_kwargs={**_auth(key_file), "look_for_keys": False, "allow_agent": False,
                                   "banner_timeout": 30, "auth_timeout": 30})
        if known_hosts.exists():
            conn.client.load_host_keys(str(known_hosts))
        conn.client.set_missing_host_key_policy(_TrustOnFirstUse(known_hosts))
        return conn

    return one(ip, one(via) if via else None)


AUTH_GRACE = 300.0  # seconds a VM's sshd may refuse our key while its provisioning agent may still be running


def wait(ip: str, name: str, user: str, key_file: str, known_hosts: Path, timeout: float = 600,
         auth_grace: float | None = None, via: str | None = None):
    """An open connection once SSH answers and lets us in; a timeout names the VM. via: a jump host (connect).

    sshd answers before the VM's provisioning agent (cloud-init) has created the admin user and its
    authorized_keys, so refused keys are retried, but only while provisioning can still be in progress:
    `auth_grace` seconds from the first refusal (FLWRAZURE_SSH_AUTH_GRACE). After that a refusal means the key is
    not on the VM, and is reported as such instead of being retried until the overall timeout."""
    import paramiko

    from flwrazure.workstation import settings

    if auth_grace is None:
        auth_grace = settings.seconds("FLWRAZURE_SSH_AUTH_GRACE", AUTH_GRACE)
    start, delay, last, refused_since = time.monotonic(), 0.5, None, None
    while time.monotonic() - start < timeout:
        conn = connect(ip, user, key_file, known_hosts, via=via)
        try:
            conn.open()
            return conn
        except paramiko.BadHostKeyException as exc:
            conn.close()
            hop = f"its jump host {via}" if via and exc.hostname == via else f"VM {name} ({ip})"
            raise FlwrazureError(f"{hop} presented a different SSH host key than on first contact: "
                                 f"refusing to connect. If the VM was re-created, remove its line from "
                                 f"{known_hosts}.") from None
        except paramiko.AuthenticationException as exc:  # sshd answered: the user or its key is not there (yet)
            last = exc
            conn.close()
            refused_since = refused_since or time.monotonic()
            if time.monotonic() - refused_since >= auth_grace:
                raise FlwrazureError(refused_message(name, ip, user, key_file, str(exc), auth_grace)) from None
        except Exception as exc:  # not up yet: refused, timed out, sshd still starting
            last = exc
            conn.close()
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    where = f"{ip} through the server {via}" if via else ip
    raise FlwrazureError(f"VM {name} ({where}) did not answer SSH within {timeout:.0f} s ({last}). Check that it "
                         "runs (`flwrazure status`) and that SSH is allowed from your address.")


def refused_message(name: str, ip: str, user: str, key_file: str, error: str, grace: float) -> str:
    """Why a VM that answers SSH still refuses us after the grace, by what sshd did (pure)."""
    if "EOF" in error or "shut down" in error:  # sshd hung up during authentication: PAM refused the account
        why = ("sshd hangs up during authentication: the VM has not finished booting (while /run/nologin exists "
               "only root may log in) or its account checks fail. Look at its boot diagnostics (serial log), "
               "or restart it")
    else:
        why = ("the VM was probably created with another key or user. Check `flwrazure status`; re-create the VM "
               "if its key is wrong")
    return f"VM {name} ({ip}) answers SSH but keeps refusing user {user} with key {key_file} for {grace:.0f} s " \
           f"({error}): {why}."


def output(conn, command: str) -> str:
    """stdout of a command that may fail (a probe): failing is an answer, not an error."""
    return conn.run(command, hide=True, warn=True, in_stream=False).stdout


def succeeds(conn, command: str) -> bool:
    return conn.run(command, hide=True, warn=True, in_stream=False).ok


def read(conn, path: str) -> str:
    """A remote file's text, "" when it does not exist."""
    return output(conn, f"cat {shlex.quote(path)} 2>/dev/null")


def run(conn, command: str, timeout: float = 900) -> str:
    """Run a command (use `sudo -n` inside it where root is needed: Azure's admin user has passwordless sudo)."""
    result = conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
    if result.failed:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FlwrazureError(f"{conn.host}: `{command[:80]}` failed (exit {result.exited}): {' | '.join(tail)}")
    return result.stdout


def put_text(conn, text: str, remote: str, mode: str = "600") -> bool:
    """Write a file if its content differs; returns True when it changed. The file has `mode` whatever happened
    before: an identical file with another mode is only chmod-ed (one probe answers both questions). New content
    goes to a file created 0600 (umask 077) before its first byte, next to the target, then renamed over it: an
    interrupted upload leaves a private partial file, never a readable key, and never a half-written target."""
    import io
    import secrets

    perm = format(int(mode, 8), "o")  # "0600" -> "600", as `stat -c %a` prints it; not octal: ValueError
    q = shlex.quote(remote)
    folder, _, name = remote.rpartition("/")
    found = output(conn, f"stat -c %a {q} 2>/dev/null && cat {q}")
    have_mode, _, have = found.partition("\n")
    if have == text and found:
        if have_mode.strip() != perm:
            run(conn, f"chmod {perm} {q}")
        return False
    tmp = f"{folder or '.'}/.{name}.{secrets.token_hex(4)}.part"
    qt = shlex.quote(tmp)
    run(conn, f"umask 077 && mkdir -p {shlex.quote(folder or '.')} && : > {qt}")
    try:
        conn.put(io.BytesIO(text.encode()), tmp)  # SFTP truncates and writes the 0600 file: its mode stays
        run(conn, f"chmod {perm} {qt} && mv -f {qt} {q}")
    except BaseException:
        try:  # best effort: the connection may be what failed (the partial file is private either way)
            conn.run(f"rm -f {qt}", hide=True, warn=True, in_stream=False, timeout=10)
        except Exception:
            pass
        raise
    return True


def forget_hosts(known_hosts: Path, addresses) -> list[str]:
    """Drop the pinned host keys of these addresses, because the VMs behind them are gone: Azure hands a released
    public IP to the next VM that asks, whose new host key would otherwise be refused as a changed one.
    Returns the addresses that had a line. Lines are `host[,host…] type key`, host an IP or `[IP]:port`."""
    wanted = {a for a in addresses if a}
    if not wanted:
        return []
    with _known_lock:
        try:
            lines = known_hosts.read_text().splitlines(keepends=True)
        except FileNotFoundError:
            return []
        kept, dropped = [], set()
        for line in lines:
            hosts = {h[1:].split("]:", 1)[0] if h.startswith("[") else h
                     for h in (line.split(maxsplit=1) or [""])[0].split(",")}
            if hosts & wanted and not line.lstrip().startswith("#"):
                dropped |= hosts & wanted
            else:
                kept.append(line)
        if dropped:
            tmp = known_hosts.with_name(known_hosts.name + ".tmp")
            tmp.write_text("".join(kept))
            os.replace(tmp, known_hosts)
    return sorted(dropped)
