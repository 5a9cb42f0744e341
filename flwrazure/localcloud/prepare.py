"""What this machine needs for the local cloud's sandbox VMs, and how to get it (`flwrazure local prepare`).

The decision is pure: from the tools found on this machine and whether we are root, which apt packages to install
and the commands that install them, or the one line that tells a non-root user what to run."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

# tool -> the Debian/Ubuntu package that ships it; the order is the install order shown to the user
TOOLS = {
    "sshd": "openssh-server",  # each VM's sshd is this machine's
    "ssh-keygen": "openssh-client",
    "iptables-restore": "iptables",  # NSG rules on real packets
    "ip": "iproute2",  # network namespaces, bridges, veths
    "systemd-nspawn": "systemd-container",  # the VMs
    "mmdebstrap": "mmdebstrap",  # the VM image, built once
    "dpkg-deb": "dpkg",  # the image's apt repository
    "useradd": "passwd",
}
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # where a non-root PATH may not look


@dataclass(frozen=True)
class Decision:
    action: str  # "nothing" | "install" (root: run `commands`) | "ask" (not root) | "unsupported" (no apt-get)
    missing: tuple[str, ...]  # tools not found
    packages: tuple[str, ...]  # apt packages that bring them
    commands: tuple[tuple[str, ...], ...] = ()  # argv to run as root, in order (action "install")
    line: str = ""  # what to tell the user (every action)


def decide(present: set[str] | frozenset[str], root: bool) -> Decision:
    """From the tools present (names as in TOOLS, plus "apt-get" and "sudo") and root or not (pure)."""
    missing = tuple(tool for tool in TOOLS if tool not in present)
    packages = tuple(dict.fromkeys(TOOLS[tool] for tool in missing))
    if not missing:
        return Decision("nothing", (), (), line="Nothing to do: this machine has what the local cloud's sandbox "
                                                "VMs need (" + ", ".join(TOOLS) + ").")
    what = f"the local cloud's sandbox VMs need {', '.join(missing)} (apt packages: {' '.join(packages)})"
    if "apt-get" not in present:
        return Decision("unsupported", missing, packages,
                        line=f"{what.capitalize()}, and this machine has no apt-get: install them with its "
                             "package manager, then run `flwrazure local prepare` again.")
    update = ("apt-get", "update", "-q")
    install = ("apt-get", "install", "-y", "-q", "--no-install-recommends", *packages)
    if root:
        return Decision("install", missing, packages, (update, install),
                        line=f"Installing what the local cloud's sandbox VMs need: {' '.join(packages)}")
    sudo = "sudo " if "sudo" in present else ""
    command = f"{sudo}{' '.join(update)} && {sudo}{' '.join(install)}"
    return Decision("ask", missing, packages,
                    line=f"{what.capitalize()}; installing them needs root: run `{command}` "
                         f"(or `{sudo}flwrazure local prepare`).")


def present_tools() -> set[str]:
    """The tools of TOOLS (and apt-get, sudo) this machine has, also in sbin folders a user's PATH may lack."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    found = {tool for tool in (*TOOLS, "apt-get", "sudo") if shutil.which(tool, path=path)}
    return found
