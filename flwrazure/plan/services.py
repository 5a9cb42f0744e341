"""What runs on the VMs: the flower-superlink and flower-supernode command lines for each Flower generation,
as systemd units (Restart=on-failure, the venv on PATH, telemetry off, a working directory, enabled at boot)."""

from __future__ import annotations

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
                      secure: bool, *, runtime_deps: bool, data_path: str | None = None) -> list[str]:
    plan = versions.port_plan(version)
    cmd = [f"{layout.venv}/bin/flower-supernode", "--superlink", f"{superlink_ip}:{plan.fleet}"]
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


def unit(description: str, command: list[str], layout: Layout, user: str, index_url: str | None) -> str:
    lines = [
        "[Unit]", f"Description={description} (flwrazure)", "After=network-online.target",
        "Wants=network-online.target", "", "[Service]", "Type=simple", f"User={user}",
        f"WorkingDirectory={layout.base}",
        *[f'Environment="{k}={v}"' for k, v in environment(layout, index_url).items()],
        f"ExecStart={shlex.join(command)}", "Restart=on-failure", f"RestartSec={RESTART_SEC:g}", "", "[Install]",
        "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def loop_script(description: str, name: str, command: list[str], layout: Layout, index_url: str | None,
                restart_sec: float = RESTART_SEC) -> str:
    """For hosts without systemd: a shell loop with the unit's environment and working directory that restarts
    the process when it fails (as Restart=on-failure) and records its own PID (= its process group)."""
    lines = [
        "#!/bin/sh", f"# {description} (flwrazure): this host has no systemd, so this loop keeps it running",
        f"echo $$ > {shlex.quote(layout.path(name + '.pid'))}", f"cd {shlex.quote(layout.base)} || exit 1",
        *[f"export {k}={shlex.quote(v)}" for k, v in environment(layout, index_url).items()],
        "while :; do", f"  {shlex.join(command)}", "  code=$?", "  [ $code -eq 0 ] && break",
        f'  echo "{RESTART_MARK} {name} exited with $code, restarting in {restart_sec:g} s"', f"  sleep {restart_sec:g}",
        "done", ""]
    return "\n".join(lines)
