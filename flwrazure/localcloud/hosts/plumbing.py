"""Linux plumbing for sandbox hosts: network namespaces, bridges, veth pairs, overlay mounts, and the cleanup
of anything a previous (crashed) run left. Every name carries a tag derived from the local cloud's folder, so
cleanup only ever touches what this local cloud made."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

PUBLIC_GATEWAY = "198.18.0.1"
PUBLIC_PREFIX_LEN = 15


class PlumbingError(RuntimeError):
    pass


def run(*cmd: str, check: bool = True, input: str | None = None, netns: str | None = None) -> str:
    full = (["ip", "netns", "exec", netns] if netns else []) + list(cmd)
    proc = subprocess.run(full, capture_output=True, text=True, input=input, timeout=60)
    if check and proc.returncode != 0:
        raise PlumbingError(f"{' '.join(full)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def short(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.lower().encode()).hexdigest()[:n]


class Names:
    """Interface and namespace names (Linux allows 15 characters for interfaces)."""

    def __init__(self, state_dir: Path):
        self.tag = short(str(state_dir.resolve()), 4)

    def netns(self, vm_key: str) -> str:
        return f"fz{self.tag}-{short(vm_key)}"

    def veth_private(self, vm_key: str) -> str:
        return f"fv{self.tag}{short(vm_key)}"

    def veth_public(self, vm_key: str) -> str:
        return f"fp{self.tag}{short(vm_key)}"

    def vnet_bridge(self, vnet_id: str) -> str:
        return f"fb{self.tag}{short(vnet_id)}"

    @property
    def public_bridge(self) -> str:
        return f"fb{self.tag}pub"

    def ours(self, name: str) -> bool:
        return name.startswith((f"fz{self.tag}-", f"fv{self.tag}", f"fp{self.tag}", f"fb{self.tag}"))


def links() -> list[str]:
    out = run("ip", "-o", "link", "show")
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def ensure_bridge(name: str, address: str | None = None) -> None:
    if name not in links():
        run("ip", "link", "add", name, "type", "bridge")
        if address:
            run("ip", "addr", "add", address, "dev", name)
        run("ip", "link", "set", name, "up")


def public_range_taken_by_other(bridge: str) -> str | None:
    """Another interface already holding the public gateway address (a second local cloud)."""
    for line in run("ip", "-o", "-4", "addr", "show").splitlines():
        parts = line.split()
        if f"{PUBLIC_GATEWAY}/" in line and parts[1] != bridge:
            return parts[1]
    return None


def mac_for(text: str) -> str:
    """A locally administered unicast MAC that is a function of `text` (a NIC's id and the interface's role)."""
    digest = hashlib.sha1(text.lower().encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def guest_mac(nic_mac: str | None, nic_id: str) -> str:
    """The MAC of a VM's private interface: its NIC's `macAddress` (`00-0D-3A-…` -> `00:0d:3a:…`, as the guest
    sees it on Azure), or one made from the NIC's id when the NIC has none (a record from an older local cloud)."""
    if nic_mac and len(nic_mac.replace("-", "").replace(":", "")) == 12:
        return nic_mac.replace("-", ":").lower()
    return mac_for(f"{nic_id}|private")


def public_mac(nic_id: str) -> str:
    """The MAC of a VM's public interface (the local cloud's stand-in for Azure's NAT of its public IP): made from
    its NIC's id, so it is the same after deallocate/start and never the private interface's."""
    return mac_for(f"{nic_id}|public")


def attach(netns: str, host_if: str, bridge: str, inner: str, addresses: list[str], mac: str | None = None) -> None:
    """A veth pair: one end on the bridge, the other inside the namespace as `inner` with `addresses` (and `mac`).

    A VM's interface keeps its MAC across deallocate/start (on Azure the guest sees its NIC's MAC, which stays with
    the NIC); a new random one each boot left this machine's and the other VMs' neighbour tables pointing at the old
    veth until the entries aged out, and the first SSH login after a start waited 15-80 s for it."""
    if host_if in links():
        run("ip", "link", "del", host_if, check=False)
    peer = ["name", inner, *(["address", mac] if mac else []), "netns", netns]
    run("ip", "link", "add", host_if, "type", "veth", "peer", *peer)
    run("ip", "link", "set", host_if, "master", bridge, "up")
    for addr in addresses:
        run("ip", "addr", "add", addr, "dev", inner, netns=netns)
    run("ip", "link", "set", inner, "up", netns=netns)


def new_netns(name: str) -> None:
    if name in namespaces():
        delete_netns(name)
    run("ip", "netns", "add", name)
    run("ip", "link", "set", "lo", "up", netns=name)


def delete_netns(name: str) -> None:
    for pid in run("ip", "netns", "pids", name, check=False).split():
        _kill(int(pid))
    run("ip", "netns", "del", name, check=False)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    found = []
    with open("/proc/mounts") as f:
        for line in f:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def umount(point: str) -> None:
    run("umount", point, check=False)
    if point in mounts_under(Path(point).parent.parent):
        run("umount", "-l", point, check=False)


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            pids.append(int(proc.name))
    return pids


def _kill(pid: int, grace: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def cleanup(names: Names, hosts_dir: Path) -> list[str]:
    """Remove every process, mount, namespace and link of this local cloud; returns what was removed."""
    removed = []
    for pid in processes_mentioning(str(hosts_dir.resolve()) + "/"):
        _kill(pid)
        removed.append(f"process {pid}")
    for point in mounts_under(hosts_dir):
        umount(point)
        removed.append(f"mount {point}")
    for ns in namespaces():
        if names.ours(ns):
            delete_netns(ns)
            removed.append(f"netns {ns}")
    for link in links():
        if names.ours(link):
            run("ip", "link", "del", link, check=False)
            removed.append(f"link {link}")
    return removed
