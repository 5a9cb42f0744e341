"""What runs on the VMs: the flower-superlink and flower-supernode command lines for each Flower generation,
as systemd units (Restart=on-failure, the venv on PATH, telemetry off, a working directory, enabled at boot)."""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from flwrazure.plan import clientdata, versions

REMOTE_DIR = "flwrazure"  # under the admin user's home
VENV = "flwr-venv"
RESTART_SEC = 3
RESTART_MARK = "flwrazure-loop:"


@dataclass(frozen=True)
class Layout:
    home: str  # /home/<admin user>

    @property
    def base(self) -> str:
        return f"{self.home}/{REMOTE_DIR}"

    @property
    def venv(self) -> str:
        return f"{self.home}/{VENV}"

    def path(self, name: str) -> str:
        return f"{self.base}/{name}"


ALLOW_DEPS = "--allow-runtime-dependency-installation"
DISABLE_DEPS = "--disable-runtime-dependency-installation"


def runtime_deps_flags(version: str, superlink: bool, on: bool) -> list[str]:
    """The flag that makes this release's SuperLink (or SuperNode) install apps' dependencies at run time exactly
    when `on`: none where it cannot (< 1.29) or already does by default (SuperLink 1.32+ when on)."""
    support = versions.runtime_deps_support(version)
    if support == versions.NO_INSTALLER:
        return []
    if support == versions.OPT_IN or not superlink:
        return [ALLOW_DEPS] if on else []
    return [] if on else [DISABLE_DEPS]


def superlink_command(version: str, layout: Layout, secure: bool, runtime_deps: bool) -> list[str]:
    plan = versions.port_plan(version)
    cmd = [f"{layout.venv}/bin/flower-superlink", "--database", layout.path("superlink.db")]
    if plan.generation == "http":  # one port: Fleet, Control, and the Runtime API its own SuperExec uses
        cmd += ["--host", versions.ANY, "--port", str(plan.fleet)]
    else:  # Fleet and Control listen on 0.0.0.0 by default; the ServerAppIo API is for its own SuperExec only
        cmd += ["--serverappio-api-address", f"{versions.LOOPBACK}:{plan.superlink_local}"]
    cmd += runtime_deps_flags(version, True, runtime_deps)
    if secure:
        cmd += ["--ssl-ca-certfile", layout.path("ca.crt"), "--ssl-certfile", layout.path("server.pem"),
                "--ssl-keyfile", layout.path("server.key"), "--enable-supernode-auth"]
    else:
        cmd.append("--insecure")
    return cmd


def supernode_command(version: str, layout: Layout, superlink_ip: str, partition: int, partitions: int,
                      secure: bool, *, runtime_deps: bool, data_path: str | None = None,
                      fleet_port: int | None = None) -> list[str]:
    """fleet_port: the SuperLink's Fleet port when it is not this release's own (a silo is told it)."""
    plan = versions.port_plan(version)
    cmd = [f"{layout.venv}/bin/flower-supernode", "--superlink", f"{superlink_ip}:{fleet_port or plan.fleet}"]
    local = str(plan.supernode_local)  # the API its own SuperExec (and the ClientApps) use: loopback only
    if plan.generation == "http":
        cmd += ["--host", versions.LOOPBACK, "--port", local]
    else:
        cmd += ["--clientappio-api-address", f"{versions.LOOPBACK}:{local}"]
    cmd += runtime_deps_flags(version, False, runtime_deps)
    cmd += ["--node-config", clientdata.node_config(partition, partitions, data_path)]
    if secure:
        cmd += ["--root-certificates", layout.path("ca.crt"), "--auth-supernode-private-key",
                layout.path("supernode.key")]
    else:
        cmd.append("--insecure")
    return cmd


def index_host(index_url: str) -> str:
    """The host of a package index URL (for pip's --trusted-host / uv's insecure host on plain HTTP)."""
    return urlsplit(index_url).hostname or ""


def environment(layout: Layout, index_url: str | None) -> dict[str, str]:
    env = {"PATH": f"{layout.venv}/bin:/usr/local/bin:/usr/bin:/bin", "FLWR_TELEMETRY_ENABLED": "0",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "PYTHONUNBUFFERED": "1"}
    if index_url:  # Flower installs apps' dependencies with uv at run time: point it at the same index
        env.update({"PIP_INDEX_URL": index_url, "UV_DEFAULT_INDEX": index_url, "UV_INDEX_URL": index_url})
        if index_url.startswith("http://"):
            env.update({"PIP_TRUSTED_HOST": index_host(index_url), "UV_INSECURE_HOST": index_host(index_url)})
    return env


# The services' environment lives in a file of its own (0600, the admin user's), not in the unit: unit files are
# world-readable and an index URL may carry a token. The same file is read by systemd (EnvironmentFile=), by the
# restart loop and by the bootstrap's pip (`set -a; . FILE`), so pip's index is never on a command line either.
ENV_FILE = "flower.env"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_file_text(env: dict[str, str]) -> str:
    """KEY='value' lines. Single quotes mean the same to systemd's EnvironmentFile= parser and to sh: everything up
    to the next quote, literally (no $, %, ` or \\ processing); a value that holds a quote or a line break cannot
    be written this way and is refused (the CLI refuses such index URLs first)."""
    lines = ["# flwrazure: the Flower services' environment (read by systemd, the restart loop and pip)"]
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"not an environment variable name: {key!r}")
        if any(c in value for c in "'\n\r\0"):
            raise ValueError(f"{key}: a value with a quote or a line break cannot go into the environment file")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"


def digest(text: str | None) -> str | None:
    """What may stand for a secret in a world-readable place (a marker, a unit's change stamp): its sha256."""
    return None if text is None else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _unit_value(value: str) -> str:
    """A unit setting's value as written: systemd expands %-specifiers in most settings, so % is doubled."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"a unit setting cannot hold control characters: {value!r}")
    return value.replace("%", "%%")


def exec_argument(arg: str) -> str:
    """One ExecStart= argument as systemd reads it back (systemd.service "Command lines"): %-specifiers (%%),
    variable expansion ($$) and its own quoting and C-style escapes (a double-quoted word, \\ and \" escaped)."""
    value = _unit_value(arg).replace("$", "$$")
    if value and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit(description: str, command: list[str], layout: Layout, user: str, index_url: str | None) -> str:
    env = env_file_text(environment(layout, index_url))
    lines = [
        "[Unit]", f"Description={_unit_value(description)} (flwrazure)", "After=network-online.target",
        "Wants=network-online.target", "", "[Service]", "Type=simple", f"User={_unit_value(user)}",
        f"WorkingDirectory={_unit_value(layout.base)}",
        # the stamp changes the unit (and so restarts the service) when the environment changes
        f"# environment {digest(env)}", f"EnvironmentFile={_unit_value(layout.path(ENV_FILE))}",
        f"ExecStart={' '.join(exec_argument(a) for a in command)}", "Restart=on-failure",
        f"RestartSec={RESTART_SEC:g}", "", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def loop_script(description: str, name: str, command: list[str], layout: Layout, index_url: str | None,
                restart_sec: float = RESTART_SEC) -> str:
    """For hosts without systemd: a shell loop with the unit's environment and working directory that restarts
    the process when it fails (as Restart=on-failure) and records its own PID (= its process group)."""
    env = env_file_text(environment(layout, index_url))
    lines = [
        "#!/bin/sh", f"# {' '.join(description.split())} (flwrazure): this host has no systemd, so this loop keeps "
        "it running", f"# environment {digest(env)}",
        f"echo $$ > {shlex.quote(layout.path(name + '.pid'))}", f"cd {shlex.quote(layout.base)} || exit 1",
        f"set -a; . {shlex.quote(layout.path(ENV_FILE))} || exit 1; set +a",
        "while :; do", f"  {shlex.join(command)}", "  code=$?", "  [ $code -eq 0 ] && break",
        f'  echo "{RESTART_MARK} {shlex.quote(name)} exited with $code, restarting in {restart_sec:g} s"',
        f"  sleep {restart_sec:g}", "done", ""]
    return "\n".join(lines)
